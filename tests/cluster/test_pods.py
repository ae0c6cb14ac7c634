"""Pods end to end (docs/acceptance.md, scenarios 1, 7-17, 19, 24-25, 27 and the seed's exercise).

Real host (etcd, apiserver, controller-manager, scheduler, kwok nodes), a real
virtual control plane and a real ``vcsync run`` process between them.
"""

from __future__ import annotations

import asyncio
import base64
import re
from typing import Any

import pytest

from contract import naming
from contract import resources as r
from contract.resources import Obj
from syncer.local.cluster import HostCluster, fake_node
from syncer.local.syncer_process import SyncerProcess
from tests.cluster.conftest import VC, Stack, sync_config
from tests.support import metric_samples, syncer_idle, wait_until

NS = "demo"


@pytest.fixture
async def demo(stack: Stack) -> Stack:
    await stack.virtual.create(r.NAMESPACES, {"metadata": {"name": NS}})
    return stack


@pytest.fixture
def syncer(demo: Stack) -> SyncerProcess:
    return demo.syncer().start()


def _deployment(name: str, replicas: int, **pod_spec: Any) -> Obj:
    labels = {"app": name}
    return {
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name},
        "spec": {
            "replicas": replicas, "selector": {"matchLabels": labels},
            "template": {"metadata": {"labels": labels}, "spec": {
                "containers": [{"name": "web", "image": "nginx"}], **pod_spec}},
        },
    }


def _pod(name: str, **spec: Any) -> Obj:
    return {"metadata": {"name": name, "labels": {"app": name}},
            "spec": {"containers": [{"name": "main", "image": "busybox"}], **spec}}


async def _pods(stack: Stack, selector: str) -> list[Obj]:
    items, _ = await stack.virtual.list(r.PODS, NS, label_selector=selector)
    return items


def _ready(pod: Obj) -> bool:
    conditions = pod.get("status", {}).get("conditions") or []
    return any(c["type"] == "Ready" and c["status"] == "True" for c in conditions)


async def _host_pods(stack: Stack) -> list[Obj]:
    return await stack.host_list(r.PODS)


async def test_exercise_deployment_runs_binds_scales_and_isolates(
    demo: Stack, syncer: SyncerProcess, virtual_cluster_factory: Any, connect: Any
) -> None:
    """The seed's exercise, plus scenarios 7, 13, 14 and 27 (default node mode)."""
    await demo.virtual.create(r.DEPLOYMENTS, _deployment("web", 2), NS)

    async def two_ready() -> list[Obj]:
        pods = await _pods(demo, "app=web")
        return pods if len(pods) == 2 and all(_ready(p) for p in pods) else []

    pods = await wait_until(two_ready, "both virtual pods Running and Ready", timeout=60)
    host_pods = await _host_pods(demo)
    assert len(host_pods) == 2
    for pod in host_pods:
        assert re.fullmatch(rf"web-[a-z0-9]+-[a-z0-9]+-x-{NS}-x-{VC}", pod["metadata"]["name"])
        spec = pod["spec"]
        assert spec["automountServiceAccountToken"] is False
        assert spec["enableServiceLinks"] is False
        labels = pod["metadata"]["labels"]
        assert labels[naming.LABEL_MANAGED_BY] == VC
        assert labels[naming.LABEL_NAMESPACE] == NS
    nodes = set()
    for pod in pods:
        assert pod["status"]["phase"] == "Running"
        assert pod["spec"]["nodeName"].startswith("kwok-node-"), pod["spec"]
        nodes.add(pod["spec"]["nodeName"])
    virtual_nodes = {n["metadata"]["name"] for n in (await demo.virtual.list(r.NODES))[0]}
    assert nodes == virtual_nodes, "default mode: exactly the nodes that pods use"

    await demo.virtual.patch(r.DEPLOYMENTS, "web", {"spec": {"replicas": 0}}, NS)
    await wait_until(lambda: _empty(_host_pods(demo)), "host pods gone after scaling to 0",
                     timeout=60)
    await wait_until(lambda: _empty(_virtual_nodes(demo)), "virtual nodes removed", timeout=30)

    other = await connect(virtual_cluster_factory("vc-other"))
    namespaces = {n["metadata"]["name"] for n in (await other.list(r.NAMESPACES))[0]}
    assert NS not in namespaces, "a second virtual cluster must not see the first one's"


