"""The chaos suite's convergence oracle on plain dicts (``tests/chaos/converge.py``).

The oracle must say "converged" for a host that matches the virtual state,
and name every kind of difference otherwise: missing, stale, extra,
duplicate, unclaimed, a token Secret left behind, a status not copied. The
host copies here are made by the translators themselves (their ``Create``
objects plus what an API server adds), as a converged syncer leaves them.
"""

from __future__ import annotations

from typing import Any

from contract import naming
from contract import resources as r
from contract.facts import Facts
from contract.resources import Obj, Resource
from contract.translator import Context, Create, Side
from syncer import config as config_mod
from syncer.app import select_translators, translator_facts
from syncer.offline import ManifestLookup
from syncer.writer import TOKEN_REFRESH_AT
from tests.chaos.converge import World, compare, status_difference, watched

VC = "vc1"
HOST_NS = "vcluster-x"
NOW = 1_000_000.0


def world(**to_host: Any) -> World:
    """A world with only the given toHost kinds enabled (plus nodes, events off)."""
    sections = {"pods": {"enabled": False}, "services": {"enabled": False},
                "endpoints": {"enabled": False}, "persistentVolumeClaims": {"enabled": False},
                "configMaps": {"enabled": False}, "secrets": {"enabled": False}, **to_host}
    cfg = config_mod.parse({"sync": {"toHost": sections, "fromHost": {
        "nodes": {"enabled": False}, "events": {"enabled": False}}}})
    return World(VC, HOST_NS, select_translators(cfg), translator_facts(cfg, "10.0.0.1"), now=NOW)


def cm(name: str = "cfg", uid: str = "u1", data: str = "v1") -> Obj:
    return {"metadata": {"name": name, "namespace": "team", "uid": uid}, "data": {"k": data}}


def host_copy(w: World, resource: Resource, virtual: Obj, host_uid: str = "h1") -> Obj:
    """The host object the enabled translator for ``resource`` would create for ``virtual``."""
    t = next(t for t in w.translators if t.resource == resource)
    ctx = Context(VC, HOST_NS, ManifestLookup(), facts=w.facts)
    (create,) = [a for a in t.to_host(virtual, ctx) if isinstance(a, Create)]
    obj = dict(create.obj)
    obj["metadata"] = {**obj["metadata"], "uid": host_uid}
    return obj


def put(w: World, side: Side, resource: Resource, *objs: Obj) -> World:
    w.objects.setdefault((side, resource), []).extend(objs)
    return w


def configmaps_world(*host: Obj, virtual: Obj | None = None) -> World:
    w = world(configMaps={"all": True})
    put(w, Side.VIRTUAL, r.CONFIGMAPS, *([virtual] if virtual else []))
    return put(w, Side.HOST, r.CONFIGMAPS, *host)


def test_a_matching_host_is_converged() -> None:
    w = world(configMaps={"all": True})
    put(w, Side.VIRTUAL, r.CONFIGMAPS, cm())
    put(w, Side.HOST, r.CONFIGMAPS, host_copy(w, r.CONFIGMAPS, cm()))
    assert compare(w) == []


def test_missing_stale_and_extra_copies_are_named() -> None:
    w = world(configMaps={"all": True})
    assert any("missing" in d for d in compare(put(w, Side.VIRTUAL, r.CONFIGMAPS, cm())))

    stale = host_copy(w, r.CONFIGMAPS, cm(data="old"))
    (text,) = compare(configmaps_world(stale, virtual=cm()))
    assert text.startswith("configMaps team/cfg: stale: would patch host ConfigMap")
    assert '"v1"' in text

    (text,) = compare(configmaps_world(host_copy(w, r.CONFIGMAPS, cm())))
    assert "extra: would delete host ConfigMap" in text


def test_two_host_copies_of_one_virtual_object_are_a_duplicate() -> None:
    w = world(configMaps={"all": True})
    first = host_copy(w, r.CONFIGMAPS, cm())
    second = {**first, "metadata": {**first["metadata"], "name": "other", "uid": "h2"}}
    found = compare(configmaps_world(first, second, virtual=cm()))
    assert any(d.startswith("duplicate: 2 host ConfigMaps for virtual team/cfg") for d in found)


def test_a_copy_of_an_earlier_incarnation_is_extra() -> None:
    w = world(configMaps={"all": True})
    old = host_copy(w, r.CONFIGMAPS, cm(uid="old"))
    (text,) = compare(configmaps_world(old, virtual=cm(uid="new")))
    assert "extra: would delete host ConfigMap" in text


def test_managed_objects_nobody_claims_are_named_but_host_endpoints_are_not() -> None:
    w = world(services={"enabled": True})
    labels = {naming.LABEL_MANAGED_BY: VC}
    put(w, Side.HOST, r.SERVICES,
        {"metadata": {"name": "svc-x-team-x-vc1", "uid": "s", "labels": labels}})
    put(w, Side.HOST, r.ENDPOINTS,
        {"metadata": {"name": "svc-x-team-x-vc1", "uid": "e", "labels": labels}},
        {"metadata": {"name": "stray", "uid": "e2", "labels": labels}})
    found = compare(w)
    assert any("unclaimed: host Endpoints stray" in d for d in found)
    assert not any("Endpoints svc-x-team-x-vc1" in d for d in found)
    assert any("unclaimed: host Service svc-x-team-x-vc1" in d for d in found)


