"""A host API server that throttles the syncer (429) under churn (issue 9).

The syncer runs as the ServiceAccount the Helm chart gives it, with exactly
the chart's Role and ClusterRole (an admin of ``system:masters`` is exempt
from API Priority and Fairness, and from every in-flight limit). A
FlowSchema matching only that account sends all its requests to a priority
level of one nominal share with no borrowing that *rejects* what does not
fit: three seats for a syncer with its default workers (hundreds of writers),
so it is answered 429 with a Retry-After, while every other client of the
shared host is untouched.

What must hold:

- the syncer converges anyway (the oracle finds nothing to write; nothing
  lost, nothing duplicated);
- it honours Retry-After: after a 429 on a write, that same write is not
  sent again sooner than one second (the least an API server asks for) -
  read from the host's audit log, which sees every request, 429s included;
- it does not busy-loop: in no second does it collect more 429s for writes
  than it has writers (each must have waited out its Retry-After), and its
  host requests stay within a bound proportional to the work.

The FlowSchema, priority level and the chart's cluster-scoped RBAC are
deleted afterwards, whatever happens.
"""

from __future__ import annotations

import asyncio
import bisect
import contextlib
import datetime
import functools
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import orjson
import pytest
from prometheus_client.parser import text_string_to_metric_families

from contract import resources as r
from contract.resources import Obj, Resource
from syncer.kube.client import KubeClient
from syncer.kube.errors import NotFound
from syncer.local.cluster import ControlPlane
from syncer.local.syncer_process import SyncerProcess
from tests.chaos import audit
from tests.chaos.churn import Churn, ChurnSpec
from tests.chaos.conftest import Report
from tests.chaos.verdict import judge
from tests.chart.rendering import render
from tests.cluster.conftest import VC, Stack, sync_config
from tests.suite_size import pick
from tests.support import api_host, http_get, kubeconfig_for_token, metric_total, wait_until

FLOWCONTROL = "flowcontrol.apiserver.k8s.io"
PRIORITY_LEVELS = Resource(FLOWCONTROL, "v1", "prioritylevelconfigurations",
                           "PriorityLevelConfiguration", namespaced=False)
FLOW_SCHEMAS = Resource(FLOWCONTROL, "v1", "flowschemas", "FlowSchema", namespaced=False)
RBAC = "rbac.authorization.k8s.io"
BY_KIND: dict[str, Resource] = {
    "ServiceAccount": r.SERVICEACCOUNTS,
    "Role": Resource(RBAC, "v1", "roles", "Role"),
    "RoleBinding": r.ROLEBINDINGS,
    "ClusterRole": Resource(RBAC, "v1", "clusterroles", "ClusterRole", namespaced=False),
    "ClusterRoleBinding": audit.CLUSTERROLEBINDINGS,
}
RETRY_AFTER_FLOOR = 1.0
"""The smallest Retry-After an API server sends (seconds; APF adapts it upwards)."""
CLOCK_SLACK = 0.05
REQUESTS_PER_UNIT_OF_WORK = 6
"""The bound on host requests (all verbs, watches and retries included) per unit of work,
a churn operation or a created virtual object; unthrottled, the syncer needs about two."""

SPEC = pick(ci=ChurnSpec(objects=60, rate=6.0, live_apps=6),
            full=ChurnSpec(objects=300, rate=6.0, live_apps=16))
"""The syncer is stopped during the middle half of it, so it comes back to a backlog."""


@dataclass
class Throttled:
    """The syncer's host identity and the APF objects that throttle only it."""

    kubeconfig: Path
    user: str
    flow_schema: str
    priority_level: str


@pytest.fixture
def config() -> Obj:
    """The syncer's default workers (8 shards of 4 per kind), as deployed: far more
    writers than the throttled priority level has seats."""
    cfg = sync_config()
    for key in ("shards", "workersPerShard"):
        del cfg["syncer"][key]
    return cfg


def _chart_rbac(namespace: str) -> list[Obj]:
    """The chart's ServiceAccount, Role(Binding) and ClusterRole(Binding) for ``namespace``."""
    return [o for o in render(namespace=namespace, release=VC) if o["kind"] in BY_KIND]


