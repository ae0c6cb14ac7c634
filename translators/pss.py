"""Pod Security Standards: the checks the syncer runs before a virtual pod reaches the host.

Tenants cannot label host namespaces, so the host's own PodSecurity admission
cannot tell one tenant's level from another's; the syncer has to enforce the
configured level (``policies.podSecurityStandard``) itself, and refuse a
violating pod before copying it. Doing that with the exact rules and wording
of kube-apiserver's PodSecurity admission (``k8s.io/pod-security-admission``,
policy version "latest" of Kubernetes v1.36) means a pod the tenant's own
``kubectl`` would accept under the same level is accepted here too, and the
Warning event reads like the message tenants already know from kubectl.

Everything here is a pure function of a pod as decoded from the JSON API:
inputs are only read, never mutated. Messages quote only what the tenant wrote
(container and volume names, field paths, values), never host names, so they
can be put on the virtual pod as they are.

Like PSA, a check reports one violation per control, naming every offending
container; baseline controls come first, then restricted ones, each group in
PSA's check-ID order, so the aggregate message matches kube-apiserver's.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, NamedTuple, TypeAlias

_Map: TypeAlias = Mapping[str, Any]


class Level(StrEnum):
    """The three Pod Security Standards levels, same spelling as the config and PSA."""

    PRIVILEGED = "privileged"
    BASELINE = "baseline"
    RESTRICTED = "restricted"


_VERSION = "latest"

_BASELINE_CAPABILITIES = frozenset(
    {
        "AUDIT_WRITE",
        "CHOWN",
        "DAC_OVERRIDE",
        "FOWNER",
        "FSETID",
        "KILL",
        "MKNOD",
        "NET_BIND_SERVICE",
        "SETFCAP",
        "SETGID",
        "SETPCAP",
        "SETUID",
        "SYS_CHROOT",
    }
)
_APPARMOR_ANNOTATION_PREFIX = "container.apparmor.security.beta.kubernetes.io/"
_APPARMOR_TYPES = frozenset({"RuntimeDefault", "Localhost"})
_SECCOMP_TYPES = frozenset({"RuntimeDefault", "Localhost"})
_SELINUX_TYPES = frozenset(
    {"", "container_t", "container_init_t", "container_kvm_t", "container_engine_t"}
)
# PSA sysctlsAllowedV1Dot32, the newest set in v1.36 (tcp_rmem/tcp_wmem since policy 1.32).
_SAFE_SYSCTLS = frozenset(
    {
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
    }
)
# `image` has been allowed since v1.33 (kubernetes#130394), though the docs page lags.
_RESTRICTED_VOLUME_TYPES = frozenset(
    {
        "configMap",
        "csi",
        "downwardAPI",
        "emptyDir",
        "ephemeral",
        "image",
        "persistentVolumeClaim",
        "projected",
        "secret",
    }
)
_PROBES = ("livenessProbe", "readinessProbe", "startupProbe")
_LIFECYCLE_HOOKS = ("postStart", "preStop")


# --- reading a decoded pod -----------------------------------------------------


class _Pod(NamedTuple):
    """The parts of a pod the checks read, with nulls and absences already smoothed."""

    annotations: _Map
    spec: _Map
    containers: tuple[_Map, ...]
    """Init, regular, then ephemeral containers: PSA's visiting order, so names come out alike."""


def _map(value: Any) -> _Map:
    return value if isinstance(value, Mapping) else {}


def _seq(value: Any) -> Sequence[Any]:
    return value if isinstance(value, list | tuple) else ()


def _get(obj: Any, *path: str) -> Any:
    """The value at `path`, or None if anything on the way is absent, null or not an object."""
    for key in path:
        obj = _map(obj).get(key)
    return obj


def _sc(holder: _Map) -> _Map:
    """securityContext of a pod spec or a container; they share the key and the checked fields."""
    return _map(holder.get("securityContext"))


def _name(container: _Map) -> str:
    return str(container.get("name") or "")


def _view(pod: _Map) -> _Pod:
    spec = _map(pod.get("spec"))
    kinds = ("initContainers", "containers", "ephemeralContainers")
    return _Pod(
        annotations=_map(_get(pod, "metadata", "annotations")),
        spec=spec,
        containers=tuple(_map(c) for kind in kinds for c in _seq(spec.get(kind))),
    )


def _is_windows(pod: _Pod) -> bool:
    """Windows pods cannot set the Linux-only fields some restricted checks demand (PSA 1.25+)."""
    return bool(_get(pod.spec, "os", "name") == "windows")


