"""Unit tests of :func:`syncer.writer.compose` (coalescing of pending status patches).

The contract: ``compose(p1, p2)`` is either None (no single merge patch can
say it: an object follows a null or a scalar, so the batcher sends both in
turn), or a patch whose application to any document gives what applying
``p1`` and then ``p2`` gives (RFC 7386). The oracle is an independent RFC 7386
apply function.
"""

from __future__ import annotations

import copy
import functools
from typing import Any

from hypothesis import assume, example, given, settings
from hypothesis import strategies as st

from contract.resources import Obj
from syncer.writer import compose
from tests.unit.oracles import apply_merge_patch, same_json

FAST = settings(max_examples=80, deadline=None, database=None)


KEYS = st.sampled_from(["a", "b", "c"])
LEAVES = st.sampled_from(["x", "y", 1, True])


@functools.cache
def values(nulls: bool, depth: int = 2) -> st.SearchStrategy[Any]:
    leaves = LEAVES | st.none() if nulls else LEAVES
    flat = leaves | st.lists(LEAVES, max_size=2)
    if depth == 0:
        return flat
    return flat | st.dictionaries(KEYS, values(nulls, depth - 1), max_size=3)


DOCUMENTS = st.dictionaries(KEYS, values(False), max_size=3)
PATCHES = st.dictionaries(KEYS, values(True), max_size=3)


def check(doc: Obj, first: Obj, second: Obj) -> None:
    before = copy.deepcopy((doc, first, second))
    composed = compose(first, second)
    assert (doc, first, second) == before, "compose mutated its inputs"
    if composed is None:
        assert not replaces_no_non_object_with_an_object(first, second), (
            "compose refused a pair that one merge patch can express"
        )
        return
    sequential = apply_merge_patch(apply_merge_patch(doc, first), second)
    assert same_json(apply_merge_patch(doc, composed), sequential), composed


# --- examples ---------------------------------------------------------------------------------


def test_later_values_win() -> None:
    assert compose({"a": 1, "b": 2}, {"b": 3, "c": 4}) == {"a": 1, "b": 3, "c": 4}


def test_nested_objects_merge() -> None:
    first = {"status": {"phase": "Pending", "conditions": [{"type": "A"}]}}
    second = {"status": {"phase": "Running", "podIP": "10.0.0.1"}}
    assert compose(first, second) == {
        "status": {"phase": "Running", "conditions": [{"type": "A"}], "podIP": "10.0.0.1"}
    }


def test_nulls_in_the_later_patch_win() -> None:
    assert compose({"a": 1}, {"a": None}) == {"a": None}
    assert compose({"s": {"x": 1, "y": 2}}, {"s": {"x": None}}) == {"s": {"x": None, "y": 2}}
    assert compose({"s": {"x": 1}}, {"s": None}) == {"s": None}
    doc = {"a": 5, "s": {"x": 0, "y": 0}}
    check(doc, {"a": 1, "s": {"x": 1, "y": 2}}, {"a": None, "s": {"x": None}})


def test_a_later_value_replaces_an_earlier_null() -> None:
    assert compose({"a": None}, {"a": 1}) == {"a": 1}
    check({"a": 0}, {"a": None}, {"a": 1})


def test_lists_are_replaced_whole() -> None:
    assert compose({"l": [1, 2]}, {"l": [3]}) == {"l": [3]}


def test_empty_patches() -> None:
    assert compose({}, {}) == {}
    assert compose({"a": {"b": 1}}, {}) == {"a": {"b": 1}}
    assert compose({}, {"a": {"b": None}}) == {"a": {"b": None}}


def test_an_object_after_a_null_cannot_be_composed() -> None:
    """p1 removes ``s``, p2 sets ``s`` to ``{"y": 1}``: afterwards ``s`` is exactly that,
    which one merge patch cannot express (it would merge into the old ``s``)."""
    assert compose({"s": None}, {"s": {"y": 1}}) is None
    assert compose({"t": {"s": None}}, {"t": {"s": {"y": 1}}}) is None


def test_an_object_after_a_scalar_cannot_be_composed() -> None:
    assert compose({"s": "flat"}, {"s": {"y": 1}}) is None


# --- properties -------------------------------------------------------------------------------


@FAST
@given(DOCUMENTS, PATCHES, PATCHES)
@example({"s": {"x": 1}}, {"s": None}, {"s": {"y": 1}})
def test_compose_equals_applying_both(doc: Obj, first: Obj, second: Obj) -> None:
    check(doc, first, second)


def replaces_no_non_object_with_an_object(first: Obj, second: Obj) -> bool:
    """True unless ``second`` puts an object where ``first`` put a null or a non-object
    (the case a single merge patch cannot always express, see the tests above)."""
    for key, value in second.items():
        if isinstance(value, dict) and key in first:
            earlier = first[key]
            if not isinstance(earlier, dict):
                return False
            if not replaces_no_non_object_with_an_object(earlier, value):
                return False
    return True


@FAST
@given(DOCUMENTS, PATCHES, PATCHES)
def test_compose_equals_applying_both_when_no_object_follows_a_non_object(
    doc: Obj, first: Obj, second: Obj
) -> None:
    """The same property outside that case (so other defects are not masked by it)."""
    assume(replaces_no_non_object_with_an_object(first, second))
    check(doc, first, second)
