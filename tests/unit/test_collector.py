"""The collector policy of `vcsync run` (syncer.collector): thresholds set, caches frozen."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from syncer import collector


@pytest.fixture
def restored() -> Iterator[None]:
    before = gc.get_threshold()
    yield
    gc.set_threshold(*before)
    gc.unfreeze()


@pytest.mark.usefixtures("restored")
def test_tune_sets_the_syncer_thresholds_and_returns_the_previous_ones() -> None:
    gc.set_threshold(700, 10, 10)
    assert collector.tune() == (700, 10, 10)
    assert gc.get_threshold() == tuple(collector.SYNCER_THRESHOLDS)
    assert gc.isenabled()


@pytest.mark.usefixtures("restored")
def test_freeze_exempts_what_is_alive_and_later_objects_are_still_collected() -> None:
    cache = [{"metadata": {"name": f"pod-{i}"}} for i in range(1000)]
    frozen = collector.freeze_caches()
    assert frozen == gc.get_freeze_count() >= len(cache)
    cycle: list[object] = []
    cycle.append(cycle)
    del cycle
    assert gc.collect() >= 1, "a cycle made after the freeze was not collected"
