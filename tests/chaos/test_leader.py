"""Two syncer replicas with leader election; the leader is SIGKILLed again and again during churn.

Acceptance scenario 34 under load, with proof from the API servers' side:
each replica writes as its own ServiceAccount on both clusters, so the audit
logs attribute every write. Walking those writes in time order together
with the Lease writes (``audit.single_writer``) shows that only the Lease
holder wrote, never after its renew deadline, and never after another
replica took the Lease: never two writers at once. A killed leader is
started again at once (a new identity on the same account), so a standby
is always there to take over; afterwards the host converges with nothing
lost or duplicated.
"""

from __future__ import annotations

import asyncio
import functools
import random
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from syncer.kube.client import KubeClient
from syncer.local.syncer_process import SyncerProcess
from tests.chaos import audit
from tests.chaos.churn import Churn, ChurnSpec
from tests.chaos.conftest import Report
from tests.chaos.verdict import judge
from tests.cluster.conftest import FAST_LEASE, VC, Stack
from tests.suite_size import pick
from tests.support import http_get, wait_until

OBJECTS = pick(ci=150, full=1200)
RATE = pick(ci=5.0, full=8.0)
LIVE_APPS = pick(ci=8, full=20)
KILLS = pick(ci=3, full=10)
SLOTS = ("replica-a", "replica-b")


@dataclass
class Slot:
    """One replica's place: its accounts on both clusters and its current process."""

    name: str
    flags: list[str]
    users: tuple[str, str]
    incarnation: int = 0
    process: SyncerProcess | None = None

    def start(self, stack: Stack) -> SyncerProcess:
        self.incarnation += 1
        self.process = stack.syncer(f"{self.name}-{self.incarnation}", "--leader-elect",
                                    *self.flags)
        return self.process.start()

    def leading(self) -> bool:
        proc = self.process
        if proc is None or proc.exit_code() is not None:
            return False
        return bool(orjson.loads(http_get(f"{proc.url}/debug/statistics"))["leading"])


async def make_slot(stack: Stack, name: str, root: Path) -> Slot:
    """Accounts for one replica: in the host namespace and in the virtual ``default``."""
    host = await audit.identity(stack.host, stack.host_cluster, stack.host_namespace, name,
                                root / f"{name}-host.kubeconfig")
    virtual = await audit.identity(stack.virtual, stack.virtual_cluster, "default", name,
                                   root / f"{name}-virtual.kubeconfig")
    users = (audit.service_account_user(stack.host_namespace, name),
             audit.service_account_user("default", name))
    return Slot(name, [f"--host-kubeconfig={host}", f"--virtual-kubeconfig={virtual}"], users)


def leaders(slots: list[Slot]) -> list[Slot]:
    found = [s for s in slots if s.leading()]
    assert len(found) <= 1, f"two replicas lead at once: {[s.name for s in found]}"
    return found


async def test_killing_the_leader_never_makes_two_writers(
    stack: Stack, churn_client: KubeClient, report: Report, tmp_path: Path
) -> None:
    slots = [await make_slot(stack, name, tmp_path) for name in SLOTS]
    since = audit.now()
    for slot in slots:
        await asyncio.to_thread(slot.start, stack)
    await wait_until(lambda: leaders(slots), "one replica to take the Lease", timeout=30)
    churn = Churn(churn_client, ChurnSpec(objects=OBJECTS, rate=RATE, live_apps=LIVE_APPS,
                                          seed=3, prefix="leader"))
    work = asyncio.create_task(churn.run())
    rng = random.Random(9)
    takeovers: list[float] = []
    for kill in range(KILLS):
        due = (kill + 1) * OBJECTS // (KILLS + 1)
        await wait_until(functools.partial(churn.progressed, due),
                         f"the workload to create {due} objects", timeout=OBJECTS / RATE * 4)
        (leader,) = await wait_until(lambda: leaders(slots), "a leader", timeout=30)
        # A random moment between two progress marks: the fault schedule, not a wait.
        await asyncio.sleep(rng.uniform(0.0, 2.0))
        assert leader.process is not None
        await asyncio.to_thread(leader.process.kill)
        killed = time.monotonic()
        standby = next(s for s in slots if s is not leader)
        await wait_until(standby.leading, f"{standby.name} to take over", timeout=30)
        takeovers.append(time.monotonic() - killed)
        await asyncio.to_thread(leader.start, stack)
    record = await work
    fault_ended = time.monotonic()

    users = {user: slot.name for slot in slots for user in slot.users}
    verdict = await judge(stack, [churn], set(users), since, fault_ended,
                          f"after {KILLS} leader kills")
    writers = audit.single_writer(
        audit.writes(audit.log_of(stack.host_cluster), since),
        audit.writes(audit.log_of(stack.virtual_cluster), since),
        users, f"vcsync-{VC}", FAST_LEASE["renewDeadline"],
    )
    figures: dict[str, Any] = {
        "leader_kills": KILLS, "takeover_seconds_max": round(max(takeovers), 1),
        "takeover_seconds": [round(t, 1) for t in takeovers],
        "lease_terms": writers.terms, "writer_runs": writers.runs,
        "writes_by_replica": writers.writes, "single_writer_violations": len(writers.violations),
        **verdict.figures(), "churn": record.summary(),
    }
    report("test_leader", figures)
    assert not writers.violations, "two writers:\n  " + "\n  ".join(writers.violations[:20])
    assert writers.runs <= writers.terms, "writes interleaved more often than the Lease moved"
    assert writers.terms >= KILLS + 1, f"the Lease moved only {writers.terms - 1} times"
    assert len(writers.writes) == len(SLOTS), f"not every replica led: {writers.writes}"
    verdict.check()