def _in_user_namespace(pod: _Pod) -> bool:
    """`hostUsers: false`: root in the pod is not root on the node (PSA 1.35+ relaxes for it)."""
    return pod.spec.get("hostUsers") is False


# --- wording, as PSA words it ---------------------------------------------------


def _plural(count: int, singular: str, plural: str) -> str:
    return singular if count == 1 else plural


def _quote(items: Sequence[str]) -> str:
    """PSA's joinQuote: `"a", "b"`."""
    return ", ".join(f'"{item}"' for item in items)


def _containers(names: Sequence[str]) -> str:
    return f"{_plural(len(names), 'container', 'containers')} {_quote(names)}"


def _volumes_phrase(names: Sequence[str]) -> str:
    return f"{_plural(len(names), 'volume', 'volumes')} {_quote(names)}"


def _violation(reason: str, detail: str) -> str:
    return f"{reason} ({detail})"


class _Hits(NamedTuple):
    """Who sets a forbidden value (the pod-level securityContext, which containers) and what."""

    pod: bool
    names: list[str]
    values: list[str]
    """Distinct forbidden values, sorted like PSA's sets."""

    def setters(self) -> str:
        """`pod and containers "a", "b"`: the subject of PSA's "must not set" sentences."""
        parts = (["pod"] if self.pod else []) + ([_containers(self.names)] if self.names else [])
        return " and ".join(parts)


_Finder: TypeAlias = Callable[[_Map], Collection[str]]
"""Forbidden values a pod spec or a container sets (empty: none)."""


def _scan(pod: _Pod, find: _Finder, *, pod_level: bool = True) -> _Hits | None:
    """Run `find` on the pod spec (unless the field is container-only) and each container."""
    found_in_pod = find(pod.spec) if pod_level else ()
    values = set(found_in_pod)
    names = []
    for container in pod.containers:
        if found := find(container):
            names.append(_name(container))
            values.update(found)
    if not found_in_pod and not names:
        return None
    return _Hits(bool(found_in_pod), names, sorted(values))


def _one(value: str | None) -> Collection[str]:
    return () if value is None else (value,)


def _flag(bad: bool) -> Collection[str]:
    """A finder result for checks whose message names only who, not which value."""
    return ("set",) if bad else ()


# --- baseline checks -------------------------------------------------------------


def _apparmor_type(holder: _Map) -> Collection[str]:
    profile = _sc(holder).get("appArmorProfile")
    if profile is None:
        return ()
    profile_type = str(_map(profile).get("type") or "")
    return _one(None if profile_type in _APPARMOR_TYPES else profile_type)


def _apparmor_annotation_allowed(value: str) -> bool:
    return value in ("", "runtime/default") or value.startswith("localhost/")


def _apparmor(pod: _Pod) -> str | None:
    """Unconfined AppArmor, by field (pod or container) or by the deprecated annotations."""
    hits = _scan(pod, _apparmor_type)
    # PSA prints these as Go's `%s=%q`; JSON string quoting is the same for real values.
    annotations = sorted(
        f"{key}={json.dumps(str(value), ensure_ascii=False)}"
        for key, value in pod.annotations.items()
        if str(key).startswith(_APPARMOR_ANNOTATION_PREFIX)
        and not _apparmor_annotation_allowed(str(value))
    )
    if hits is None and not annotations:
        return None
    setters = [hits.setters()] if hits else []
    values = (hits.values if hits else []) + annotations
    if annotations:
        setters.append(_plural(len(annotations), "annotation", "annotations"))
    reason = _plural(len(values), "forbidden AppArmor profile", "forbidden AppArmor profiles")
    return _violation(
        reason, f"{' and '.join(setters)} must not set AppArmor profile type to {_quote(values)}"
    )


def _non_default_capabilities(container: _Map) -> Collection[str]:
    added = _get(_sc(container), "capabilities", "add")
    return [cap for cap in map(str, _seq(added)) if cap not in _BASELINE_CAPABILITIES]


def _capabilities_baseline(pod: _Pod) -> str | None:
    """Capabilities beyond the container runtimes' default set."""
    hits = _scan(pod, _non_default_capabilities, pod_level=False)
    if hits is None:
        return None
    return _violation(
        "non-default capabilities",
        f"{hits.setters()} must not include {_quote(hits.values)}"
        " in securityContext.capabilities.add",
    )


def _host_namespaces(pod: _Pod) -> str | None:
    keys = ("hostNetwork", "hostPID", "hostIPC")
    shared = [f"{key}=true" for key in keys if pod.spec.get(key) is True]
    return _violation("host namespaces", ", ".join(shared)) if shared else None


