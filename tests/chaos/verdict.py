"""The end of every chaos test: wait for convergence, then count what was lost or duplicated.

Why one function: every fault test must prove the same three things the
same way, so their figures compare: the time from the end of the fault to
convergence (:func:`tests.chaos.converge.wait_converged`, after the
workload's Deployments are all rolled out and available), objects lost (the
oracle's missing copies, the workload's objects gone from the virtual
cluster, and virtual pods the syncer deleted unasked, from the audit log),
and duplicates (host objects created twice, virtual objects re-created).
"""

from __future__ import annotations

import datetime
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from tests.chaos import audit
from tests.chaos.churn import Churn
from tests.chaos.converge import wait_converged
from tests.cluster.conftest import Stack
from tests.support import wait_until


@dataclass
class Verdict:
    what: str
    converge_seconds: float
    workload: list[str]
    """Objects of the workload lost or re-created in the virtual cluster."""
    tally: audit.Tally

    @property
    def lost(self) -> list[str]:
        return [w for w in self.workload if w.startswith("lost")] + self.tally.lost_pods

    @property
    def duplicates(self) -> list[str]:
        return [w for w in self.workload if w.startswith("re-created")] + self.tally.recreated

    def figures(self) -> dict[str, Any]:
        return {"converge_seconds": round(self.converge_seconds, 1),
                "objects_lost": len(self.lost), "duplicates": len(self.duplicates),
                **self.tally.figures()}

    def check(self) -> None:
        problems = self.lost + self.duplicates
        assert not problems, f"{self.what}: {len(self.lost)} lost, {len(self.duplicates)} " \
                             "duplicated:\n  " + "\n  ".join(problems[:40])


async def judge(stack: Stack, churns: Sequence[Churn], syncers: set[str],
                since: datetime.datetime, fault_ended: float, what: str,
                timeout: float = 300.0) -> Verdict:
    """Wait until the workload is rolled out and the host converged; then count.

    ``fault_ended`` is the ``time.monotonic()`` at which the last fault was
    over (the component is back) and the workload done; the convergence time
    is measured from it.
    ``syncers`` are the audit user names the syncer processes wrote as.
    """
    await _rolled_out(churns, what, timeout)
    start = time.monotonic()
    took = await wait_converged(stack, timeout, what)
    seconds = start + took - fault_ended
    workload = [found for churn in churns for found in await churn.lost_or_recreated()]
    tally = audit.tally(audit.log_of(stack.host_cluster), audit.log_of(stack.virtual_cluster),
                        syncers, since)
    return Verdict(what, seconds, workload, tally)


async def _rolled_out(churns: Sequence[Churn], what: str, timeout: float) -> None:
    last: list[str] = []

    async def settled() -> bool:
        nonlocal last
        last = [found for churn in churns for found in await churn.unsettled()]
        return not last

    try:
        await wait_until(settled, f"{what}: every Deployment rolled out and available",
                         timeout=timeout, interval=1.0)
    except AssertionError as exc:
        raise AssertionError(f"{exc}; not yet: {last[:10]}") from None
