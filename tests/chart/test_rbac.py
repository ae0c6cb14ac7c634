"""The syncer's host RBAC: exactly what the enabled translators touch, nothing more."""

from __future__ import annotations

import shutil
from collections import defaultdict
from pathlib import Path

import pytest
import yaml

from contract import resources
from contract.resources import Obj, Resource
from contract.translator import Direction, Side
from syncer import config
from syncer.app import select_translators
from tests.chart.rendering import (
    CHART,
    NAMESPACE,
    RELEASE,
    VALUE_SETS,
    find,
    generator,
    helm,
    render,
    set_flags,
    syncer_config,
)
from tests.support import install_plugin

READ = ["get", "list", "watch"]
GET_LIST = ["get", "list"]
WRITE = ["create", "delete", "get", "list", "patch", "watch"]
Table = dict[str, list[str]]


def rule(group: str, resource: str, verbs: list[str]) -> Obj:
    return {"apiGroups": [group], "resources": [resource], "verbs": verbs}


KUBELET_RULES = [
    rule("", "pods/attach", ["create"]),
    rule("", "pods/ephemeralcontainers", ["patch"]),
    rule("", "pods/exec", ["create"]),
    rule("", "pods/log", ["get"]),
    rule("", "pods/portforward", ["create"]),
]
"""Debug containers, and the subresources the kubelet endpoint forwards tenants' calls to."""
POD_METRICS_RULE = rule("metrics.k8s.io", "pods", GET_LIST)
NODE_METRICS_RULE = rule("metrics.k8s.io", "nodes", GET_LIST)
"""What the metrics API (syncer.metricsapi) reads: this namespace's pods, the nodes."""


def rendered_rules(objects: list[Obj]) -> tuple[list[Obj], list[Obj] | None]:
    role = find(objects, "Role", f"vc-{RELEASE}")
    cluster = [o for o in objects if o["kind"] == "ClusterRole"]
    return role["rules"], (cluster[0]["rules"] if cluster else None)


def test_default_rules() -> None:
    """The defaults: pods, services, endpoints, PVCs, ConfigMaps, Secrets down; nodes and
    events up. Namespaced rules only in the release namespace; nodes read-only."""
    objects = render()
    role, cluster = rendered_rules(objects)
    assert role == [
        rule("", "configmaps", WRITE),
        rule("", "endpoints", WRITE),
        rule("", "events", READ),
        rule("", "persistentvolumeclaims", WRITE),
        rule("", "pods", WRITE),
        *KUBELET_RULES,
        rule("", "secrets", [*WRITE[:5], "update", "watch"]),
        rule("", "services", WRITE),
        POD_METRICS_RULE,
    ]
    assert cluster == [rule("", "nodes", READ), NODE_METRICS_RULE]
    binding = find(objects, "ClusterRoleBinding", f"vc-{RELEASE}-v-{NAMESPACE}")
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": f"vc-{RELEASE}", "namespace": NAMESPACE}]
    assert find(objects, "RoleBinding", f"vc-{RELEASE}")["roleRef"]["kind"] == "Role"


def test_minimal_rules() -> None:
    """Only pods synced, nothing from the host: no ClusterRole at all."""
    objects = render([
        "sync.toHost.services.enabled=false", "sync.toHost.endpoints.enabled=false",
        "sync.toHost.persistentVolumeClaims.enabled=false",
        "sync.toHost.configMaps.enabled=false", "sync.toHost.secrets.enabled=false",
        "sync.fromHost.nodes.enabled=false", "sync.fromHost.events.enabled=false",
    ])
    role, cluster = rendered_rules(objects)
    assert role == [
        rule("", "pods", WRITE),
        *KUBELET_RULES,
        rule("", "secrets", ["create", "get", "update"]),
        rule("", "services", READ),
        POD_METRICS_RULE,
    ]
    assert cluster is None
    assert not [o for o in objects if o["kind"] == "ClusterRoleBinding"]


def test_everything_on() -> None:
    """All toggles on, two replicas: ingresses/networkpolicies in the namespace, read-only
    classes, PriorityClasses written (the one exception), and the Lease."""
    role, cluster = rendered_rules(render([
        *VALUE_SETS["etcd-embedded-ha"],
        "sync.toHost.ingresses.enabled=true", "sync.toHost.networkPolicies.enabled=true",
        "sync.toHost.priorityClasses.enabled=true", "sync.fromHost.storageClasses.enabled=true",
        "sync.fromHost.ingressClasses.enabled=true",
    ]))
    assert rule("networking.k8s.io", "ingresses", WRITE) in role
    assert rule("networking.k8s.io", "networkpolicies", WRITE) in role
    assert role[-2:] == [
        rule("coordination.k8s.io", "leases", ["create"]),
        {**rule("coordination.k8s.io", "leases", ["get", "update"]),
         "resourceNames": [f"vcsync-{RELEASE}"]},
    ]
    assert cluster == [
        rule("", "nodes", READ),
        NODE_METRICS_RULE,
        rule("networking.k8s.io", "ingressclasses", READ),
        rule("scheduling.k8s.io", "priorityclasses", WRITE),
        rule("storage.k8s.io", "storageclasses", READ),
    ]