def _volumes(pod: _Pod) -> list[_Map]:
    return [_map(volume) for volume in _seq(pod.spec.get("volumes"))]


def _host_path_volumes(pod: _Pod) -> str | None:
    names = [_name(v) for v in _volumes(pod) if v.get("hostPath") is not None]
    if not names:
        return None
    return _violation("hostPath volumes", _volumes_phrase(names))


def _host_ports(container: _Map) -> Collection[str]:
    return [str(port) for p in _seq(container.get("ports")) if (port := _get(p, "hostPort"))]


def _host_port(pod: _Pod) -> str | None:
    hits = _scan(pod, _host_ports, pod_level=False)
    if hits is None:
        return None
    count = len(hits.names)
    return _violation(
        "hostPort",
        f"{hits.setters()} {_plural(count, 'uses', 'use')}"
        f" {_plural(len(hits.values), 'hostPort', 'hostPorts')} {', '.join(hits.values)}",
    )


def _probe_hosts(container: _Map) -> Collection[str]:
    handlers = [container.get(probe) for probe in _PROBES]
    handlers += [_get(container, "lifecycle", hook) for hook in _LIFECYCLE_HOOKS]
    return [
        str(host)
        for handler in handlers
        for action in ("httpGet", "tcpSocket")
        if (host := _get(handler, action, "host"))
    ]


def _probe_or_lifecycle_host(pod: _Pod) -> str | None:
    """A probe or hook `host` makes the kubelet connect wherever the tenant says (PSA 1.34+)."""
    hits = _scan(pod, _probe_hosts, pod_level=False)
    if hits is None:
        return None
    names = sorted(set(hits.names))
    return _violation(
        "probe or lifecycle host",
        f"{_containers(names)} {_plural(len(names), 'uses', 'use')}"
        f" {_plural(len(hits.values), 'probe or lifecycle host', 'probe or lifecycle hosts')}"
        f" {_quote(hits.values)}",
    )


def _privileged(pod: _Pod) -> str | None:
    hits = _scan(pod, lambda c: _flag(_sc(c).get("privileged") is True), pod_level=False)
    if hits is None:
        return None
    detail = f"{hits.setters()} must not set securityContext.privileged=true"
    return _violation("privileged", detail)


def _proc_mount_type(container: _Map) -> Collection[str]:
    proc_mount = _sc(container).get("procMount")
    return _one(None if proc_mount in (None, "Default") else str(proc_mount))


def _proc_mount(pod: _Pod) -> str | None:
    """Unmasked /proc exposes the host's kernel interfaces the default masks hide."""
    hits = _scan(pod, _proc_mount_type, pod_level=False)
    if hits is None:
        return None
    detail = f"{hits.setters()} must not set securityContext.procMount to {_quote(hits.values)}"
    return _violation("procMount", detail)


def _selinux_options(holder: _Map) -> _Map | None:
    options = _sc(holder).get("seLinuxOptions")
    return None if options is None else _map(options)


def _selinux_type(options: _Map) -> str:
    return str(options.get("type") or "")


def _selinux_forbidden(holder: _Map) -> Collection[str]:
    options = _selinux_options(holder)
    if options is None:
        return ()
    return _flag(
        _selinux_type(options) not in _SELINUX_TYPES
        or bool(options.get("user"))
        or bool(options.get("role"))
    )


def _selinux(pod: _Pod) -> str | None:
    """A custom SELinux type, user or role can lift a container out of the container domain."""
    hits = _scan(pod, _selinux_forbidden)
    if hits is None:
        return None
    # Only offending holders can contribute a bad type, user or role, so read them all.
    every = [o for h in (pod.spec, *pod.containers) if (o := _selinux_options(h)) is not None]
    types = sorted({_selinux_type(o) for o in every} - _SELINUX_TYPES)
    problems = [f"{_plural(len(types), 'type', 'types')} {_quote(types)}"] if types else []
    problems += [f"{k} may not be set" for k in ("user", "role") if any(o.get(k) for o in every)]
    return _violation(
        "seLinuxOptions",
        f"{hits.setters()} set forbidden securityContext.seLinuxOptions: {'; '.join(problems)}",
    )


def _seccomp_type(profile: Any) -> str:
    return str(_map(profile).get("type") or "")


def _bad_seccomp(holder: _Map) -> Collection[str]:
    profile = _sc(holder).get("seccompProfile")
    if profile is None or _seccomp_type(profile) in _SECCOMP_TYPES:
        return ()
    return (_seccomp_type(profile),)


