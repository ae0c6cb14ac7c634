"""Hostile tenants and names: forged ownership metadata, colliding host names, host-only
objects named in references.

Tenant a (vc1) has cluster-admin in its virtual cluster and tries to make the
syncer write, read or mount objects that are not its own: those of tenant b
(vc2, same host), of its own other virtual namespaces, or of the host. Every
test asserts the refusal the design promises (NAMING.md: ownership is proven
by labels a tenant cannot forge; names are never parsed back) and that the
targets were not touched (their resourceVersions before and after).
"""

from __future__ import annotations

import json
from typing import Any

from contract import naming
from contract import resources as r
from contract.resources import Obj
from tests.security.conftest import (
    HostTargets,
    Tenants,
    Victim,
    fresh_namespace,
    host_copy,
    resource_versions,
    wait_warning,
    warnings,
)
from tests.support import syncer_idle, wait_until

VIRTUAL_KINDS = (r.PODS, r.SERVICES, r.CONFIGMAPS, r.SECRETS, r.ENDPOINTS)


def _pod(name: str, labels: dict[str, str] | None = None, **spec: Any) -> Obj:
    """A pod baseline admits (tenant a's level)."""
    return {"metadata": {"name": name, "labels": labels or {"app": name}},
            "spec": {"containers": [{"name": "main", "image": "busybox"}], **spec}}


def _mounting(name: str, config_map: str = "", secret: str = "", **meta: Any) -> Obj:
    volumes = []
    if config_map:
        volumes.append({"name": "cfg", "configMap": {"name": config_map}})
    if secret:
        volumes.append({"name": "sec", "secret": {"secretName": secret}})
    pod = _pod(name, volumes=volumes)
    pod["metadata"].update(meta)
    return pod


async def _idle(tenants: Tenants) -> bool:
    return all(syncer_idle(t.syncers[0].url) for t in (tenants.a, tenants.b))


async def _victim_versions(tenants: Tenants, victim: Victim) -> dict[str, str]:
    b = tenants.b
    host = await resource_versions(b.host, b.host_namespace)
    virtual = await resource_versions(b.virtual, victim.namespace, VIRTUAL_KINDS)
    return {**{f"host/{k}": v for k, v in host.items()},
            **{f"virtual/{k}": v for k, v in virtual.items()}}


