"""Hostile tenants and the network: selectors and hand-written endpoints aimed at tenant
b's pods, the host's system pods and the host API server.

How "selects only own pods" is checked: the selectors the syncer wrote are
evaluated by the host API server itself: every selector of a host Service,
NetworkPolicy, affinity or spread constraint is run as a label-selector LIST
across the host namespaces an attack aims at, and every pod it matches must be
one of tenant a's. The host scheduler is the second judge: a required affinity
aimed at b's or the host's pods leaves a's pod unschedulable. The session's
host runs in a network namespace of its own with real pod addresses
(syncer.local.network), so the endpoint controllers judge too: the Endpoints
and EndpointSlices of a Service list exactly the pod IPs it selects, and
hand-written endpoints can aim at b's and the host's real pod IPs (refused).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from contract import naming
from contract import resources as r
from contract.resources import Obj
from syncer.kube.client import KubeClient
from tests.security.conftest import (
    ENDPOINTSLICES,
    VICTIM_NS,
    HostTargets,
    Tenants,
    Victim,
    fresh_namespace,
    host_copy,
    ready_pod,
    wait_warning,
)
from tests.support import syncer_idle, wait_until

HOSTNAME = "kubernetes.io/hostname"
REQUIRED = "requiredDuringSchedulingIgnoredDuringExecution"
PREFERRED = "preferredDuringSchedulingIgnoredDuringExecution"
SYSTEM_LABEL = {"k8s-app": "kube-dns"}
"""Worn by the host's system pod only."""
B_LABEL = {"tier": "db"}
"""Worn by tenant b's victim and the host's system pod; no pod of tenant a wears it."""


def _pod(name: str, labels: dict[str, str], **spec: Any) -> Obj:
    return {"metadata": {"name": name, "labels": labels},
            "spec": {"containers": [{"name": "main", "image": "busybox"}], **spec}}


def selector_query(selector: Obj) -> str:
    """A metav1.LabelSelector as the ``labelSelector`` query string the API server reads."""
    parts = [f"{k}={v}" for k, v in sorted((selector.get("matchLabels") or {}).items())]
    for expr in selector.get("matchExpressions") or ():
        key, op, values = expr["key"], expr["operator"], ",".join(expr.get("values") or ())
        parts.append({"In": f"{key} in ({values})", "NotIn": f"{key} notin ({values})",
                      "Exists": key, "DoesNotExist": f"!{key}"}[op])
    return ",".join(parts)


TARGET_NAMESPACES = ("kube-system", "default")
"""Host namespaces an attack aims at besides tenant b's (the host's own workloads)."""


async def matched_pods(host: KubeClient, selector: Obj,
                       namespaces: Iterable[str]) -> set[tuple[str, str]]:
    """(namespace, name) of every host pod in ``namespaces`` that ``selector`` matches."""
    matched: set[tuple[str, str]] = set()
    for namespace in namespaces:
        items, _ = await host.list(r.PODS, namespace, label_selector=selector_query(selector))
        matched |= {(p["metadata"]["namespace"], p["metadata"]["name"]) for p in items}
    return matched


async def assert_selects_only(tenants: Tenants, selector: Obj,
                              expected: set[tuple[str, str]] | None = None) -> None:
    """``selector`` matches pods of tenant a's host namespace only (exactly ``expected``).

    Callers assert that the host object carries no namespace fields, so Kubernetes
    scopes the selector to a's host namespace; this checks what it would reach there and
    in the namespaces an attack aims at (b's, the host's). Not every host namespace:
    another virtual cluster of the same name elsewhere on the host (other tests' "vc1")
    carries the same managed-by value, and only the namespace scoping keeps them apart.
    """
    a, b = tenants.a, tenants.b
    assert naming.LABEL_MANAGED_BY in (selector.get("matchLabels") or {}), selector
    matched = await matched_pods(
        a.host, selector, (a.host_namespace, b.host_namespace, *TARGET_NAMESPACES))
    assert {ns for ns, _ in matched} <= {a.host_namespace}, matched
    if expected is not None:
        assert matched == expected