def _seccomp_explicit(hits: _Hits) -> str:
    values = _quote(hits.values)
    detail = f"{hits.setters()} must not set securityContext.seccompProfile.type to {values}"
    return _violation("seccompProfile", detail)


def _seccomp_baseline(pod: _Pod) -> str | None:
    """Only an explicit Unconfined (or unknown) profile; baseline allows leaving it unset."""
    hits = _scan(pod, _bad_seccomp)
    return None if hits is None else _seccomp_explicit(hits)


def _sysctls(pod: _Pod) -> str | None:
    """Sysctls outside the namespaced, pod-isolated "safe" set reach every pod on the node."""
    names = [str(_map(s).get("name") or "") for s in _seq(_sc(pod.spec).get("sysctls"))]
    forbidden = [name for name in names if name not in _SAFE_SYSCTLS]
    return _violation("forbidden sysctls", ", ".join(forbidden)) if forbidden else None


def _host_process(pod: _Pod) -> str | None:
    """A Windows HostProcess container runs as a process on the node itself."""
    hits = _scan(pod, lambda h: _flag(_get(_sc(h), "windowsOptions", "hostProcess") is True))
    if hits is None:
        return None
    detail = f"{hits.setters()} must not set securityContext.windowsOptions.hostProcess=true"
    return _violation("hostProcess", detail)


# --- restricted checks -----------------------------------------------------------


def _allow_privilege_escalation(pod: _Pod) -> str | None:
    hits = _scan(
        pod, lambda c: _flag(_sc(c).get("allowPrivilegeEscalation") is not False), pod_level=False
    )
    if hits is None:
        return None
    return _violation(
        "allowPrivilegeEscalation != false",
        f"{hits.setters()} must set securityContext.allowPrivilegeEscalation=false",
    )


def _capabilities_restricted(pod: _Pod) -> str | None:
    """Drop ALL, add back at most NET_BIND_SERVICE (replaces the baseline capabilities check)."""
    missing_drop_all = []
    adding = []
    forbidden: set[str] = set()
    for container in pod.containers:
        capabilities = _sc(container).get("capabilities")
        if capabilities is None or "ALL" not in _seq(_get(capabilities, "drop")):
            missing_drop_all.append(_name(container))
        added = [str(cap) for cap in _seq(_get(capabilities, "add")) if cap != "NET_BIND_SERVICE"]
        if added:
            adding.append(_name(container))
            forbidden.update(added)
    details = []
    if missing_drop_all:
        details.append(
            f'{_containers(missing_drop_all)} must set securityContext.capabilities.drop=["ALL"]'
        )
    if adding:
        details.append(
            f"{_containers(adding)} must not include {_quote(sorted(forbidden))}"
            " in securityContext.capabilities.add"
        )
    return _violation("unrestricted capabilities", "; ".join(details)) if details else None


def _restricted_volumes(pod: _Pod) -> str | None:
    """Only volume types that need no node access or are mediated by PVs/CSI (replaces hostPath)."""
    names = []
    types = set()
    for volume in _volumes(pod):
        sources = [key for key, value in volume.items() if key != "name" and value is not None]
        if not _RESTRICTED_VOLUME_TYPES.intersection(sources):
            names.append(_name(volume))
            types.add(str(sources[0]) if sources else "unknown")
    if not names:
        return None
    return _violation(
        "restricted volume types",
        f"{_volumes_phrase(names)} {_plural(len(names), 'uses', 'use')}"
        f" {_plural(len(types), 'restricted volume type', 'restricted volume types')}"
        f" {_quote(sorted(types))}",
    )


def _required(pod: _Pod, field: str, find_bad: _Finder) -> tuple[_Hits | None, list[str]]:
    """PSA's rule for a field the pod level may set for all containers (runAsNonRoot, seccomp).

    Returns who sets a bad value explicitly (the pod's own bad value counts even
    when every container overrides it), and which containers leave the field
    unset without a good pod-level value to inherit.
    """
    inherited = _sc(pod.spec).get(field) is not None and not find_bad(pod.spec)
    implicit = [_name(c) for c in pod.containers if _sc(c).get(field) is None and not inherited]
    return _scan(pod, find_bad), implicit


def _run_as_non_root_false(holder: _Map) -> Collection[str]:
    value = _sc(holder).get("runAsNonRoot")
    return _flag(value is not None and value is not True)


def _run_as_non_root(pod: _Pod) -> str | None:
    explicit, implicit = _required(pod, "runAsNonRoot", _run_as_non_root_false)
    reason = "runAsNonRoot != true"
    if explicit:
        detail = f"{explicit.setters()} must not set securityContext.runAsNonRoot=false"
        return _violation(reason, detail)
    if implicit:
        detail = f"pod or {_containers(implicit)} must set securityContext.runAsNonRoot=true"
        return _violation(reason, detail)
    return None


