"""Host rejections under churn: a full ResourceQuota and a ValidatingAdmissionPolicy (issue 9).

Acceptance scenario 36 with the world still moving. While the churn
workload runs, the host starts refusing two things for two reasons at once:

- Services, because the host namespace's ResourceQuota for Services is used
  up (its limit is set below what is in use, so that it stays exhausted
  whatever the churn deletes meanwhile: a limit equal to the use let a
  deleted app free the slot the test's own Service then took);
- pods labelled ``chaos-reject``, because a ValidatingAdmissionPolicy says
  so. Policies and their bindings are cluster-scoped on the host, which the
  whole suite shares: the binding selects this test's host namespace only,
  and both are deleted afterwards, whatever happens.

What must hold: each rejected virtual object gets a Warning event that says
why (the quota or the policy's message, without host names); everything
else keeps syncing meanwhile (the oracle's only differences are the rejected
objects); and once both causes are removed, the rejected objects sync too,
nothing is lost and nothing duplicated.

The simple case (one pod over a pod quota, no churn) is
``tests/cluster/test_storage_network.py``; this one differs in the churn,
in two causes at once and in a rejection that comes from a policy.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest

from contract import resources as r
from contract.resources import Obj, Resource
from syncer.kube.client import KubeClient
from syncer.kube.errors import Forbidden, Invalid, NotFound
from tests.chaos import audit
from tests.chaos.churn import Churn, ChurnSpec
from tests.chaos.conftest import SYNCER_USER, Report
from tests.chaos.converge import differences
from tests.chaos.verdict import judge
from tests.cluster.conftest import Stack
from tests.suite_size import pick
from tests.support import wait_until

ADMISSION = "admissionregistration.k8s.io"
POLICIES = Resource(ADMISSION, "v1", "validatingadmissionpolicies",
                    "ValidatingAdmissionPolicy", namespaced=False)
BINDINGS = Resource(ADMISSION, "v1", "validatingadmissionpolicybindings",
                    "ValidatingAdmissionPolicyBinding", namespaced=False)
QUOTAS = Resource("", "v1", "resourcequotas", "ResourceQuota")
REJECT_LABEL = "chaos-reject"
POLICY_MESSAGE = "pods labelled chaos-reject are not admitted on this host"
QUOTA_NAME = "chaos-services"
REJECTED_APP = "rejected"
"""The Deployment whose pods carry the label the policy refuses."""
OVER_QUOTA = "over-quota"
"""A Service created once the quota is full (the churn's own may or may not come)."""

SPEC = pick(ci=ChurnSpec(objects=40, rate=2.0, live_apps=4, seed=3),
            full=ChurnSpec(objects=300, rate=4.0, live_apps=12, seed=3))
REPLICAS = pick(ci=2, full=6)


@dataclass
class Causes:
    """The two reasons the host refuses things, and how to take them away."""

    stack: Stack
    policy: str
    services_in_use: int = 0

    async def remove(self) -> None:
        for resource, name in ((BINDINGS, self.policy), (POLICIES, self.policy)):
            with contextlib.suppress(NotFound):
                await self.stack.host.delete(resource, name)
        with contextlib.suppress(NotFound):
            await self.stack.host.delete(QUOTAS, QUOTA_NAME, self.stack.host_namespace)


@pytest.fixture
async def causes(stack: Stack) -> AsyncIterator[Causes]:
    found = Causes(stack, f"vcsync-chaos-reject-{uuid.uuid4().hex[:6]}")
    try:
        yield found
    finally:
        await found.remove()


def _policy(name: str, host_namespace: str) -> tuple[Obj, Obj]:
    policy = {"metadata": {"name": name}, "spec": {
        "failurePolicy": "Fail",
        "matchConstraints": {"resourceRules": [{
            "apiGroups": [""], "apiVersions": ["v1"], "operations": ["CREATE"],
            "resources": ["pods"]}]},
        "validations": [{
            "expression": f"!has(object.metadata.labels) || "
                          f"!('{REJECT_LABEL}' in object.metadata.labels)",
            "message": POLICY_MESSAGE}],
    }}
    binding = {"metadata": {"name": name}, "spec": {
        "policyName": name, "validationActions": ["Deny"],
        "matchResources": {"namespaceSelector": {"matchLabels": {
            "kubernetes.io/metadata.name": host_namespace}}},
    }}
    return policy, binding


async def _refused(client: KubeClient, resource: Resource, obj: Obj, namespace: str) -> bool:
    """True when a dry-run create of ``obj`` in ``namespace`` is refused by admission.

    Each probe has a name of its own: the audit log records dry runs like creates,
    and one name created twice would count as a duplicate.
    """
    named = {**obj, "metadata": {**obj["metadata"], "name": f"probe-{uuid.uuid4().hex[:8]}"}}
    try:
        await client.request("POST", resource.path(namespace), params={"dryRun": "All"},
                             body=named)
    except (Forbidden, Invalid):
        return True
    return False


async def _impose(causes: Causes) -> None:
    """Exhaust the Service quota of the host namespace and bind the policy to it; wait until
    both are in force (a dry-run create is refused)."""
    stack, host_ns = causes.stack, causes.stack.host_namespace
    policy, binding = _policy(causes.policy, host_ns)
    await stack.host.create(POLICIES, policy)
    await stack.host.create(BINDINGS, binding)
    services, _ = await stack.host.list(r.SERVICES, host_ns)
    causes.services_in_use = len(services)
    await stack.host.create(QUOTAS, {"metadata": {"name": QUOTA_NAME}, "spec": {
        "hard": {"services": "0"}}}, host_ns)
    probe_pod = {"metadata": {"labels": {REJECT_LABEL: "yes"}},
                 "spec": {"containers": [{"name": "c", "image": "busybox"}]}}
    probe_service = {"metadata": {}, "spec": {"ports": [{"port": 80}]}}
    await wait_until(lambda: _refused(stack.host, r.PODS, probe_pod, host_ns),
                     "the admission policy to refuse labelled pods", timeout=60)
    await wait_until(lambda: _refused(stack.host, r.SERVICES, probe_service, host_ns),
                     "the full quota to refuse Services", timeout=60)
    assert not await _refused(stack.host, r.PODS, probe_pod, "default"), \
        "the policy refuses pods outside this test's host namespace"


async def _create_rejected(client: KubeClient, namespace: str) -> None:
    """The objects the host will refuse, whatever the churn happens to do meanwhile."""
    labels = {"app": REJECTED_APP, REJECT_LABEL: "yes"}
    await client.create(r.DEPLOYMENTS, {
        "metadata": {"name": REJECTED_APP},
        "spec": {"replicas": REPLICAS, "selector": {"matchLabels": labels},
                 "template": {"metadata": {"labels": labels}, "spec": {
                     "containers": [{"name": "c", "image": "registry.invalid/rejected:v1"}],
                     "terminationGracePeriodSeconds": 1}}}}, namespace)
    await client.create(r.SERVICES, {"metadata": {"name": OVER_QUOTA},
                                     "spec": {"ports": [{"port": 80}]}}, namespace)


async def _warnings(stack: Stack, namespace: str, kind: str, prefix: str) -> list[Obj]:
    """SyncError Warning events on virtual ``kind`` objects whose name starts with ``prefix``."""
    events, _ = await stack.virtual.list(r.EVENTS, namespace)
    return [e for e in events if e.get("type") == "Warning" and e.get("reason") == "SyncError"
            and e["involvedObject"].get("kind") == kind
            and e["involvedObject"].get("name", "").startswith(prefix)]


async def _rejected_pods(stack: Stack, namespace: str) -> list[str]:
    pods, _ = await stack.virtual.list(r.PODS, namespace,
                                       label_selector=f"{REJECT_LABEL}=yes")
    return sorted(p["metadata"]["name"] for p in pods)


async def _every_rejected_pod_warned(stack: Stack, namespace: str) -> list[Obj] | None:
    pods = await _rejected_pods(stack, namespace)
    warned = await _warnings(stack, namespace, "Pod", REJECTED_APP)
    named = {e["involvedObject"]["name"] for e in warned}
    return warned if len(pods) == REPLICAS and named >= set(pods) else None


def _is_rejected(difference: str) -> bool:
    """Whether an oracle difference is about an object the host refuses right now: a pod
    of the labelled Deployment, or a Service (the quota refuses every new one)."""
    return f"/{REJECTED_APP}-" in difference or difference.startswith("services ")


async def _only_rejected_differ(stack: Stack) -> list[str] | None:
    found = await differences(stack)
    return found if found and all(_is_rejected(d) for d in found) else None


async def test_rejected_objects_warn_others_sync_and_all_sync_once_causes_go(
    stack: Stack, churn_client: KubeClient, causes: Causes, report: Report
) -> None:
    stack.syncer().start()
    since = audit.now()
    churn = Churn(churn_client, SPEC)
    namespace = churn.namespaces[0]
    run = asyncio.create_task(churn.run())
    try:
        await wait_until(functools.partial(churn.progressed, SPEC.objects // 4),
                         "the churn to get going", timeout=120)
        await _impose(causes)
        imposed = time.monotonic()
        await _create_rejected(churn_client, namespace)
        pod_warnings = await wait_until(lambda: _every_rejected_pod_warned(stack, namespace),
                                        "a Warning on every pod the policy refuses",
                                        timeout=120)
        service_warnings = await wait_until(
            lambda: _warnings(stack, namespace, "Service", OVER_QUOTA),
            "a Warning on the Service over quota", timeout=120)
        warned = time.monotonic()
        assert pod_warnings is not None
        await run
    finally:
        run.cancel()
    remaining = await wait_until(lambda: _only_rejected_differ(stack),
                                 "everything but the refused objects to sync", timeout=240,
                                 interval=1.0)
    others_synced = time.monotonic()
    assert remaining is not None
    await causes.remove()
    removed = time.monotonic()
    verdict = await judge(stack, [churn], {SYNCER_USER}, since, removed,
                          "after the quota and the policy were removed", timeout=300)
    messages = [e["message"] for e in pod_warnings + service_warnings]
    report("rejections", {
        "rejected_pods": REPLICAS, "services_in_use_at_quota": causes.services_in_use,
        "seconds_to_warnings": round(warned - imposed, 1),
        "seconds_until_only_rejected_differ": round(others_synced - imposed, 1),
        "differences_while_refused": len(remaining), **verdict.figures(),
        "churn": churn.record.summary(), "messages": sorted(set(messages))[:4],
    })
    verdict.check()
    assert all(POLICY_MESSAGE in e["message"] for e in pod_warnings), pod_warnings
    assert all("exceeded quota" in e["message"] for e in service_warnings), service_warnings
    assert not any(stack.host_namespace in m for m in messages), messages
    assert await _rejected_pods(stack, namespace), "the refused pods are gone"
    for name in await _rejected_pods(stack, namespace):
        assert await stack.host_get(r.PODS, name, namespace) is not None, name
    assert await stack.host_get(r.SERVICES, OVER_QUOTA, namespace) is not None