def _apf(name: str, account: str, namespace: str) -> tuple[Obj, Obj]:
    level = {"metadata": {"name": name}, "spec": {"type": "Limited", "limited": {
        "nominalConcurrencyShares": 1, "lendablePercent": 0, "borrowingLimitPercent": 0,
        "limitResponse": {"type": "Reject"}}}}
    schema = {"metadata": {"name": name}, "spec": {
        "matchingPrecedence": 100,
        "priorityLevelConfiguration": {"name": name},
        "distinguisherMethod": {"type": "ByUser"},
        "rules": [{
            "subjects": [{"kind": "ServiceAccount",
                          "serviceAccount": {"name": account, "namespace": namespace}}],
            "resourceRules": [{"verbs": ["*"], "apiGroups": ["*"], "resources": ["*"],
                               "namespaces": ["*"], "clusterScope": True}],
            "nonResourceRules": [{"verbs": ["*"], "nonResourceURLs": ["*"]}],
        }],
    }}
    return level, schema


@pytest.fixture
async def throttled(stack: Stack, tmp_path: Path) -> AsyncIterator[Throttled]:
    namespace = stack.host_namespace
    rbac = await asyncio.to_thread(_chart_rbac, namespace)
    account = next(o for o in rbac if o["kind"] == "ServiceAccount")["metadata"]["name"]
    name = f"vcsync-chaos-{namespace}"
    level, schema = _apf(name, account, namespace)
    made = [(BY_KIND[o["kind"]], o) for o in rbac]
    made += [(PRIORITY_LEVELS, level), (FLOW_SCHEMAS, schema)]
    try:
        for resource, obj in made:
            await stack.host.create(resource, obj, namespace if resource.namespaced else None)
        token = await stack.host.create_subresource(
            r.SERVICEACCOUNTS, account, "token", {"spec": {"expirationSeconds": 3600}},
            namespace)
        path = kubeconfig_for_token(stack.host_cluster, token["status"]["token"],
                                    tmp_path / "syncer-sa.kubeconfig")
        yield Throttled(path, audit.service_account_user(namespace, account), name, name)
    finally:
        for resource, obj in reversed(made):
            if not resource.namespaced:  # the namespace goes with the stack
                with contextlib.suppress(NotFound):
                    await stack.host.delete(resource, obj["metadata"]["name"])


# -- what the API server says -------------------------------------------------------------


def _apiserver_metrics(plane: ControlPlane) -> list[tuple[str, dict[str, str], float]]:
    status, body = plane.client().request("GET", "/metrics")
    assert status == 200, f"GET /metrics -> {status}"
    return [(s.name, s.labels, s.value)
            for family in text_string_to_metric_families(body.decode())
            for s in family.samples]


async def _flow(plane: ControlPlane, schema: str, level: str) -> dict[str, float]:
    """APF's own count of our flow's requests: dispatched, rejected, and the level's seats."""
    samples = await asyncio.to_thread(_apiserver_metrics, plane)
    total = {"dispatched": 0.0, "rejected": 0.0, "seats": 0.0}
    for name, labels, value in samples:
        if name == "apiserver_flowcontrol_dispatched_requests_total" and labels.get(
                "flow_schema") == schema:
            total["dispatched"] += value
        elif name == "apiserver_flowcontrol_rejected_requests_total" and labels.get(
                "flow_schema") == schema:
            total["rejected"] += value
        elif name == "apiserver_flowcontrol_nominal_limit_seats" and labels.get(
                "priority_level") == level:
            total["seats"] = value
    return total


async def _in_force(stack: Stack, t: Throttled) -> bool:
    """One request as the syncer's account; True once APF counts it under our FlowSchema."""
    async with await KubeClient.from_kubeconfig(str(t.kubeconfig), name="probe") as client:
        await client.list(r.SERVICES, stack.host_namespace)
    return (await _flow(stack.host_cluster, t.flow_schema, t.priority_level))["dispatched"] > 0


def _writers(syncer: SyncerProcess) -> int:
    """How many writes the syncer can have in flight at once: every queue's workers, the
    status batcher and the event recorder."""
    stats: Obj = orjson.loads(http_get(f"{syncer.url}/debug/statistics"))
    queues = stats["queues"].values()
    return sum(int(q["shards"]) * int(q["workers_per_shard"]) for q in queues) + 2


# -- what the audit log says ----------------------------------------------------------------