async def test_service_selector_reaches_only_own_pods_of_its_namespace(
    tenants: Tenants, victim: Victim, host_targets: HostTargets,
) -> None:
    """A Service selecting the labels of b's victim (also worn by the host's system pod,
    and by an own pod of another virtual namespace that forges the namespace label):
    the host Service selects exactly the own pod of its namespace."""
    a = tenants.a
    ns = await fresh_namespace(a, "sel")
    other = await fresh_namespace(a, "sel")
    await a.virtual.create(r.PODS, _pod("mine", {"app": "victim"}), ns)
    forged = {"app": "victim", naming.LABEL_NAMESPACE: ns, naming.LABEL_MANAGED_BY: a.name}
    await a.virtual.create(r.PODS, _pod("stranger", forged), other)
    await a.virtual.create(r.SERVICES, {"metadata": {"name": "grab"}, "spec": {
        "selector": {"app": "victim"}, "ports": [{"port": 80}]}}, ns)
    mine = await host_copy(a, r.PODS, "mine", ns)
    await host_copy(a, r.PODS, "stranger", other)
    service = await host_copy(a, r.SERVICES, "grab", ns)
    selector = {"matchLabels": service["spec"]["selector"]}
    await assert_selects_only(tenants, selector, {(a.host_namespace, mine["metadata"]["name"])})
    victim_pod = await tenants.b.host_get(r.PODS, victim.pod, victim.namespace)
    assert victim_pod is not None
    assert victim_pod["metadata"]["labels"]["app"] == "victim", "b's pod wears the labels"


async def test_network_policy_peers_never_reach_other_tenants_or_the_host(
    tenants: Tenants, victim: Victim, host_targets: HostTargets,
) -> None:
    """Peers with namespaceSelector {} (every namespace), a namespaceSelector naming
    kube-system or b's namespace, pod selectors with b's and the host's labels: the host
    policy has no namespaceSelector at all (so it stays in a's host namespace) and every
    pod selector in it matches a's pods only."""
    a = tenants.a
    ns = await fresh_namespace(a, "np")
    await a.virtual.create(r.PODS, _pod("guarded", {"app": "guarded"}), ns)
    peers = [
        {"namespaceSelector": {}},
        {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "kube-system"}},
         "podSelector": {"matchLabels": SYSTEM_LABEL}},
        {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": VICTIM_NS}}},
        {"podSelector": {"matchLabels": B_LABEL}},
        {"podSelector": {}},
    ]
    await a.virtual.create(r.NETWORKPOLICIES, {"metadata": {"name": "reach"}, "spec": {
        "podSelector": {}, "policyTypes": ["Ingress", "Egress"],
        "ingress": [{"from": peers}], "egress": [{"to": peers}]}}, ns)
    guarded = await host_copy(a, r.PODS, "guarded", ns)
    policy = await host_copy(a, r.NETWORKPOLICIES, "reach", ns)
    spec = policy["spec"]
    own = (a.host_namespace, guarded["metadata"]["name"])
    await assert_selects_only(tenants, spec["podSelector"], {own})
    host_peers = [p for rule in spec["ingress"] for p in rule["from"]]
    host_peers += [p for rule in spec["egress"] for p in rule["to"]]
    assert len(host_peers) == 2 * len(peers)
    for peer in host_peers:
        assert set(peer) == {"podSelector"}, f"a host peer may only select pods: {peer}"
        await assert_selects_only(tenants, peer["podSelector"])
    assert own in await matched_pods(a.host, host_peers[0]["podSelector"], [a.host_namespace]), (
        "namespaceSelector {} means every namespace of a's virtual cluster (and no more)")


async def _scheduling_verdict(tenants: Tenants, name: str, namespace: str) -> Obj:
    """The PodScheduled condition of a's host pod once the host scheduler decided."""
    async def decided() -> Obj:
        pod = await tenants.a.host_get(r.PODS, name, namespace) or {}
        conditions = pod.get("status", {}).get("conditions") or []
        return next((c for c in conditions if c["type"] == "PodScheduled"), {})

    return await wait_until(decided, f"the host scheduler's verdict on {name}", timeout=60)