async def test_forged_ownership_metadata_is_replaced_and_the_other_tenant_untouched(
    tenants: Tenants, victim: Victim,
) -> None:
    """Labels and annotations under vcsync.dev/ that claim tenant b's objects (managed-by
    vc2, b's namespace, b's ns-labels) or another identity (object-name/namespace/uid/kind
    of b's ConfigMap, managed-annotations, rewritten-labels) on every kind tenant a syncs:
    the host copies carry a's true values, and none of b's objects changes."""
    a, b = tenants.a, tenants.b
    before = await _victim_versions(tenants, victim)
    b_config = await b.virtual.get(r.CONFIGMAPS, victim.config_map, victim.namespace)
    forged_labels = {
        naming.LABEL_MANAGED_BY: b.name,
        naming.LABEL_NAMESPACE: victim.namespace,
        naming.namespace_label_key("kubernetes.io/metadata.name", b.name): victim.namespace,
        naming.namespace_label_key("kubernetes.io/metadata.name", a.name): "kube-system",
        "app": "forged",
    }
    forged_annotations = {
        naming.ANNOTATION_OBJECT_NAME: victim.config_map,
        naming.ANNOTATION_OBJECT_NAMESPACE: victim.namespace,
        naming.ANNOTATION_OBJECT_UID: b_config["metadata"]["uid"],
        naming.ANNOTATION_OBJECT_KIND: "ConfigMap",
        naming.ANNOTATION_MANAGED_ANNOTATIONS: "kubectl.kubernetes.io/last-applied-configuration",
        naming.ANNOTATION_REWRITTEN_LABELS: json.dumps(
            {naming.host_label_key("app", a.name): naming.LABEL_MANAGED_BY}),
        "note": "tenant annotation",
    }
    forged = {"labels": forged_labels, "annotations": forged_annotations}
    ns = await fresh_namespace(a, "forge")
    await a.virtual.patch(r.NAMESPACES, ns, {"metadata": {"labels": {
        naming.LABEL_MANAGED_BY: b.name, naming.LABEL_NAMESPACE: victim.namespace}}})
    await a.virtual.create(r.CONFIGMAPS, {"metadata": {"name": "cfg", **forged}}, ns)
    await a.virtual.create(r.SECRETS, {"metadata": {"name": "sec", **forged}}, ns)
    await a.virtual.create(r.SERVICES, {"metadata": {"name": "svc", **forged}, "spec": {
        "selector": {"app": "forged"}, "ports": [{"port": 80}]}}, ns)
    await a.virtual.create(r.PODS, _mounting("pod", "cfg", "sec", **forged), ns)

    for kind, name in ((r.PODS, "pod"), (r.CONFIGMAPS, "cfg"), (r.SECRETS, "sec"),
                       (r.SERVICES, "svc")):
        host = await host_copy(a, kind, name, ns)
        _assert_true_ownership(host, kind.kind, name, ns, a.name,
                               (await a.virtual.get(kind, name, ns))["metadata"]["uid"])
        virtual = await a.virtual.get(kind, name, ns)
        assert virtual["metadata"]["labels"] == forged_labels, "tenant labels read back as written"
    host_pod = await a.host_get(r.PODS, "pod", ns)
    assert host_pod is not None
    ns_label = naming.namespace_label_key("kubernetes.io/metadata.name", a.name)
    assert host_pod["metadata"]["labels"][ns_label] == ns, "the true namespace label wins"
    assert naming.namespace_label_key(naming.LABEL_MANAGED_BY, a.name) in host_pod["metadata"][
        "labels"], "a forged namespace label stays a namespace label of a's own"

    await wait_until(lambda: _idle(tenants), "both syncers idle")
    assert await _victim_versions(tenants, victim) == before, "tenant b's objects were touched"


def _assert_true_ownership(host: Obj, kind: str, name: str, namespace: str, vcluster: str,
                           uid: str) -> None:
    meta = host["metadata"]
    labels, annotations = meta["labels"], meta["annotations"]
    assert labels[naming.LABEL_MANAGED_BY] == vcluster
    assert labels[naming.LABEL_NAMESPACE] == namespace
    identity = naming.identity_of(host)
    assert identity == naming.VirtualIdentity(name, namespace, uid, kind), identity
    assert annotations[naming.ANNOTATION_MANAGED_ANNOTATIONS] == "note"
    assert annotations["note"] == "tenant annotation"
    rewritten = json.loads(annotations[naming.ANNOTATION_REWRITTEN_LABELS])
    assert naming.LABEL_MANAGED_BY in rewritten.values()
    assert all(naming.host_label_key(v, vcluster) == k for k, v in rewritten.items()), (
        "the rewritten-labels map is the syncer's own, not the tenant's")
    forged_keys = [k for k in labels if k.startswith(naming.PREFIX)
                   and k not in (naming.LABEL_MANAGED_BY, naming.LABEL_NAMESPACE)]
    assert all(f"-{vcluster}-x-" in k for k in forged_keys), forged_keys