def retries_after_429(found: list[audit.Write]) -> tuple[int, list[str]]:
    """(how many named writes were sent again after a 429, those sent again sooner than
    RETRY_AFTER_FLOOR). A throttled create names no object in the log (its body was
    never read), so "the same write again" is known only for writes to a named object.
    """
    last_429: dict[tuple[str, str, str, str, str], datetime.datetime] = {}
    retried = 0
    early: list[str] = []
    for w in found:
        if not w.name:
            continue
        key = (w.verb, w.resource, w.subresource, w.namespace, w.name)
        before = last_429.pop(key, None)
        if before is not None:
            retried += 1
            gap = (w.at - before).total_seconds()
            if gap < RETRY_AFTER_FLOOR - CLOCK_SLACK:
                early.append(f"{w.verb} {w.resource} {w.namespace}/{w.name}: "
                             f"{gap:.2f}s after a 429")
        if w.code == 429:
            last_429[key] = w.at
    return retried, early


def busiest_second(found: list[audit.Write]) -> int:
    """The most 429s the syncer collected for writes within any one second."""
    times = [w.at.timestamp() for w in found if w.code == 429]
    return max((bisect.bisect_right(times, t + 1.0) - i for i, t in enumerate(times)),
               default=0)


# -- the test ------------------------------------------------------------------------------


async def test_throttled_syncer_backs_off_and_converges(
    stack: Stack, churn_client: KubeClient, throttled: Throttled, report: Report
) -> None:
    await wait_until(lambda: _in_force(stack, throttled),
                     "API Priority and Fairness to classify the syncer's account", timeout=60)
    churn = Churn(churn_client, SPEC)
    syncer = stack.syncer("", f"--host-kubeconfig={throttled.kubeconfig}")
    since, started = audit.now(), time.monotonic()
    await asyncio.to_thread(syncer.start, True, 180)
    run = asyncio.create_task(churn.run())
    try:
        # The syncer is away for the middle half of the churn: when it comes back, it
        # owes creates, patches and deletes (named writes) to all its writers at once.
        await wait_until(functools.partial(churn.progressed, SPEC.objects // 4),
                         "the first quarter of the churn", timeout=120)
        await asyncio.to_thread(syncer.stop)
        await wait_until(functools.partial(churn.progressed, 3 * SPEC.objects // 4),
                         "the middle half of the churn", timeout=240)
        await asyncio.to_thread(syncer.start, True, 180)
        await run
    finally:
        run.cancel()
    churned = time.monotonic()
    verdict = await judge(stack, [churn], {throttled.user}, since, churned,
                          "converged while throttled", timeout=300)

    flow = await _flow(stack.host_cluster, throttled.flow_schema, throttled.priority_level)
    requests = flow["dispatched"] + flow["rejected"]
    throttled_seen = metric_total(syncer.url, "rest_client_requests_total",
                                  host=api_host(stack.host_cluster),
                                  code="429")
    found = audit.by(throttled.user, audit.writes(audit.log_of(stack.host_cluster), since))
    retried, early = retries_after_429(found)
    busiest, writers = busiest_second(found), _writers(syncer)
    work = churn.record.operations + churn.record.created
    figures = {
        "seats": flow["seats"], "apf_rejected": flow["rejected"],
        "apf_dispatched": flow["dispatched"], "syncer_host_requests": requests,
        "syncer_saw_429_since_restart": throttled_seen, "audited_writes": len(found),
        "audited_write_429s": sum(w.code == 429 for w in found),
        "named_writes_retried_after_429": retried, "early_retries": len(early),
        "busiest_second_429s": busiest, "writers": writers,
        "churn_operations": churn.record.operations, "objects_created": churn.record.created,
        "churn_seconds": round(churned - started, 1), **verdict.figures(),
    }
    report("throttling", figures)
    verdict.check()
    assert flow["rejected"] > 0, f"the API server throttled nothing: {figures}"
    assert retried > 0, f"no named write was throttled: Retry-After unchecked: {figures}"
    assert not early, f"Retry-After not honoured ({len(early)}): {early[:10]}"
    assert busiest <= writers, f"{busiest} 429s within one second for {writers} writers"
    assert requests <= REQUESTS_PER_UNIT_OF_WORK * work, figures
