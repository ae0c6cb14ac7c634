"""Tests for translators/pss.py: every control failing and passing, PSA's wording and order.

Expected strings are written from kube-apiserver's PodSecurity admission
(k8s.io/pod-security-admission, Kubernetes v1.36), so a mismatch means the
syncer would refuse a pod the tenant's kubectl accepts, or word it differently.
Each case starts from a pod that is compliant at restricted and changes one
thing, so a violation can only come from the control under test.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from contract.resources import Obj
from syncer.config import PodSecurityStandard
from translators.pss import Level, check, message

Edit = Callable[[Obj], None]

SAFE_CONTAINER_SC: Obj = {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}}
CLASSIC_FOUR = [
    'allowPrivilegeEscalation != false (container "app" must set'
    " securityContext.allowPrivilegeEscalation=false)",
    'unrestricted capabilities (container "app" must set'
    ' securityContext.capabilities.drop=["ALL"])',
    'runAsNonRoot != true (pod or container "app" must set securityContext.runAsNonRoot=true)',
    'seccompProfile (pod or container "app" must set securityContext.seccompProfile.type'
    ' to "RuntimeDefault" or "Localhost")',
]


def compliant() -> Obj:
    """A pod that passes restricted, with every kind of container and every allowed volume type."""
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "web", "namespace": "default", "annotations": {"team": "a"}},
        "spec": {
            "securityContext": {"runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"}},
            "initContainers": [
                {
                    "name": "init",
                    "image": "busybox",
                    "securityContext": copy.deepcopy(SAFE_CONTAINER_SC),
                }
            ],
            "containers": [
                {
                    "name": "app",
                    "image": "nginx",
                    "ports": [{"containerPort": 8080}],
                    "securityContext": copy.deepcopy(SAFE_CONTAINER_SC),
                }
            ],
            "volumes": [
                {"name": "cm", "configMap": {"name": "cm"}},
                {"name": "csi", "csi": {"driver": "x"}},
                {"name": "down", "downwardAPI": {"items": []}},
                {"name": "tmp", "emptyDir": {}},
                {"name": "eph", "ephemeral": {"volumeClaimTemplate": {"spec": {}}}},
                {"name": "img", "image": {"reference": "registry/data:1"}},
                {"name": "data", "persistentVolumeClaim": {"claimName": "data"}},
                {"name": "token", "projected": {"sources": []}},
                {"name": "creds", "secret": {"secretName": "creds"}},
            ],
        },
    }


def plain() -> Obj:
    """The minimal pod everyone writes first: no securityContext at all."""
    return {
        "metadata": {"name": "web"},
        "spec": {"containers": [{"name": "app", "image": "nginx"}]},
    }


def edited(*edits: Edit, pod: Obj | None = None) -> Obj:
    result = compliant() if pod is None else pod
    for edit in edits:
        edit(result)
    return result


def spec(**fields: Any) -> Edit:
    return lambda pod: pod["spec"].update(fields)


def pod_sc(**fields: Any) -> Edit:
    return lambda pod: pod["spec"]["securityContext"].update(fields)


def app(**fields: Any) -> Edit:
    return lambda pod: pod["spec"]["containers"][0].update(fields)


def app_sc(**fields: Any) -> Edit:
    return lambda pod: pod["spec"]["containers"][0]["securityContext"].update(fields)


def init_sc(**fields: Any) -> Edit:
    return lambda pod: pod["spec"]["initContainers"][0]["securityContext"].update(fields)


def drop_pod_sc(*keys: str) -> Edit:
    def edit(pod: Obj) -> None:
        for key in keys:
            del pod["spec"]["securityContext"][key]

    return edit


def volume(**source: Any) -> Edit:
    return lambda pod: pod["spec"]["volumes"].append({"name": "extra", **source})


def annotate(**annotations: str) -> Edit:
    return lambda pod: pod["metadata"]["annotations"].update(annotations)


def add_container(name: str, kind: str = "containers", **fields: Any) -> Edit:
    return lambda pod: pod["spec"].setdefault(kind, []).append({"name": name, **fields})


APPARMOR_KEY = "container.apparmor.security.beta.kubernetes.io/app"

# (id, edits, the one violation at baseline, the one violation at restricted)
BASELINE_FAILS: list[tuple[str, list[Edit], str]] = [
    (
        "hostProcess pod",
        [pod_sc(windowsOptions={"hostProcess": True})],
        "hostProcess (pod must not set securityContext.windowsOptions.hostProcess=true)",
    ),
    (
        "hostProcess container",
        [app_sc(windowsOptions={"hostProcess": True})],
        'hostProcess (container "app" must not set'
        " securityContext.windowsOptions.hostProcess=true)",
    ),
    ("hostNetwork", [spec(hostNetwork=True)], "host namespaces (hostNetwork=true)"),
    (
        "all host namespaces",
        [spec(hostIPC=True, hostPID=True, hostNetwork=True)],
        "host namespaces (hostNetwork=true, hostPID=true, hostIPC=true)",
    ),
    (
        "privileged",
        [app_sc(privileged=True)],
        'privileged (container "app" must not set securityContext.privileged=true)',
    ),
    (
        "hostPort",
        [app(ports=[{"containerPort": 80, "hostPort": 80}])],
        'hostPort (container "app" uses hostPort 80)',
    ),
    (
        "AppArmor annotation",
        [annotate(**{APPARMOR_KEY: "unconfined"})],
        "forbidden AppArmor profile (annotation must not set AppArmor profile type to"
        f' "{APPARMOR_KEY}="unconfined"")',
    ),
    (
        "AppArmor field",
        [app_sc(appArmorProfile={"type": "Unconfined"})],
        'forbidden AppArmor profile (container "app" must not set AppArmor profile type to'
        ' "Unconfined")',
    ),
    (
        "SELinux type",
        [pod_sc(seLinuxOptions={"type": "spc_t"})],
        'seLinuxOptions (pod set forbidden securityContext.seLinuxOptions: type "spc_t")',
    ),
    (
        "SELinux user and role",
        [app_sc(seLinuxOptions={"user": "system_u", "role": "system_r"})],
        'seLinuxOptions (container "app" set forbidden securityContext.seLinuxOptions:'
        " user may not be set; role may not be set)",
    ),
    (
        "procMount",
        [app_sc(procMount="Unmasked")],
        'procMount (container "app" must not set securityContext.procMount to "Unmasked")',
    ),
    (
        "sysctls",
        [pod_sc(sysctls=[{"name": "kernel.msgmax", "value": "1"}, {"name": "net.ipv4.tcp_rmem"}])],
        "forbidden sysctls (kernel.msgmax)",
    ),
    (
        "probe host",
        [app(livenessProbe={"httpGet": {"host": "10.0.0.1", "port": 80}})],
        'probe or lifecycle host (container "app" uses probe or lifecycle host "10.0.0.1")',
    ),
    (
        "lifecycle host",
        [
            app(lifecycle={"preStop": {"tcpSocket": {"host": "db", "port": 5432}}}),
            app(startupProbe={"tcpSocket": {"host": "api", "port": 80}}),
        ],
        'probe or lifecycle host (container "app" uses probe or lifecycle hosts "api", "db")',
    ),
]

# Controls that baseline and restricted both have, but restricted words (or checks) its own way.
BASELINE_ONLY_WORDING: list[tuple[str, list[Edit], str, str]] = [
    (
        "capabilities",
        [app_sc(capabilities={"drop": ["ALL"], "add": ["SYS_ADMIN", "NET_RAW", "CHOWN"]})],
        'non-default capabilities (container "app" must not include "NET_RAW", "SYS_ADMIN"'
        " in securityContext.capabilities.add)",
        'unrestricted capabilities (container "app" must not include "CHOWN", "NET_RAW",'
        ' "SYS_ADMIN" in securityContext.capabilities.add)',
    ),
    (
        "hostPath",
        [volume(hostPath={"path": "/"})],
        'hostPath volumes (volume "extra")',
        'restricted volume types (volume "extra" uses restricted volume type "hostPath")',
    ),
    (
        "seccomp Unconfined",
        [pod_sc(seccompProfile={"type": "Unconfined"})],
        'seccompProfile (pod must not set securityContext.seccompProfile.type to "Unconfined")',
        'seccompProfile (pod must not set securityContext.seccompProfile.type to "Unconfined")',
    ),
]

BASELINE_PASSES: list[tuple[str, list[Edit]]] = [
    ("hostProcess false", [pod_sc(windowsOptions={"hostProcess": False})]),
    ("host namespaces false", [spec(hostNetwork=False, hostPID=False, hostIPC=False)]),
    ("privileged false", [app_sc(privileged=False)]),
    ("hostPort 0", [app(ports=[{"containerPort": 80, "hostPort": 0}])]),
    (
        "AppArmor annotations",
        [
            annotate(**{APPARMOR_KEY: "runtime/default"}),
            annotate(**{"container.apparmor.security.beta.kubernetes.io/init": "localhost/p"}),
        ],
    ),
    (
        "AppArmor fields",
        [
            pod_sc(appArmorProfile={"type": "RuntimeDefault"}),
            app_sc(appArmorProfile={"type": "Localhost", "localhostProfile": "p"}),
        ],
    ),
    (
        "SELinux allowed",
        [
            pod_sc(seLinuxOptions={"type": "container_engine_t", "level": "s0:c1,c2"}),
            app_sc(seLinuxOptions={"type": "container_init_t"}),
        ],
    ),
    ("procMount Default", [app_sc(procMount="Default")]),
    ("seccomp Localhost", [app_sc(seccompProfile={"type": "Localhost", "localhostProfile": "p"})]),
    (
        "safe sysctls",
        [
            pod_sc(
                sysctls=[
                    {"name": name}
                    for name in (
                        "kernel.shm_rmid_forced",
                        "net.ipv4.ip_local_port_range",
                        "net.ipv4.ip_unprivileged_port_start",
                        "net.ipv4.tcp_syncookies",
                        "net.ipv4.ping_group_range",
                        "net.ipv4.ip_local_reserved_ports",
                        "net.ipv4.tcp_keepalive_time",
                        "net.ipv4.tcp_fin_timeout",
                        "net.ipv4.tcp_keepalive_intvl",
                        "net.ipv4.tcp_keepalive_probes",
                        "net.ipv4.tcp_rmem",
                        "net.ipv4.tcp_wmem",
                    )
                ]
            )
        ],
    ),
    (
        "probes without host",
        [
            app(
                livenessProbe={"httpGet": {"path": "/", "port": 80, "host": ""}},
                readinessProbe={"tcpSocket": {"port": 80}},
                lifecycle={"preStop": {"exec": {"command": ["true"]}}},
            )
        ],
    ),
]

# (id, edits, the one violation at restricted); each of these passes baseline.
RESTRICTED_FAILS: list[tuple[str, list[Edit], str]] = [
    (
        "volume type",
        [volume(nfs={"server": "nas", "path": "/"})],
        'restricted volume types (volume "extra" uses restricted volume type "nfs")',
    ),
    (
        "allowPrivilegeEscalation true",
        [app_sc(allowPrivilegeEscalation=True)],
        'allowPrivilegeEscalation != false (container "app" must set'
        " securityContext.allowPrivilegeEscalation=false)",
    ),
    (
        "runAsNonRoot false",
        [pod_sc(runAsNonRoot=False)],
        "runAsNonRoot != true (pod must not set securityContext.runAsNonRoot=false)",
    ),
    (
        "runAsNonRoot unset",
        [drop_pod_sc("runAsNonRoot")],
        'runAsNonRoot != true (pod or containers "init", "app" must set'
        " securityContext.runAsNonRoot=true)",
    ),
    (
        "runAsUser 0",
        [pod_sc(runAsUser=0)],
        "runAsUser=0 (pod must not set runAsUser=0)",
    ),
    (
        "seccomp unset",
        [drop_pod_sc("seccompProfile")],
        'seccompProfile (pod or containers "init", "app" must set'
        ' securityContext.seccompProfile.type to "RuntimeDefault" or "Localhost")',
    ),
    (
        "capabilities not dropped",
        [app_sc(capabilities={"drop": ["NET_RAW"]})],
        'unrestricted capabilities (container "app" must set'
        ' securityContext.capabilities.drop=["ALL"])',
    ),
    (
        "capabilities unset and extra",
        [init_sc(capabilities=None), app_sc(capabilities={"drop": ["ALL"], "add": ["CHOWN"]})],
        'unrestricted capabilities (container "init" must set securityContext.capabilities.drop='
        '["ALL"]; container "app" must not include "CHOWN" in securityContext.capabilities.add)',
    ),
]

RESTRICTED_PASSES: list[tuple[str, list[Edit]]] = [
    (
        "NET_BIND_SERVICE",
        [app_sc(capabilities={"drop": ["ALL", "NET_RAW"], "add": ["NET_BIND_SERVICE"]})],
    ),
    ("runAsUser non-zero", [pod_sc(runAsUser=1000), app_sc(runAsUser=1001)]),
    (
        "runAsNonRoot per container",
        [drop_pod_sc("runAsNonRoot"), app_sc(runAsNonRoot=True), init_sc(runAsNonRoot=True)],
    ),
    (
        "seccomp per container",
        [
            drop_pod_sc("seccompProfile"),
            app_sc(seccompProfile={"type": "RuntimeDefault"}),
            init_sc(seccompProfile={"type": "Localhost", "localhostProfile": "p"}),
        ],
    ),
    (
        "user namespace relaxes runAsNonRoot and runAsUser",
        [spec(hostUsers=False), drop_pod_sc("runAsNonRoot"), app_sc(runAsUser=0)],
    ),
]


def ids(cases: list[Any]) -> list[str]:
    return [case[0] for case in cases]


# --- whole pods ------------------------------------------------------------------


@pytest.mark.parametrize("level", [*Level, "privileged", "baseline", "restricted"])
def test_compliant_restricted_pod_passes_every_level(level: Level | str) -> None:
    assert check(compliant(), level) == []


def test_plain_pod_passes_baseline_and_fails_restricted_with_the_classic_four() -> None:
    assert check(plain(), Level.BASELINE) == []
    assert check(plain(), Level.RESTRICTED) == CLASSIC_FOUR
    assert message(check(plain(), "restricted"), "restricted") == (
        'pod violates PodSecurity "restricted:latest": ' + ", ".join(CLASSIC_FOUR)
    )


def test_privileged_level_allows_everything() -> None:
    pod = edited(*[edit for case in BASELINE_FAILS + RESTRICTED_FAILS for edit in case[1]])
    assert len(check(pod, Level.RESTRICTED)) > 10
    assert check(pod, Level.PRIVILEGED) == []


def test_baseline_checks_come_first_then_restricted_each_in_check_id_order() -> None:
    pod = edited(
        pod_sc(windowsOptions={"hostProcess": True}, runAsUser=0),
        spec(hostNetwork=True),
        app_sc(allowPrivilegeEscalation=True, privileged=True),
    )
    reasons = [v.split(" (")[0] for v in check(pod, Level.RESTRICTED)]
    assert reasons == [
        "host namespaces",
        "privileged",
        "hostProcess",
        "allowPrivilegeEscalation != false",
        "runAsUser=0",
    ]


# --- one control at a time ---------------------------------------------------------


@pytest.mark.parametrize(("name", "edits", "violation"), BASELINE_FAILS, ids=ids(BASELINE_FAILS))
def test_baseline_control_fails(name: str, edits: list[Edit], violation: str) -> None:
    pod = edited(*edits)
    assert check(pod, Level.BASELINE) == [violation]
    assert check(pod, Level.RESTRICTED) == [violation]


@pytest.mark.parametrize(
    ("name", "edits", "at_baseline", "at_restricted"),
    BASELINE_ONLY_WORDING,
    ids=ids(BASELINE_ONLY_WORDING),
)
def test_restricted_replaces_the_baseline_check_of_the_same_control(
    name: str, edits: list[Edit], at_baseline: str, at_restricted: str
) -> None:
    pod = edited(*edits)
    assert check(pod, Level.BASELINE) == [at_baseline]
    assert check(pod, Level.RESTRICTED) == [at_restricted]


@pytest.mark.parametrize(("name", "edits"), BASELINE_PASSES, ids=ids(BASELINE_PASSES))
def test_baseline_control_passes(name: str, edits: list[Edit]) -> None:
    assert check(edited(*edits), Level.RESTRICTED) == []


def test_baseline_allows_default_capabilities_that_restricted_refuses() -> None:
    pod = edited(app_sc(capabilities={"add": ["CHOWN", "NET_BIND_SERVICE", "SYS_CHROOT"]}))
    assert check(pod, Level.BASELINE) == []
    assert check(pod, Level.RESTRICTED) == [
        'unrestricted capabilities (container "app" must set securityContext.capabilities.drop='
        '["ALL"]; container "app" must not include "CHOWN", "SYS_CHROOT" in'
        " securityContext.capabilities.add)"
    ]


def test_baseline_allows_hostpath_free_volumes_that_restricted_refuses() -> None:
    pod = edited(volume(gitRepo={"repository": "r"}), volume(rbd={"image": "i"}))
    assert check(pod, Level.BASELINE) == []
    assert check(pod, Level.RESTRICTED) == [
        'restricted volume types (volumes "extra", "extra" use restricted volume types'
        ' "gitRepo", "rbd")'
    ]


@pytest.mark.parametrize(
    ("name", "edits", "violation"), RESTRICTED_FAILS, ids=ids(RESTRICTED_FAILS)
)
def test_restricted_control_fails(name: str, edits: list[Edit], violation: str) -> None:
    pod = edited(*edits)
    assert check(pod, Level.BASELINE) == []
    assert check(pod, Level.RESTRICTED) == [violation]


@pytest.mark.parametrize(("name", "edits"), RESTRICTED_PASSES, ids=ids(RESTRICTED_PASSES))
def test_restricted_control_passes(name: str, edits: list[Edit]) -> None:
    assert check(edited(*edits), Level.RESTRICTED) == []


# --- pod-level values, container overrides ------------------------------------------


def test_container_runasnonroot_false_overrides_a_good_pod_level() -> None:
    pod = edited(app_sc(runAsNonRoot=False))
    assert check(pod, Level.RESTRICTED) == [
        'runAsNonRoot != true (container "app" must not set securityContext.runAsNonRoot=false)'
    ]


def test_pod_level_runasnonroot_false_fails_even_when_every_container_overrides_it() -> None:
    pod = edited(pod_sc(runAsNonRoot=False), app_sc(runAsNonRoot=True), init_sc(runAsNonRoot=True))
    assert check(pod, Level.RESTRICTED) == [
        "runAsNonRoot != true (pod must not set securityContext.runAsNonRoot=false)"
    ]


def test_explicit_bad_values_are_reported_before_missing_ones() -> None:
    pod = edited(pod_sc(runAsNonRoot=False), app_sc(runAsNonRoot=False))
    assert check(pod, Level.RESTRICTED) == [
        'runAsNonRoot != true (pod and container "app" must not set'
        " securityContext.runAsNonRoot=false)"
    ]


def test_container_seccomp_overrides_pod_level_both_ways() -> None:
    bad_container = edited(app_sc(seccompProfile={"type": "Unconfined"}))
    assert check(bad_container, Level.RESTRICTED) == [
        'seccompProfile (container "app" must not set securityContext.seccompProfile.type'
        ' to "Unconfined")'
    ]
    bad_pod = edited(
        pod_sc(seccompProfile={"type": "Unconfined"}),
        app_sc(seccompProfile={"type": "RuntimeDefault"}),
        init_sc(seccompProfile={"type": "RuntimeDefault"}),
    )
    assert check(bad_pod, Level.RESTRICTED) == [
        'seccompProfile (pod must not set securityContext.seccompProfile.type to "Unconfined")'
    ]


def test_a_container_without_seccomp_needs_a_good_pod_level_one() -> None:
    pod = edited(drop_pod_sc("seccompProfile"), init_sc(seccompProfile={"type": "RuntimeDefault"}))
    assert check(pod, Level.RESTRICTED) == [
        'seccompProfile (pod or container "app" must set securityContext.seccompProfile.type'
        ' to "RuntimeDefault" or "Localhost")'
    ]


def test_selinux_lists_every_offender_and_every_problem() -> None:
    pod = edited(
        pod_sc(seLinuxOptions={"type": "spc_t"}),
        app_sc(seLinuxOptions={"type": "unconfined_t", "user": "u"}),
        init_sc(seLinuxOptions={"type": "container_t"}),
    )
    assert check(pod, Level.BASELINE) == [
        'seLinuxOptions (pod and container "app" set forbidden securityContext.seLinuxOptions:'
        ' types "spc_t", "unconfined_t"; user may not be set)'
    ]


# --- which containers ---------------------------------------------------------------


def test_init_and_ephemeral_containers_are_checked() -> None:
    pod = edited(
        init_sc(privileged=True),
        add_container("debug", kind="ephemeralContainers", image="busybox"),
    )
    assert check(pod, Level.BASELINE) == [
        'privileged (container "init" must not set securityContext.privileged=true)'
    ]
    assert check(pod, Level.RESTRICTED) == [
        'privileged (container "init" must not set securityContext.privileged=true)',
        'allowPrivilegeEscalation != false (container "debug" must set'
        " securityContext.allowPrivilegeEscalation=false)",
        'unrestricted capabilities (container "debug" must set'
        ' securityContext.capabilities.drop=["ALL"])',
    ]


def test_names_come_in_visiting_order_and_plural() -> None:
    pod = edited(
        add_container(
            "sidecar", ports=[{"hostPort": 443}], securityContext=dict(SAFE_CONTAINER_SC)
        ),
        app(ports=[{"containerPort": 80, "hostPort": 8080}]),
        init_sc(procMount="Unmasked"),
        app_sc(procMount="Unmasked"),
    )
    assert check(pod, Level.BASELINE) == [
        'hostPort (containers "app", "sidecar" use hostPorts 443, 8080)',
        'procMount (containers "init", "app" must not set securityContext.procMount to "Unmasked")',
    ]


# --- exemptions -------------------------------------------------------------------------


def test_windows_pods_are_exempt_from_linux_only_restricted_checks() -> None:
    pod = plain()
    pod["spec"]["os"] = {"name": "windows"}
    assert check(pod, Level.RESTRICTED) == [
        'runAsNonRoot != true (pod or container "app" must set securityContext.runAsNonRoot=true)'
    ]
    pod["spec"]["securityContext"] = {"runAsNonRoot": True}
    assert check(pod, Level.RESTRICTED) == []
    pod["spec"]["os"] = {"name": "linux"}
    assert len(check(pod, Level.RESTRICTED)) == 3


def test_user_namespaces_relax_procmount_at_baseline_only() -> None:
    pod = edited(spec(hostUsers=False), app_sc(procMount="Unmasked"))
    assert check(pod, Level.BASELINE) == []
    assert check(pod, Level.RESTRICTED) == [
        'procMount (container "app" must not set securityContext.procMount to "Unmasked")'
    ]


def test_host_users_true_is_not_a_relaxation() -> None:
    pod = edited(spec(hostUsers=True), pod_sc(runAsUser=0))
    assert check(pod, Level.RESTRICTED) == ["runAsUser=0 (pod must not set runAsUser=0)"]


# --- API ------------------------------------------------------------------------------------


def test_levels_match_the_config_and_accept_its_enum() -> None:
    assert {str(level) for level in Level} == {str(level) for level in PodSecurityStandard}
    assert check(plain(), PodSecurityStandard.RESTRICTED) == CLASSIC_FOUR


def test_unknown_level_is_an_error_not_a_free_pass() -> None:
    with pytest.raises(ValueError, match="strict"):
        check(plain(), "strict")


def test_message_names_the_level_and_needs_a_violation() -> None:
    assert message(['hostPort (container "app" uses hostPort 80)'], Level.BASELINE) == (
        'pod violates PodSecurity "baseline:latest": hostPort (container "app" uses hostPort 80)'
    )
    with pytest.raises(ValueError, match="violation"):
        message([], Level.BASELINE)


# --- properties -------------------------------------------------------------------------------

SC_VALUES: dict[str, st.SearchStrategy[Any]] = {
    "privileged": st.booleans(),
    "allowPrivilegeEscalation": st.booleans(),
    "runAsNonRoot": st.booleans(),
    "runAsUser": st.sampled_from([0, 1000]),
    "procMount": st.sampled_from(["Default", "Unmasked"]),
    "capabilities": st.fixed_dictionaries(
        {},
        optional={
            "add": st.lists(st.sampled_from(["CHOWN", "NET_BIND_SERVICE", "SYS_ADMIN"])),
            "drop": st.lists(st.sampled_from(["ALL", "NET_RAW"])),
        },
    ),
    "seccompProfile": st.builds(dict, type=st.sampled_from(["RuntimeDefault", "Unconfined"])),
    "appArmorProfile": st.builds(dict, type=st.sampled_from(["Localhost", "Unconfined"])),
    "seLinuxOptions": st.builds(dict, type=st.sampled_from(["container_t", "spc_t"])),
    "windowsOptions": st.builds(dict, hostProcess=st.booleans()),
}
security_contexts = st.fixed_dictionaries({}, optional=SC_VALUES)
containers = st.lists(
    st.builds(
        lambda i, sc, port: {
            "name": f"c{i}",
            "securityContext": sc,
            "ports": [{"containerPort": 80, "hostPort": port}],
        },
        st.integers(0, 9),
        security_contexts,
        st.sampled_from([0, 80]),
    ),
    max_size=3,
)
pods = st.builds(
    lambda sc, init, regular, hosts, volume_type, linux: {
        "metadata": {"annotations": {APPARMOR_KEY: "unconfined"}} if linux else {},
        "spec": {
            "os": {"name": "linux" if linux else "windows"},
            "securityContext": sc,
            "initContainers": init,
            "containers": regular,
            "hostNetwork": hosts,
            "volumes": [{"name": "v", volume_type: {}}],
        },
    },
    security_contexts,
    containers,
    containers,
    st.booleans(),
    st.sampled_from(["emptyDir", "hostPath", "nfs"]),
    st.booleans(),
)


@settings(max_examples=200, deadline=None)
@given(pods)
def test_check_never_mutates_and_privileged_allows_all(pod: Obj) -> None:
    before = copy.deepcopy(pod)
    results = {level: check(pod, level) for level in Level}
    assert pod == before
    assert results[Level.PRIVILEGED] == []


@settings(max_examples=200, deadline=None)
@given(pods)
def test_levels_are_cumulative_for_linux_pods(pod: Obj) -> None:
    pod["spec"]["os"] = {"name": "linux"}
    if check(pod, Level.BASELINE):
        assert check(pod, Level.RESTRICTED)


JUNK_KEYS = ["spec", "metadata", "annotations", "containers", "initContainers", "securityContext"]
JUNK_KEYS += ["name", "volumes", "capabilities", "add", "drop", "ports", "hostPort", "sysctls"]
junk = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=5),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.sampled_from(JUNK_KEYS), inner, max_size=4)
    ),
    max_leaves=30,
)


@settings(max_examples=200, deadline=None)
@given(junk)
def test_malformed_input_never_crashes(junk: Any) -> None:
    pod = junk if isinstance(junk, dict) else {"spec": junk}
    for level in Level:
        assert isinstance(check(pod, level), list)