async def test_colliding_host_names_are_refused_and_nothing_is_overwritten(
    tenants: Tenants,
) -> None:
    """Host names are ``<name>-x-<namespace>-x-<vc>``, so ("cm-x-<c>", c) ... collide:
    ConfigMap ``a-x-b`` in ``c`` and ConfigMap ``a`` in ``b-x-c`` have one host name. The
    first one synced keeps it; a pod in the other namespace that names the other one is
    refused with a Warning (it would mount the first namespace's data), also when its own
    object does not exist yet; a colliding Service is refused with a Warning, and so are
    its Endpoints (they would become those of the first namespace's Service); the first
    objects' host copies never change."""
    a = tenants.a
    c = await fresh_namespace(a, "c")
    bxc = f"b-x-{c}"
    await a.virtual.create(r.CONFIGMAPS, {"metadata": {"name": "a-x-b"}, "data": {"who": c}}, c)
    await a.virtual.create(r.SECRETS, {"metadata": {"name": "s-x-b"},
                                       "stringData": {"who": c}}, c)
    await a.virtual.create(r.PODS, _mounting("first", "a-x-b", "s-x-b"), c)
    await a.virtual.create(r.SERVICES, {"metadata": {"name": "a-x-b"}, "spec": {
        "selector": {"app": "first"}, "ports": [{"port": 80}]}}, c)
    await a.virtual.create(r.SERVICES, {"metadata": {"name": "e-x-b"}, "spec": {
        "ports": [{"port": 80}]}}, c)
    await wait_until(lambda: a.host_get(r.PODS, "first", c), "the first pod on the host")
    await wait_until(lambda: a.host_get(r.SERVICES, "e-x-b", c), "c's selector-less Service")
    await wait_until(lambda: a.host_get(r.SERVICES, "a-x-b", c), "c's Service")
    await wait_until(lambda: _idle(tenants), "both syncers idle")
    kinds = (r.CONFIGMAPS, r.SECRETS, r.SERVICES)
    before = await resource_versions(a.host, a.host_namespace, kinds)
    assert a.host_name("a-x-b", c) == a.host_name("a", bxc), "the names do collide"

    await a.virtual.create(r.NAMESPACES, {"metadata": {"name": bxc}})
    await a.virtual.create(r.CONFIGMAPS, {"metadata": {"name": "a"}, "data": {"who": bxc}}, bxc)
    await a.virtual.create(r.SECRETS, {"metadata": {"name": "s"}, "stringData": {"who": bxc}},
                           bxc)
    await a.virtual.create(r.PODS, _mounting("second", config_map="a"), bxc)
    await a.virtual.create(r.PODS, _mounting("third", secret="s"), bxc)
    await a.virtual.create(r.PODS, _mounting("fourth", config_map="late"), bxc)
    await a.virtual.create(r.SERVICES, {"metadata": {"name": "a"}, "spec": {
        "selector": {"app": "second"}, "ports": [{"port": 80}]}}, bxc)
    await a.virtual.create(r.SERVICES, {"metadata": {"name": "e"}, "spec": {
        "ports": [{"port": 80}]}}, bxc)
    await a.virtual.create(r.ENDPOINTS, {"metadata": {"name": "e"}, "subsets": [{
        "addresses": [{"ip": "192.0.2.77"}], "ports": [{"port": 80}]}]}, bxc)

    for pod in ("second", "third", "fourth"):
        await wait_warning(a, bxc, pod, "NameConflict")
    await wait_warning(a, bxc, "a", "SyncError")
    ep_warning = await wait_warning(a, bxc, "e", "NameConflict")
    assert ep_warning["involvedObject"]["kind"] == "Endpoints"
    await wait_until(lambda: _idle(tenants), "both syncers idle")
    for pod in ("second", "third", "fourth"):
        assert await a.host_get(r.PODS, pod, bxc) is None, f"{pod} reached the host"
    after = await resource_versions(a.host, a.host_namespace, kinds)
    assert {k: after.get(k) for k in before} == before, "the first namespace's copies changed"
    host_cm = await a.host_get(r.CONFIGMAPS, "a-x-b", c)
    assert host_cm is not None
    assert host_cm["data"] == {"who": c}
    assert naming.identity_of(host_cm).namespace == c  # type: ignore[union-attr]
    assert await a.host_get(r.ENDPOINTS, "e-x-b", c) is None, (
        "namespace b-x-c's addresses were given to namespace c's Service")
    svc = await a.host_get(r.SERVICES, "a-x-b", c)
    assert svc is not None
    assert svc["spec"]["selector"][naming.LABEL_NAMESPACE] == c