async def _empty(items: Any) -> bool:
    return not await items


async def _virtual_nodes(stack: Stack) -> list[Obj]:
    return (await stack.virtual.list(r.NODES))[0]


async def test_pod_environment_dns_and_host_aliases(demo: Stack, syncer: SyncerProcess) -> None:
    """Scenarios 8-10: API and Service env vars, hostAliases, DNS rewrite."""
    await demo.virtual.create(
        r.SERVICES, {"metadata": {"name": "db"}, "spec": {"ports": [{"port": 5432}]}}, NS
    )

    async def host_ip_shown() -> Obj | None:
        host, virtual = await demo.host_get(r.SERVICES, "db", NS), await demo.virtual_get(
            r.SERVICES, "db", NS)
        same = host and virtual and host["spec"]["clusterIP"] == virtual["spec"]["clusterIP"]
        return virtual if same else None

    svc = await wait_until(host_ip_shown, "the virtual Service to show the host ClusterIP")
    assert svc is not None
    user_env = [{"name": "DB_SERVICE_PORT", "value": "mine"}]
    pod = _pod("envy")
    pod["spec"]["containers"][0]["env"] = user_env
    await demo.virtual.create(r.PODS, pod, NS)
    host = await wait_until(lambda: demo.host_get(r.PODS, "envy", NS), "host pod envy")
    assert host is not None
    env = {e["name"]: e.get("value") for e in host["spec"]["containers"][0]["env"]}
    assert env["KUBERNETES_SERVICE_HOST"] == demo.api_ip
    assert env["KUBERNETES_SERVICE_PORT"] == "443"
    assert env["DB_SERVICE_HOST"] == svc["spec"]["clusterIP"]
    assert env["DB_SERVICE_PORT"] == "mine", "a name the user set wins"
    aliases = host["spec"]["hostAliases"]
    assert {"ip": demo.api_ip, "hostnames": [
        "kubernetes", "kubernetes.default", "kubernetes.default.svc",
        "kubernetes.default.svc.cluster.local"]} in aliases
    assert host["spec"]["dnsPolicy"] == "None"
    dns = host["spec"]["dnsConfig"]
    assert dns["nameservers"] == [await demo.dns_ip()]
    assert dns["searches"] == [f"{NS}.svc.cluster.local", "svc.cluster.local", "cluster.local"]
    assert {"name": "ndots", "value": "5"} in dns["options"]


async def test_referenced_configmap_and_secret_exist_before_the_pod_and_go_after(
    demo: Stack, syncer: SyncerProcess
) -> None:
    """Scenarios 1, 11, 24, 25: reference-driven sync, renamed references."""
    await demo.virtual.create(r.CONFIGMAPS, {"metadata": {"name": "app-cfg"},
                                             "data": {"k": "v"}}, NS)
    await demo.virtual.create(r.SECRETS, {"metadata": {"name": "creds"},
                                          "stringData": {"p": "s"}}, NS)
    await demo.virtual.create(r.CONFIGMAPS, {"metadata": {"name": "unused"}, "data": {}}, NS)
    pod = _pod("consumer", volumes=[{"name": "cfg", "configMap": {"name": "app-cfg"}}])
    pod["spec"]["containers"][0]["envFrom"] = [{"secretRef": {"name": "creds"}}]
    await demo.virtual.create(r.PODS, pod, NS)
    host = await wait_until(lambda: demo.host_get(r.PODS, "consumer", NS), "host pod")
    assert host is not None
    cm = await demo.host_get(r.CONFIGMAPS, "app-cfg", NS)
    secret = await demo.host_get(r.SECRETS, "creds", NS)
    assert cm is not None, "a referenced ConfigMap must exist before the pod"
    assert secret is not None, "a referenced Secret must exist before the pod"
    created = host["metadata"]["creationTimestamp"]
    assert cm["metadata"]["creationTimestamp"] <= created
    assert host["spec"]["volumes"][0]["configMap"]["name"] == "app-cfg-x-demo-x-vc1"
    assert host["spec"]["containers"][0]["envFrom"][0]["secretRef"]["name"] == (
        "creds-x-demo-x-vc1")
    assert await demo.host_get(r.CONFIGMAPS, "unused", NS) is None

    await demo.virtual.delete(r.PODS, "consumer", NS, grace_period=0)
    await wait_until(lambda: _is_none(demo.host_get(r.CONFIGMAPS, "app-cfg", NS)),
                     "the unreferenced ConfigMap to leave the host", timeout=30)
    await wait_until(lambda: _is_none(demo.host_get(r.SECRETS, "creds", NS)),
                     "the unreferenced Secret to leave the host", timeout=30)


