"""SIGKILL the syncer at random moments during churn: nothing lost, nothing duplicated.

Acceptance scenario 33 under load: a ``kill -9`` can land between any two
requests (a host pod created but its virtual pod not yet bound, a virtual
Service deleted but not yet re-created, a token Secret half written). The
syncer keeps no state of its own, so each restart must rebuild everything
from the two API servers and finish the work, creating nothing twice.
"""

from __future__ import annotations

import asyncio
import functools
import random
import time
from typing import Any

from syncer.kube.client import KubeClient
from tests.chaos import audit
from tests.chaos.churn import Churn, ChurnSpec
from tests.chaos.conftest import SYNCER_USER, Report
from tests.chaos.verdict import judge
from tests.cluster.conftest import Stack
from tests.suite_size import pick
from tests.support import wait_until

OBJECTS = pick(ci=200, full=2000)
RATE = pick(ci=5.0, full=8.0)
LIVE_APPS = pick(ci=8, full=24)
KILLS = pick(ci=4, full=20)


async def test_sigkill_during_churn_loses_and_duplicates_nothing(
    stack: Stack, churn_client: KubeClient, report: Report
) -> None:
    syncer = stack.syncer().start()
    since = audit.now()
    churn = Churn(churn_client, ChurnSpec(objects=OBJECTS, rate=RATE, live_apps=LIVE_APPS,
                                          seed=11))
    work = asyncio.create_task(churn.run())
    rng = random.Random(5)
    downtimes: list[float] = []
    during_churn = 0
    for kill in range(KILLS):
        due = (kill + 1) * OBJECTS // (KILLS + 1)
        await wait_until(functools.partial(churn.progressed, due),
                         f"the workload to create {due} objects", timeout=OBJECTS / RATE * 4)
        # A random moment between two progress marks: the fault schedule, not a wait.
        await asyncio.sleep(rng.uniform(0.0, 2.0))
        during_churn += not work.done()
        await asyncio.to_thread(syncer.kill)
        killed = time.monotonic()
        await asyncio.to_thread(syncer.start)
        downtimes.append(time.monotonic() - killed)
    record = await work
    fault_ended = time.monotonic()

    verdict = await judge(stack, [churn], {SYNCER_USER}, since, fault_ended,
                          f"after {KILLS} SIGKILLs")
    figures: dict[str, Any] = {
        "kills": KILLS, "kills_during_churn": during_churn,
        "restart_seconds_max": round(max(downtimes), 1), **verdict.figures(),
        "churn": record.summary(),
    }
    report("test_kills", figures)
    verdict.check()
    assert during_churn == KILLS, f"only {during_churn} of {KILLS} kills landed during churn"