def _is_zero(value: Any) -> bool:
    return type(value) is int and value == 0


def _run_as_user(pod: _Pod) -> str | None:
    hits = _scan(pod, lambda h: _flag(_is_zero(_sc(h).get("runAsUser"))))
    if hits is None:
        return None
    return _violation("runAsUser=0", f"{hits.setters()} must not set runAsUser=0")


def _seccomp_restricted(pod: _Pod) -> str | None:
    """RuntimeDefault or Localhost, explicitly (replaces the baseline seccomp check)."""
    explicit, implicit = _required(pod, "seccompProfile", _bad_seccomp)
    if explicit:
        return _seccomp_explicit(explicit)
    if implicit:
        return _violation(
            "seccompProfile",
            f"pod or {_containers(implicit)} must set securityContext.seccompProfile.type"
            ' to "RuntimeDefault" or "Localhost"',
        )
    return None


# --- the policy ------------------------------------------------------------------

_CheckFn: TypeAlias = Callable[[_Pod], str | None]


def _unless(exempt: Callable[[_Pod], bool], check_fn: _CheckFn) -> _CheckFn:
    """`check_fn`, skipped for pods PSA exempts from it."""
    return lambda pod: None if exempt(pod) else check_fn(pod)


@dataclass(frozen=True)
class _Check:
    """One PSA check: its ID orders the messages; a restricted check may replace a baseline one."""

    id: str
    run: _CheckFn
    replaces: str | None = None


_BASELINE = (
    _Check("appArmorProfile", _apparmor),
    _Check("capabilities_baseline", _capabilities_baseline),
    _Check("hostNamespaces", _host_namespaces),
    _Check("hostPathVolumes", _host_path_volumes),
    _Check("hostPorts", _host_port),
    _Check("hostProbesAndHostLifecycle", _probe_or_lifecycle_host),
    _Check("privileged", _privileged),
    _Check("procMount", _unless(_in_user_namespace, _proc_mount)),
    _Check("seLinuxOptions", _selinux),
    _Check("seccompProfile_baseline", _seccomp_baseline),
    _Check("sysctls", _sysctls),
    _Check("windowsHostProcess", _host_process),
)
_RESTRICTED = (
    _Check("allowPrivilegeEscalation", _unless(_is_windows, _allow_privilege_escalation)),
    _Check(
        "capabilities_restricted",
        _unless(_is_windows, _capabilities_restricted),
        replaces="capabilities_baseline",
    ),
    _Check("procMount_restricted", _proc_mount, replaces="procMount"),
    _Check("restrictedVolumes", _restricted_volumes, replaces="hostPathVolumes"),
    _Check("runAsNonRoot", _unless(_in_user_namespace, _run_as_non_root)),
    _Check("runAsUser", _unless(_in_user_namespace, _run_as_user)),
    _Check(
        "seccompProfile_restricted",
        _unless(_is_windows, _seccomp_restricted),
        replaces="seccompProfile_baseline",
    ),
)


def _by_id(checks: Sequence[_Check]) -> tuple[_Check, ...]:
    return tuple(sorted(checks, key=lambda c: c.id))


_REPLACED = {c.replaces for c in _RESTRICTED}
_PLANS: dict[Level, tuple[_Check, ...]] = {
    Level.PRIVILEGED: (),
    Level.BASELINE: _by_id(_BASELINE),
    Level.RESTRICTED: _by_id([c for c in _BASELINE if c.id not in _REPLACED]) + _by_id(_RESTRICTED),
}


def check(pod: Mapping[str, Any], level: Level | str) -> list[str]:
    """The pod's violations of `level` in PSA's words; empty if the pod may be synced.

    Each entry is one control, e.g. ``privileged (container "app" must not set
    securityContext.privileged=true)``. `level` may be any spelling of a level
    (a `Level`, the config's enum, or its string); anything else raises
    ValueError rather than silently enforcing nothing.
    """
    view = _view(pod)
    return [v for c in _PLANS[Level(level)] if (v := c.run(view)) is not None]


def message(violations: Sequence[str], level: Level | str) -> str:
    """The Warning event for a pod `check` refused, in kube-apiserver's wording.

    Raises ValueError for no violations: there is nothing to warn about, and a
    caller that gets here has a bug worth hearing about.
    """
    if not violations:
        raise ValueError("a PodSecurity message needs at least one violation")
    return f'pod violates PodSecurity "{Level(level)}:{_VERSION}": {", ".join(violations)}'