async def _is_none(value: Any) -> bool:
    return await value is None


async def test_service_account_token_is_issued_by_the_virtual_api(
    demo: Stack, syncer: SyncerProcess
) -> None:
    """Scenario 12: the token the host pod mounts authenticates against the virtual API."""
    await demo.virtual.create(r.SERVICEACCOUNTS, {"metadata": {"name": "robot"}}, NS)
    await wait_until(lambda: demo.virtual_get(r.CONFIGMAPS, "kube-root-ca.crt", NS),
                     "kube-root-ca.crt in the virtual namespace")
    await demo.virtual.create(r.PODS, _pod("tokened", serviceAccountName="robot"), NS)
    host = await wait_until(lambda: demo.host_get(r.PODS, "tokened", NS), "host pod")
    assert host is not None
    secret_names = {
        s.get("name") for v in host["spec"]["volumes"]
        for s in (v.get("projected") or {}).get("sources", []) if "secret" in s
        for s in [s["secret"]]
    }
    assert len(secret_names) == 1, host["spec"]["volumes"]
    secret_name = secret_names.pop()

    async def token_secret() -> Obj | None:
        items = await demo.host_list(r.SECRETS)
        return next((s for s in items if s["metadata"]["name"] == secret_name), None)

    secret = await wait_until(token_secret, "the pod's token Secret on the host")
    assert secret is not None
    assert secret["metadata"]["ownerReferences"][0]["uid"] == host["metadata"]["uid"]
    token = base64.b64decode(secret["data"]["token"]).decode()
    review = await demo.virtual.create(r.TOKENREVIEWS, {
        "apiVersion": "authentication.k8s.io/v1", "kind": "TokenReview",
        "spec": {"token": token}})
    assert review["status"]["authenticated"] is True, review["status"]
    assert review["status"]["user"]["username"] == f"system:serviceaccount:{NS}:robot"


async def test_deletion_flows_both_ways(demo: Stack, syncer: SyncerProcess) -> None:
    """Scenarios 15-17: graceful delete down, out-of-band delete up, no silent re-creation."""
    for name in ("down", "up"):
        await demo.virtual.create(r.PODS, _pod(name), NS)
    await wait_until(lambda: _all_bound(demo, "down", "up"), "both pods bound")

    await demo.virtual.delete(r.PODS, "down", NS, grace_period=7)
    await wait_until(lambda: _is_none(demo.host_get(r.PODS, "down", NS)), "host pod deleted")
    await wait_until(lambda: _is_none(demo.virtual_get(r.PODS, "down", NS)),
                     "virtual pod gone after the host pod")

    host_up = await demo.host_get(r.PODS, "up", NS)
    assert host_up is not None
    await demo.host.delete(r.PODS, host_up["metadata"]["name"], demo.host_namespace)
    await wait_until(lambda: _is_none(demo.virtual_get(r.PODS, "up", NS)),
                     "virtual pod deleted after its host pod was deleted out of band")
    assert await demo.host_get(r.PODS, "up", NS) is None, "must not be silently re-created"