async def test_affinity_and_spread_selectors_stay_inside_the_tenant(
    tenants: Tenants, victim: Victim, host_targets: HostTargets,
) -> None:
    """Required pod affinity to b's pod (by b's namespace name, and across every namespace)
    and to the host's system pod: the host scheduler finds no such pod for a (a's pods stay
    Unschedulable although b's victim and the system pod run). Anti-affinity, preferred
    terms and topology spread constraints aimed at them match a's pods only."""
    a = tenants.a
    ns = await fresh_namespace(a, "aff")

    def term(labels: dict[str, str], **scope: Any) -> Obj:
        return {"labelSelector": {"matchLabels": labels}, "topologyKey": HOSTNAME, **scope}

    clingers = {
        "to-b-by-name": term({"app": "victim"}, namespaces=[VICTIM_NS]),
        "to-any-namespace": term(B_LABEL, namespaceSelector={}),
        "to-kube-system": term(SYSTEM_LABEL, namespaceSelector={"matchLabels": {
            "kubernetes.io/metadata.name": "kube-system"}}),
    }
    for name, clinging in clingers.items():
        await a.virtual.create(r.PODS, _pod(name, {"app": name}, affinity={
            "podAffinity": {REQUIRED: [clinging]}}), ns)
    spread = {"maxSkew": 1, "topologyKey": HOSTNAME, "whenUnsatisfiable": "DoNotSchedule",
              "labelSelector": {"matchLabels": B_LABEL}}
    await a.virtual.create(r.PODS, _pod("avoider", {"app": "avoider"}, affinity={
        "podAntiAffinity": {
            REQUIRED: [term(B_LABEL, namespaceSelector={})],
            PREFERRED: [{"weight": 100, "podAffinityTerm": term(SYSTEM_LABEL,
                                                                namespaceSelector={})}]},
    }, topologySpreadConstraints=[spread]), ns)

    for name in clingers:
        verdict = await _scheduling_verdict(tenants, name, ns)
        assert (verdict["status"], verdict.get("reason")) == ("False", "Unschedulable"), verdict
        host = await host_copy(a, r.PODS, name, ns)
        (host_term,) = host["spec"]["affinity"]["podAffinity"][REQUIRED]
        assert "namespaces" not in host_term
        assert "namespaceSelector" not in host_term
        await assert_selects_only(tenants, host_term["labelSelector"], set())
    avoider = await ready_pod(a.virtual, "avoider", ns)
    host = await host_copy(a, r.PODS, "avoider", ns)
    anti = host["spec"]["affinity"]["podAntiAffinity"]
    selectors = [anti[REQUIRED][0]["labelSelector"],
                 anti[PREFERRED][0]["podAffinityTerm"]["labelSelector"],
                 host["spec"]["topologySpreadConstraints"][0]["labelSelector"]]
    for selector in selectors:
        await assert_selects_only(tenants, selector, set())
    assert avoider["status"]["phase"] == "Running"


async def _host_ip_shown(tenants: Tenants, name: str, namespace: str) -> bool:
    a = tenants.a
    host = await a.host_get(r.SERVICES, name, namespace)
    virtual = await a.virtual_get(r.SERVICES, name, namespace)
    return bool(host and virtual and host["spec"]["clusterIP"] == virtual["spec"]["clusterIP"])


async def test_hand_written_endpoints_cannot_aim_at_the_host_or_another_tenant(
    tenants: Tenants, victim: Victim, host_targets: HostTargets,
) -> None:
    """CVE-2021-25740: a selector-less Service whose Endpoints list the host API server's
    ClusterIP, b's Service IP and private addresses, next to an external one; and a
    hand-written EndpointSlice for it. Only the external address reaches the host (in the
    host Endpoints and the slices mirrored from them), with a Warning naming the others;
    the hand-written slice never reaches the host."""
    a = tenants.a
    ns = await fresh_namespace(a, "cve")
    await a.virtual.create(r.SERVICES, {"metadata": {"name": "cve"}, "spec": {
        "ports": [{"name": "https", "port": 443}]}}, ns)
    await wait_until(lambda: _host_ip_shown(tenants, "cve", ns), "cve on its host ClusterIP")
    refused = [host_targets.api_cluster_ip, victim.cluster_ip, "10.244.0.7", "172.17.0.1"]
    external = "192.0.2.10"
    await a.virtual.create(r.ENDPOINTS, {"metadata": {"name": "cve"}, "subsets": [{
        "addresses": [{"ip": ip} for ip in [*refused[:3], external]],
        "notReadyAddresses": [{"ip": refused[3]}],
        "ports": [{"name": "https", "port": 443}]}]}, ns)
    await a.virtual.create(ENDPOINTSLICES, {
        "metadata": {"name": "cve-manual", "labels": {"kubernetes.io/service-name": "cve"}},
        "addressType": "IPv4", "endpoints": [{"addresses": [host_targets.api_cluster_ip]}],
        "ports": [{"name": "https", "port": 443}]}, ns)

    warning = await wait_warning(a, ns, "cve", "EndpointAddressRefused")
    assert all(ip in warning["message"] for ip in refused), warning["message"]
    assert a.host_namespace not in warning["message"]
    host = await host_copy(a, r.ENDPOINTS, "cve", ns)
    assert host["subsets"] == [{"addresses": [{"ip": external}],
                                "ports": [{"name": "https", "port": 443, "protocol": "TCP"}]}]
    host_service = a.host_name("cve", ns)

    async def mirrored() -> list[Obj]:
        items, _ = await a.host.list(ENDPOINTSLICES, a.host_namespace,
                                     label_selector=f"kubernetes.io/service-name={host_service}")
        return items

    slices = await wait_until(mirrored, "the host's slices mirrored from the host Endpoints")
    addresses = {ip for s in slices for e in s.get("endpoints") or () for ip in e["addresses"]}
    assert addresses == {external}