async def test_names_near_the_hash_threshold_stay_apart(tenants: Tenants) -> None:
    """Long names sharing their first 52 characters, one of exactly 63 characters on the
    host, one of 64, one with a dot at the cut: every ConfigMap gets a host copy of its
    own, with its own data and identity (the hash covers the full name)."""
    a = tenants.a
    ns = await fresh_namespace(a, "long")
    suffix = f"-x-{ns}-x-{a.name}"
    exact = "n" * (63 - len(suffix))  # the host name is exactly 63 characters: kept
    dotted = "n" * 51 + ".dotted"  # character 52 of the host name is a dot: 62 characters
    names = [exact, exact + "m", exact + "mm", dotted]
    for name in names:
        await a.virtual.create(r.CONFIGMAPS, {"metadata": {"name": name}, "data": {"n": name}},
                               ns)
    pod = _pod("reader", volumes=[{"name": f"v{i}", "configMap": {"name": n}}
                                  for i, n in enumerate(names)])
    await a.virtual.create(r.PODS, pod, ns)
    await wait_until(lambda: a.host_get(r.PODS, "reader", ns), "the reader pod on the host")
    host_names = {a.host_name(n, ns) for n in names}
    assert len(host_names) == len(names), host_names
    assert a.host_name(exact, ns) == exact + suffix
    assert len(a.host_name(exact + "m", ns)) == 63
    assert len(a.host_name(dotted, ns)) == 62
    for name in names:
        host = await a.host_get(r.CONFIGMAPS, name, ns)
        assert host is not None, name
        assert len(host["metadata"]["name"]) <= 63
        assert host["data"] == {"n": name}
        assert host["metadata"]["annotations"][naming.ANNOTATION_OBJECT_NAME] == name
    assert not await warnings(a, ns, "reader")


async def test_secrets_that_exist_only_on_the_host_are_never_mounted(
    tenants: Tenants, victim: Victim, host_targets: HostTargets,
) -> None:
    """A pod names Secrets and ConfigMaps by host names: tenant b's host copies, a Secret
    of another host namespace, and a name whose translation is taken by a host object
    tenant a does not own. The host pod only ever names a's own translations; nothing is
    copied into a's virtual cluster; the unowned host object is refused (Warning, no pod)."""
    a, b = tenants.a, tenants.b
    ns = await fresh_namespace(a, "refs")
    b_secret = b.host_name(victim.secret, victim.namespace)
    b_config = b.host_name(victim.config_map, victim.namespace)
    pod = _mounting("prober", config_map=b_config, secret=b_secret)
    pod["spec"]["volumes"].append(
        {"name": "platform", "secret": {"secretName": host_targets.secret, "optional": True}})
    await a.virtual.create(r.PODS, pod, ns)
    host_pod = await wait_until(lambda: a.host_get(r.PODS, "prober", ns), "prober on the host")
    assert host_pod is not None
    named = {v["name"]: v.get("secret", {}).get("secretName") or v.get("configMap", {}).get(
        "name") for v in host_pod["spec"]["volumes"] if v["name"] in ("cfg", "sec", "platform")}
    assert named == {"cfg": a.host_name(b_config, ns), "sec": a.host_name(b_secret, ns),
                     "platform": a.host_name(host_targets.secret, ns)}
    for kind in (r.SECRETS, r.CONFIGMAPS):
        items = await a.host_list(kind)
        assert not [i for i in items if i["metadata"]["name"] in named.values()]
    virtual_secrets, _ = await a.virtual.list(r.SECRETS, ns)
    assert not virtual_secrets, "nothing is copied up into the tenant"

    taken = a.host_name("db", ns)
    await a.host.create(r.SECRETS, {"metadata": {"name": taken},
                                    "stringData": {"password": "platform-only"}},
                        a.host_namespace)
    before = await resource_versions(a.host, a.host_namespace, (r.SECRETS,))
    await a.virtual.create(r.SECRETS, {"metadata": {"name": "db"},
                                       "stringData": {"password": "tenant"}}, ns)
    await a.virtual.create(r.PODS, _mounting("thief", secret="db"), ns)
    await wait_warning(a, ns, "thief", "NameConflict")
    await wait_until(lambda: _idle(tenants), "both syncers idle")
    assert await a.host_get(r.PODS, "thief", ns) is None, "the pod would mount a host Secret"
    after = await resource_versions(a.host, a.host_namespace, (r.SECRETS,))
    assert after[f"secrets/{taken}"] == before[f"secrets/{taken}"], "the host Secret changed"