async def _virtual_ready(stack: Stack, name: str) -> bool:
    pod = await stack.virtual_get(r.PODS, name, NS)
    return pod is not None and _ready(pod)


async def _all_bound(stack: Stack, *names: str) -> bool:
    return all([await _bound(stack, name) for name in names])


async def _bound(stack: Stack, name: str) -> bool:
    pod = await stack.virtual_get(r.PODS, name, NS)
    return bool(pod and pod["spec"].get("nodeName"))


async def test_image_change_reaches_the_host_pod(demo: Stack, syncer: SyncerProcess) -> None:
    """Scenario 18: mutable spec fields flow down."""
    await demo.virtual.create(r.PODS, _pod("imagey"), NS)
    await wait_until(lambda: _bound(demo, "imagey"), "imagey bound")
    await demo.virtual.patch(r.PODS, "imagey", {"spec": {"containers": [
        {"name": "main", "image": "busybox:2"}]}}, NS, patch_type="strategic")

    async def updated() -> bool:
        host = await demo.host_get(r.PODS, "imagey", NS)
        return bool(host and host["spec"]["containers"][0]["image"] == "busybox:2")

    await wait_until(updated, "the new image on the host pod")


@pytest.mark.parametrize("config", [sync_config(policies={"podSecurityStandard": "restricted"})])
async def test_restricted_pod_security_blocks_and_warns(
    demo: Stack, syncer: SyncerProcess
) -> None:
    """Scenario 19."""
    await demo.virtual.create(r.PODS, _pod("unsafe"), NS)

    async def warned() -> list[Obj]:
        events, _ = await demo.virtual.list(r.EVENTS, NS)
        return [e for e in events if e["involvedObject"]["name"] == "unsafe"
                and e["reason"] == "PodSecurityViolation"]

    events = await wait_until(warned, "a PodSecurity Warning event")
    assert "restricted" in events[0]["message"]
    assert demo.host_namespace not in events[0]["message"]
    assert await demo.host_get(r.PODS, "unsafe", NS) is None


async def test_long_names_are_hashed_and_forged_labels_rewritten(
    demo: Stack, syncer: SyncerProcess
) -> None:
    """Scenarios 2-4: the 63-character rule, ownership metadata, no forged ownership."""
    long_name = "c" * 60
    await demo.virtual.create(r.CONFIGMAPS, {"metadata": {"name": long_name}, "data": {}}, NS)
    forged = {naming.LABEL_MANAGED_BY: "someone-else", "tier": "web"}
    pod = _pod("labelled")
    pod["metadata"]["labels"] = forged
    pod["spec"]["volumes"] = [{"name": "v", "configMap": {"name": long_name}}]
    await demo.virtual.create(r.PODS, pod, NS)
    host = await wait_until(lambda: demo.host_get(r.PODS, "labelled", NS), "host pod")
    assert host is not None
    labels = host["metadata"]["labels"]
    assert labels[naming.LABEL_MANAGED_BY] == VC, "a tenant label must not forge ownership"
    assert labels["tier"] == "web"
    rewritten = naming.host_label_key(naming.LABEL_MANAGED_BY, VC)
    assert labels[rewritten] == "someone-else"
    cm_name = host["spec"]["volumes"][0]["configMap"]["name"]
    full = f"{long_name}-x-{NS}-x-{VC}"
    assert len(cm_name) == 63
    assert cm_name == naming.safe_name(full)
    cm = await demo.host.get(r.CONFIGMAPS, cm_name, demo.host_namespace)
    annotations = cm["metadata"]["annotations"]
    assert annotations[naming.ANNOTATION_OBJECT_NAME] == long_name
    assert annotations[naming.ANNOTATION_OBJECT_NAMESPACE] == NS
    assert annotations[naming.ANNOTATION_OBJECT_KIND] == "ConfigMap"
    virtual = await demo.virtual.get(r.PODS, "labelled", NS)
    assert virtual["metadata"]["labels"] == forged, "the virtual object reads back unchanged"
    assert not any(k.startswith(naming.PREFIX) for k in
                   (virtual["metadata"].get("annotations") or {}))