def test_classes_shown_from_the_host_are_read_only() -> None:
    """Runtime and priority classes shown to the tenant: read, never written (issue 22)."""
    _, cluster = rendered_rules(render([
        "sync.fromHost.runtimeClasses.enabled=true", "sync.fromHost.priorityClasses.enabled=true",
    ]))
    assert cluster == [
        rule("", "nodes", READ),
        rule("metrics.k8s.io", "nodes", ["get", "list"]),
        rule("node.k8s.io", "runtimeclasses", READ),
        rule("scheduling.k8s.io", "priorityclasses", READ),
    ]


def needed(cfg: config.SyncerConfig) -> tuple[Table, Table]:
    """What the syncer touches on the host, derived from the translators it would run
    (independently of ``Translator.host_permissions``, which the chart's rules come from)."""
    tables: dict[bool, defaultdict[str, set[str]]] = {True: defaultdict(set),
                                                      False: defaultdict(set)}

    def add(res: Resource, verbs: list[str], subresource: str = "") -> None:
        key = f"{res.group}/{res.plural}" + (f"/{subresource}" if subresource else "")
        tables[res.namespaced][key].update(verbs)

    add(resources.SERVICES, ["get"])  # syncer.app: the API Service's ClusterIP at start-up
    for t in select_translators(cfg):
        add(t.host, WRITE if t.direction == Direction.TO_HOST else READ)
        cached = [*t.reads(), *((i.side, i.resource) for i in t.indexes()),
                  *((tr.side, tr.resource) for tr in t.triggers())]
        for side, res in cached:
            if side == Side.HOST:
                add(res, READ)
        for extra in t.host_rules:  # declared; pinned by the tests of exact rules above
            add(extra.resource, list(extra.verbs), extra.subresource)
    return ({k: sorted(v) for k, v in tables[True].items()},
            {k: sorted(v) for k, v in tables[False].items()})


def as_table(rules: list[Obj] | None) -> Table:
    return {
        f"{r['apiGroups'][0]}/{r['resources'][0]}": r["verbs"]
        for r in rules or [] if "resourceNames" not in r and r["resources"] != ["leases"]
    }


@pytest.mark.parametrize("name", sorted(VALUE_SETS))
def test_rules_match_what_the_translators_touch(name: str, tmp_path: Path) -> None:
    """For every value set: the rendered rules equal the table derived from the translators
    the rendered config enables (a translator that starts reading another host kind fails
    here until the chart grants it)."""
    objects = render(VALUE_SETS[name])
    path = tmp_path / "config.yaml"
    path.write_text(syncer_config(objects))
    cfg = config.load(path)
    role, cluster = rendered_rules(objects)
    namespaced, cluster_scoped = needed(cfg)
    assert as_table(role) == namespaced
    assert as_table(cluster) == cluster_scoped
    for r in [*role, *(cluster or [])]:
        assert "*" not in r["verbs"]
        assert "*" not in r["resources"]
    leases = [r for r in role if r["resources"] == ["leases"]]
    assert bool(leases) == cfg.syncer.leader_election.enabled
    written = {k for k, verbs in as_table(cluster).items() if "create" in verbs}
    assert written <= {"scheduling.k8s.io/priorityclasses"}
    assert yaml.safe_dump(role)  # plain data


def test_a_plugins_declared_permissions_reach_the_role(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The chart generated where a plugin is installed grants its kind's permissions when
    ``plugins.<kind>.enabled``, and nothing of it otherwise."""
    install_plugin(tmp_path, monkeypatch, "vcsync_example",
                   "examples = vcsync_example:ExampleTranslator")
    chart = tmp_path / "vcsync"
    shutil.copytree(CHART, chart)
    (chart / "files" / "host-rules.yaml").write_text(generator().rules_text())
    widgets = rule("example.com", "widgets", WRITE)

    def role(*assignments: str) -> list[Obj]:
        text = helm("template", RELEASE, str(chart), "-n", NAMESPACE,
                    *set_flags(list(assignments))).stdout
        return rendered_rules([doc for doc in yaml.safe_load_all(text) if doc])[0]

    assert widgets in role("plugins.examples.enabled=true")
    assert widgets not in role()
    assert role() == rendered_rules(render())[0]
