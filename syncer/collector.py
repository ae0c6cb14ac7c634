"""How `vcsync run` tunes CPython's cyclic garbage collector.

Why: the caches are hundreds of thousands of long-lived dicts that never form
reference cycles (parsed JSON is a tree), yet with the default thresholds
(700, 10, 10) every young collection re-walks what the last LIST allocated,
and each full collection walks every cached object. `vcsync bench hotpath`
charged that to the hot path: 100-250 µs per pod while the caches grow, more
than all translation work. Plain garbage is freed by reference counting at
once whatever the thresholds; only cyclic garbage (asyncio futures and
exception tracebacks, a few KiB each) waits longer, bounded by the young
threshold below.

Invariants:
- :func:`tune` only changes thresholds; collection is never disabled;
- :func:`freeze_caches` is called once the caches are synced, so the start-up
  LIST (the bulk of the process's objects) is moved to the permanent
  generation and never scanned again, as Instagram's "gc.freeze" recipe does.
"""

from __future__ import annotations

import gc
from typing import NamedTuple


class Thresholds(NamedTuple):
    """``gc.set_threshold`` arguments: allocations before a young collection, then ratios."""

    young: int
    middle: int
    old: int


SYNCER_THRESHOLDS = Thresholds(50_000, 20, 100)
"""A young collection per 50,000 net allocations (about 200 pod events) instead of 700."""


def tune(thresholds: Thresholds = SYNCER_THRESHOLDS) -> Thresholds:
    """Set the collector's thresholds for a long-running cache holder; returns the previous ones."""
    previous = Thresholds(*gc.get_threshold())
    gc.set_threshold(*thresholds)
    return previous


def freeze_caches() -> int:
    """Collect once, then exempt everything alive (the synced caches) from later scans.

    Returns how many objects were frozen (``gc.get_freeze_count``).
    """
    gc.collect()
    gc.freeze()
    return gc.get_freeze_count()