async def test_grace_period_reaches_the_host_pod(demo: Stack, syncer: SyncerProcess) -> None:
    """Scenario 15: the host pod is deleted with the virtual pod's grace period."""
    await demo.virtual.create(r.PODS, _pod("graceful"), NS)
    await wait_until(lambda: _bound(demo, "graceful"), "graceful bound")
    host = await demo.host_get(r.PODS, "graceful", NS)
    assert host is not None
    seen: list[int] = []
    watch = demo.host.watch(r.PODS, host["metadata"]["resourceVersion"], demo.host_namespace,
                            field_selector=f"metadata.name={host['metadata']['name']}")
    await demo.virtual.delete(r.PODS, "graceful", NS, grace_period=7)

    async def grace_seen() -> bool:
        async for event in watch:
            grace = event.object["metadata"].get("deletionGracePeriodSeconds")
            if grace is not None:
                seen.append(grace)
                return True
        return False

    await asyncio.wait_for(grace_seen(), 30)
    assert seen == [7]
    await wait_until(lambda: _is_none(demo.virtual_get(r.PODS, "graceful", NS)),
                     "virtual pod gone after the host pod")


async def test_orphans_are_collected_after_a_restart(demo: Stack) -> None:
    """Scenario 17 (and 33's no-duplicate part): what vanished while down is cleaned up."""
    first = demo.syncer().start()
    for name in ("stays", "goes"):
        await demo.virtual.create(r.PODS, _pod(name), NS)
    await wait_until(lambda: _all_bound(demo, "stays", "goes"), "both pods bound")
    first.stop()
    await demo.virtual.delete(r.PODS, "goes", NS, grace_period=0)
    second = demo.syncer().start()
    await wait_until(lambda: _is_none(demo.host_get(r.PODS, "goes", NS)),
                     "the orphan host pod to be deleted")
    await wait_until(lambda: syncer_idle(second.url), "the resync to finish")
    names = sorted(p["metadata"]["name"] for p in await _host_pods(demo))
    assert names == [demo.host_name("stays", NS)], names
    await wait_until(lambda: _virtual_ready(demo, "stays"), "stays Ready (status settled)")
    await wait_until(lambda: syncer_idle(second.url), "the status write-back to finish")
    second.stop()
    third = demo.syncer().start()
    await wait_until(lambda: syncer_idle(third.url), "the idle resync to finish")
    # Scenario 33 is about the host; virtual Events may still follow host events
    # that changed meanwhile (a host controller's event series).
    assert metric_samples(third.url, "vcsync_writes_total", side="host") == {}, (
        "an idle restart wrote to the host")


async def test_debug_containers_reach_the_host_pod(demo: Stack, syncer: SyncerProcess) -> None:
    await demo.virtual.create(r.PODS, _pod("debugged"), NS)
    await wait_until(lambda: _bound(demo, "debugged"), "debugged bound")
    await demo.virtual.patch(r.PODS, "debugged", {"spec": {"ephemeralContainers": [
        {"name": "dbg", "image": "busybox", "targetContainerName": "main"}]}}, NS,
        subresource="ephemeralcontainers", patch_type="strategic")

    async def added() -> bool:
        host = await demo.host_get(r.PODS, "debugged", NS)
        return bool(host and host["spec"].get("ephemeralContainers"))

    await wait_until(added, "the ephemeral container on the host pod")