def test_a_token_secret_of_a_gone_pod_is_extra_and_of_a_live_one_is_not() -> None:
    w = world()
    identity = naming.VirtualIdentity("web", "team", "pod-uid", "Pod")
    secret = {"metadata": {
        "name": "vcsync-token-abc", "uid": "t", "labels": {naming.LABEL_MANAGED_BY: VC},
        "annotations": {**naming.host_annotations({}, identity), TOKEN_REFRESH_AT: "2000000"},
    }}
    put(w, Side.HOST, r.SECRETS, secret)
    (text,) = compare(w)
    assert text.startswith("extra: host Secret vcsync-token-abc is the token Secret of a pod")
    put(w, Side.VIRTUAL, r.PODS, {"metadata": {"name": "web", "namespace": "team",
                                               "uid": "pod-uid"}})
    assert compare(w) == []


def pod(phase: str, ready: str, ip: str | None = "127.128.0.5", node: str = "n1") -> Obj:
    return {
        "metadata": {"name": "web", "namespace": "team"},
        "spec": {"nodeName": node},
        "status": {"phase": phase, "podIP": ip, "hostIP": "127.0.0.1",
                   "conditions": [{"type": "Ready", "status": ready,
                                   "lastTransitionTime": "t"}],
                   "containerStatuses": [{"name": "c", "ready": ready == "True",
                                          "restartCount": 0, "state": {"running": {}},
                                          "image": "img"}]},
    }


def test_pod_status_is_compared_field_by_field() -> None:
    assert status_difference("Pod", pod("Running", "True"), pod("Running", "True")) is None
    text = status_difference("Pod", pod("Pending", "False", ip=None), pod("Running", "True"))
    assert text is not None
    for field in ("phase", "podIP", "conditions", "containerStatuses"):
        assert field in text
    moved = status_difference("Pod", pod("Running", "True"), pod("Running", "True", node="n2"))
    assert moved is not None
    assert "nodeName" in moved


def test_service_cluster_ip_and_load_balancer_ingress_are_compared() -> None:
    def svc(ip: str, ingress: list[Obj] | None = None) -> Obj:
        status = {"loadBalancer": {"ingress": ingress}} if ingress else {}
        return {"metadata": {"name": "s", "namespace": "team"}, "spec": {"clusterIP": ip},
                "status": status}

    assert status_difference("Service", svc("10.0.0.9"), svc("10.0.0.9")) is None
    assert "clusterIP" in (status_difference("Service", svc("10.0.0.8"), svc("10.0.0.9")) or "")
    lb = [{"ip": "127.0.0.7"}]
    assert "ingress" in (status_difference("Service", svc("10.0.0.9"), svc("10.0.0.9", lb)) or "")


def test_status_differences_of_synced_pods_are_reported() -> None:
    w = world()
    virtual = pod("Pending", "False")
    host = {**pod("Running", "True"), "metadata": {
        "name": "web-x-team-x-vc1", "annotations": naming.host_annotations(
            {}, naming.VirtualIdentity("web", "team", "p", "Pod"))}}
    put(w, Side.VIRTUAL, r.PODS, virtual)
    put(w, Side.HOST, r.PODS, host)
    (text,) = compare(w)
    assert text.startswith("status: virtual Pod team/web: phase='Pending' (host 'Running')")


def node(heartbeat: str, ready: str = "True") -> Obj:
    return {"metadata": {"name": "n1", "uid": "n"}, "spec": {},
            "status": {"conditions": [{"type": "Ready", "status": ready,
                                       "lastHeartbeatTime": heartbeat,
                                       "lastTransitionTime": "2024-01-01T00:00:00Z"}]}}


def test_node_heartbeats_alone_are_no_difference_but_a_condition_is() -> None:
    cfg = config_mod.parse({"sync": {"fromHost": {"nodes": {"selector": {"all": True}},
                                                  "events": {"enabled": False}}}})
    nodes_only = [t for t in select_translators(cfg) if t.kind == "nodes"]
    w = World(VC, HOST_NS, nodes_only, Facts(), now=NOW)
    put(w, Side.VIRTUAL, r.NODES, node("2024-01-01T00:00:00Z"))
    put(w, Side.HOST, r.NODES, node("2024-01-01T00:05:00Z"))
    assert compare(w) == []
    w.objects[(Side.HOST, r.NODES)] = [node("2024-01-01T00:05:00Z", ready="False")]
    (text,) = compare(w)
    assert text.startswith("nodes n1: stale: would patch virtual Node n1 (status)")


def test_watched_lists_what_the_engine_caches_with_its_selectors() -> None:
    cfg = config_mod.parse({})
    found = watched(select_translators(cfg), VC)
    owned = f"{naming.LABEL_MANAGED_BY}={VC}"
    assert found[(Side.HOST, r.NODES)] == ""
    assert found[(Side.HOST, r.EVENTS)] == ""
    assert found[(Side.HOST, r.PODS)] == owned
    assert found[(Side.HOST, r.SERVICES)] == owned
    assert found[(Side.VIRTUAL, r.NAMESPACES)] == ""
    assert (Side.HOST, r.INGRESSES) in found, "managed kinds of disabled translators too"