async def test_external_names_cannot_point_inside_the_host_cluster(
    tenants: Tenants, victim: Victim, host_targets: HostTargets,
) -> None:
    """ExternalName Services aimed at b's Service on the host (full and short DNS names),
    the host API server (its names and its ClusterIP) and the host's DNS: none reaches the
    host, where ingress controllers and host DNS would follow them; each gets a Warning
    quoting the name. An external, fully qualified name is synced."""
    a, b = tenants.a, tenants.b
    ns = await fresh_namespace(a, "cname")
    b_service = b.host_name(victim.service, victim.namespace)
    targets = {
        "tenant-b": f"{b_service}.{b.host_namespace}.svc.cluster.local",
        "tenant-b-short": f"{b_service}.{b.host_namespace}",
        "host-api": "kubernetes.default.svc.cluster.local",
        "host-api-short": "kubernetes.default",
        "host-api-ip": host_targets.api_cluster_ip,
        "host-dns": "kube-dns.kube-system.svc",
    }
    for name, target in {**targets, "outside": "status.example.com."}.items():
        await a.virtual.create(r.SERVICES, {"metadata": {"name": name}, "spec": {
            "type": "ExternalName", "externalName": target}}, ns)
    outside = await host_copy(a, r.SERVICES, "outside", ns)
    assert outside["spec"]["externalName"] == "status.example.com."
    for name, target in targets.items():
        event = await wait_warning(a, ns, name, "ExternalNameRefused")
        assert target in event["message"], event["message"]
        assert a.host_namespace not in event["message"].replace(target, "")
    await wait_until(lambda: syncer_idle(a.syncers[0].url), "the syncer idle")
    for name in targets:
        assert await a.host_get(r.SERVICES, name, ns) is None, f"{name} reached the host"


async def test_endpoints_reach_own_pod_ips_only(
    tenants: Tenants, victim: Victim, host_targets: HostTargets,
) -> None:
    """A Service selecting the victim's labels: its Endpoints and EndpointSlices, on the
    host and in a's virtual cluster, list a's own pod IP and nothing else. Hand-written
    Endpoints listing b's pod IP and the host system pod's IP next to a's own pod IP:
    only a's own IP reaches the host, with a Warning naming the others."""
    a = tenants.a
    ns = await fresh_namespace(a, "ips")
    await a.virtual.create(r.PODS, _pod("mine", {"app": "victim"}), ns)
    mine = (await ready_pod(a.virtual, "mine", ns))["status"]["podIP"]
    assert mine not in (victim.pod_ip, host_targets.system_pod_ip)
    await a.virtual.create(r.SERVICES, {"metadata": {"name": "grab"}, "spec": {
        "selector": {"app": "victim"}, "ports": [{"port": 80}]}}, ns)
    host_service = a.host_name("grab", ns)

    async def slice_ips(client: KubeClient, namespace: str, service: str) -> set[str]:
        items, _ = await client.list(ENDPOINTSLICES, namespace,
                                     label_selector=f"kubernetes.io/service-name={service}")
        return {ip for s in items for e in s.get("endpoints") or () for ip in e["addresses"]}

    assert await wait_until(lambda: slice_ips(a.host, a.host_namespace, host_service),
                            "the host EndpointSlice of a's Service") == {mine}
    assert await wait_until(lambda: slice_ips(a.virtual, ns, "grab"),
                            "the virtual EndpointSlice of a's Service") == {mine}

    await a.virtual.create(r.SERVICES, {"metadata": {"name": "aim"}, "spec": {
        "ports": [{"name": "http", "port": 80}]}}, ns)
    await wait_until(lambda: _host_ip_shown(tenants, "aim", ns), "aim on its host ClusterIP")
    foreign = [victim.pod_ip, host_targets.system_pod_ip]
    await a.virtual.create(r.ENDPOINTS, {"metadata": {"name": "aim"}, "subsets": [{
        "addresses": [{"ip": ip} for ip in [*foreign, mine]],
        "ports": [{"name": "http", "port": 80}]}]}, ns)
    warning = await wait_warning(a, ns, "aim", "EndpointAddressRefused")
    assert all(ip in warning["message"] for ip in foreign), warning["message"]
    host = await host_copy(a, r.ENDPOINTS, "aim", ns)
    assert [e["ip"] for e in host["subsets"][0]["addresses"]] == [mine]
    assert await wait_until(lambda: slice_ips(a.host, a.host_namespace, a.host_name("aim", ns)),
                            "the host's slices mirrored from a's Endpoints") == {mine}