@pytest.mark.parametrize("config", [sync_config(from_host={"nodes": {"selector": {"all": True}}})])
async def test_real_node_mode_mirrors_host_nodes(
    demo: Stack, syncer: SyncerProcess, host_cluster: HostCluster
) -> None:
    """Scenario 27, real-node mode: every host node mirrored, appearing and vanishing."""
    host_nodes = {n["metadata"]["name"] for n in (await demo.host.list(r.NODES))[0]}

    async def mirrored() -> set[str]:
        return {n["metadata"]["name"] for n in await _virtual_nodes(demo)}

    await wait_until(lambda: _equals(mirrored(), host_nodes), "all host nodes mirrored")
    extra = fake_node("kwok-extra")
    extra["spec"] = {"taints": [{"key": "test", "effect": "NoSchedule"}]}
    await demo.host.create(r.NODES, extra)
    try:
        await wait_until(lambda: _equals(mirrored(), host_nodes | {"kwok-extra"}),
                         "a new host node to appear")
        async def taints_follow() -> bool:
            host = await demo.host.get(r.NODES, "kwok-extra")
            virtual = await demo.virtual.get(r.NODES, "kwok-extra")
            return bool(virtual["spec"].get("taints") == host["spec"].get("taints"))

        # The host adds and removes its own not-ready taint while kwok readies the node.
        await wait_until(taints_follow, "the virtual node's taints to follow the host's")
        virtual = await demo.virtual.get(r.NODES, "kwok-extra")
        assert {"key": "test", "effect": "NoSchedule"} in virtual["spec"]["taints"]
        assert virtual["metadata"]["labels"]["type"] == "kwok"
        await wait_until(lambda: _has_ready(demo, "kwok-extra"),
                         "the node's Ready condition copied from the host", timeout=30)
    finally:
        await demo.host.delete(r.NODES, "kwok-extra")
    await wait_until(lambda: _equals(mirrored(), host_nodes), "the node to vanish with the host's")


async def _equals(value: Any, expected: Any) -> bool:
    return bool(await value == expected)


async def _has_ready(stack: Stack, name: str) -> bool:
    node = await stack.virtual.get(r.NODES, name)
    return any(c["type"] == "Ready" and c["status"] == "True"
               for c in node.get("status", {}).get("conditions") or [])


async def test_namespace_labels_follow_to_host_pods(demo: Stack, syncer: SyncerProcess) -> None:
    """Host pods carry their virtual namespace's labels (what namespace selectors match)."""
    await demo.virtual.create(r.PODS, _pod("nslabelled"), NS)
    await wait_until(lambda: _bound(demo, "nslabelled"), "nslabelled bound")
    await demo.virtual.patch(r.NAMESPACES, NS, {"metadata": {"labels": {"team": "blue"}}})
    key = naming.namespace_label_key("team", VC)

    async def relabelled() -> bool:
        host = await demo.host_get(r.PODS, "nslabelled", NS)
        return bool(host and host["metadata"]["labels"].get(key) == "blue")

    await wait_until(relabelled, "the namespace label on the host pod")


async def test_host_limit_range_defaults_do_not_block_status(demo: Stack) -> None:
    """A host LimitRange gives the copy requests the tenant did not set (Burstable vs the
    virtual BestEffort); the virtual pod still gets its Running status."""
    limits = {"default": {"cpu": "500m", "memory": "256Mi"},
              "defaultRequest": {"cpu": "100m", "memory": "64Mi"}, "type": "Container"}
    await demo.host.create(r.Resource("", "v1", "limitranges", "LimitRange"), {
        "metadata": {"name": "defaults"}, "spec": {"limits": [limits]}}, demo.host_namespace)
    demo.syncer().start()
    await demo.virtual.create(r.PODS, _pod("plain"), NS)

    async def running() -> bool:
        pod = await demo.virtual_get(r.PODS, "plain", NS)
        return bool(pod and pod.get("status", {}).get("phase") == "Running")

    await wait_until(running, "the virtual pod Running despite the host's LimitRange", 60)
    host = await demo.host_get(r.PODS, "plain", NS)
    pod = await demo.virtual_get(r.PODS, "plain", NS)
    assert host is not None
    assert pod is not None
    assert host["status"]["qosClass"] == "Burstable"
    assert pod["status"]["qosClass"] == "BestEffort"
