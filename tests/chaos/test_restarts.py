"""Restart each control-plane component during churn: the syncer rides it out and converges.

One stack, four faults in turn, each in the middle of its own burst of
churn: the host kube-apiserver, the virtual kube-apiserver, the host etcd
and the virtual kine (its SQLite state survives, as in production). The
syncer's watches break, its writes fail for a while, the workload's requests
are retried; afterwards the host must equal what the translators make of the
virtual state, with nothing lost or created twice, and the syncer process
must still be the one that was started (no crash).
"""

from __future__ import annotations

import asyncio
import functools
import time

from syncer.kube.client import KubeClient
from syncer.local.cluster import ControlPlane
from tests.chaos import audit
from tests.chaos.churn import Churn, ChurnSpec
from tests.chaos.conftest import SYNCER_USER, Report
from tests.chaos.verdict import judge
from tests.cluster.conftest import Stack
from tests.suite_size import pick
from tests.support import wait_until

FAULTS = (("host", "kube-apiserver"), ("virtual", "kube-apiserver"), ("host", "etcd"),
          ("virtual", "kine"))
OBJECTS = pick(ci=48, full=400)
"""Objects the workload creates around each restart."""
RATE = pick(ci=5.0, full=8.0)
LIVE_APPS = pick(ci=6, full=16)


def plane_of(stack: Stack, side: str) -> ControlPlane:
    return stack.host_cluster if side == "host" else stack.virtual_cluster


async def test_component_restarts_during_churn_converge(
    stack: Stack, churn_client: KubeClient, report: Report
) -> None:
    syncer = stack.syncer().start()
    since = audit.now()
    churns: list[Churn] = []
    for number, (side, component) in enumerate(FAULTS):
        churn = Churn(churn_client, ChurnSpec(objects=OBJECTS, rate=RATE, live_apps=LIVE_APPS,
                                              seed=number, prefix=f"restart{number}"))
        churns.append(churn)
        work = asyncio.create_task(churn.run())
        await wait_until(functools.partial(churn.progressed, OBJECTS // 2),
                         f"the workload to create {OBJECTS // 2} objects",
                         timeout=OBJECTS / RATE * 4)
        stopped = time.monotonic()
        await asyncio.to_thread(plane_of(stack, side).restart, component)
        outage = time.monotonic() - stopped
        record = await work
        fault_ended = time.monotonic()
        what = f"after restarting the {side} {component}"
        verdict = await judge(stack, churns, {SYNCER_USER}, since, fault_ended, what)
        report("test_restarts", {"fault": f"{side} {component}",
                                 "restart_seconds": round(outage, 1), **verdict.figures(),
                                 "churn": record.summary()})
        verdict.check()
        assert syncer.exit_code() is None, f"the syncer exited {what}:\n{syncer.logs(30)}"
