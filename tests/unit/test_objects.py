"""Unit tests of :mod:`translators.objects`: host metadata and minimal merge patches.

Patches are checked by applying them with an independent RFC 7386
implementation (:func:`apply_merge_patch`, written from the RFC's pseudo
code) and comparing JSON documents *as JSON* (:func:`same_json`): ``true``
and ``1`` are different JSON values even though Python says ``True == 1``.
"""

from __future__ import annotations

import copy
import functools
from typing import Any

from hypothesis import example, given, settings
from hypothesis import strategies as st

from contract import naming
from contract.resources import Obj
from contract.translator import Context
from tests.unit.fakes import NoLookup
from tests.unit.oracles import apply_merge_patch, same_json
from translators.objects import (
    fields_patch,
    host_metadata,
    merge_patch,
    metadata_patch,
    update_patch,
)

FAST = settings(max_examples=60, deadline=None, database=None)



CTX = Context(vcluster="vc", host_namespace="vcluster-vc", lookup=NoLookup())


# --- the RFC 7386 apply function itself (so the oracle is trustworthy) -------------------


def test_apply_merge_patch_matches_the_rfc_examples() -> None:
    """The example table of RFC 7386, appendix A (rows without top-level non-objects)."""
    rows: list[tuple[Any, Any, Any]] = [
        ({"a": "b"}, {"a": "c"}, {"a": "c"}),
        ({"a": "b"}, {"b": "c"}, {"a": "b", "b": "c"}),
        ({"a": "b"}, {"a": None}, {}),
        ({"a": "b", "b": "c"}, {"a": None}, {"b": "c"}),
        ({"a": ["b"]}, {"a": "c"}, {"a": "c"}),
        ({"a": "c"}, {"a": ["b"]}, {"a": ["b"]}),
        ({"a": {"b": "c"}}, {"a": {"b": "d", "c": None}}, {"a": {"b": "d"}}),
        ({"a": [{"b": "c"}]}, {"a": [1]}, {"a": [1]}),
        ({"e": None}, {"a": 1}, {"e": None, "a": 1}),
        ([1, 2], {"a": "b", "c": None}, {"a": "b"}),
        ({}, {"a": {"bb": {"ccc": None}}}, {"a": {"bb": {}}}),
    ]
    for target, patch, result in rows:
        assert same_json(apply_merge_patch(target, patch), result), (target, patch)


# --- merge_patch --------------------------------------------------------------------------

KEYS = st.sampled_from(["a", "b", "c"])
# Few distinct values, so that current and desired often hold "equal-looking" ones.
LEAVES = st.sampled_from(["", "a", 0, 1, True, False])
UNAMBIGUOUS_LEAVES = st.sampled_from(["", "a", 0, 1])  # Python equality is JSON equality


@functools.cache
def values(leaves: st.SearchStrategy[Any], depth: int = 2) -> st.SearchStrategy[Any]:
    """JSON values over ``leaves``: leaves, short lists, objects nested ``depth`` deep."""
    flat = leaves | st.lists(leaves, max_size=2)
    if depth == 0:
        return flat
    return flat | st.dictionaries(KEYS, values(leaves, depth - 1), max_size=3)


@functools.cache
def documents(leaves: st.SearchStrategy[Any]) -> st.SearchStrategy[Obj]:
    return st.dictionaries(KEYS, values(leaves), max_size=3)


@st.composite
def edited(draw: st.DrawFn, doc: Obj, leaves: st.SearchStrategy[Any], depth: int = 2) -> Obj:
    """A null-free document derived from ``doc``: each key kept, dropped, replaced or
    (objects) edited recursively, plus new keys; close documents are the hard cases."""
    out: Obj = {}
    for key, value in doc.items():
        choice = draw(st.sampled_from(["keep", "drop", "replace", "edit"]))
        if choice == "drop":
            continue
        if choice == "edit" and isinstance(value, dict) and depth > 0:
            out[key] = draw(edited(value, leaves, depth - 1))
        elif choice == "keep" and value is not None and not isinstance(value, dict):
            out[key] = value
        else:
            out[key] = draw(values(leaves, depth))
    for key in draw(st.lists(KEYS, max_size=2)):
        out.setdefault(key, draw(values(leaves, depth)))
    return out


@st.composite
def pairs(draw: st.DrawFn, leaves: st.SearchStrategy[Any]) -> tuple[Obj, Obj]:
    """(current, desired): current may hold nulls (a stored document), desired may not."""
    current = draw(documents(leaves | st.none()))
    desired = draw(st.one_of(edited(current, leaves), documents(leaves)))
    return current, desired


DESIRED = documents(LEAVES)
PAIRS = pairs(LEAVES)
UNAMBIGUOUS_PAIRS = pairs(UNAMBIGUOUS_LEAVES)


def check_merge_patch(current: Obj, desired: Obj) -> None:
    before = (copy.deepcopy(current), copy.deepcopy(desired))
    patch = merge_patch(current, desired)
    assert (current, desired) == before, "merge_patch mutated its inputs"
    assert same_json(apply_merge_patch(current, patch), desired), patch
    assert (patch == {}) == same_json(current, desired), patch
    # minimal: only keys whose values differ (as JSON) are in the patch
    for key in patch:
        assert key not in current or key not in desired or not same_json(
            current[key], desired[key]
        ), key


@FAST
@given(PAIRS)
@example(({"a": 1}, {"a": True}))
@example(({"a": {"b": [0]}, "c": None}, {"a": {"b": [False]}}))
def test_merge_patch_turns_current_into_desired(pair: tuple[Obj, Obj]) -> None:
    check_merge_patch(*pair)


@FAST
@given(UNAMBIGUOUS_PAIRS)
def test_merge_patch_structure_without_bool_int_ambiguity(pair: tuple[Obj, Obj]) -> None:
    """The same property where Python equality is JSON equality (isolates structure bugs)."""
    check_merge_patch(*pair)


@FAST
@given(DESIRED)
def test_merge_patch_of_equal_documents_is_empty(doc: Obj) -> None:
    assert merge_patch(doc, copy.deepcopy(doc)) == {}


@FAST
@given(UNAMBIGUOUS_PAIRS)
def test_merge_patch_reapplied_is_empty(pair: tuple[Obj, Obj]) -> None:
    """Once the patch is applied, the next sync has nothing to write."""
    current, desired = pair
    patched = apply_merge_patch(current, merge_patch(current, desired))
    assert merge_patch(patched, desired) == {}


def test_merge_patch_distinguishes_bool_from_int() -> None:
    """``true`` and ``1`` are different JSON values: the host must be corrected."""
    assert merge_patch({"a": 1}, {"a": True}) == {"a": True}
    assert merge_patch({"a": False}, {"a": 0}) == {"a": 0}
    assert merge_patch({"a": {"b": [1]}}, {"a": {"b": [True]}}) == {"a": {"b": [True]}}


def test_merge_patch_examples() -> None:
    assert merge_patch({}, {}) == {}
    assert merge_patch({"a": 1}, {}) == {"a": None}
    assert merge_patch({}, {"a": {}}) == {"a": {}}
    assert merge_patch({"a": {"x": 1}}, {"a": {}}) == {"a": {"x": None}}
    assert merge_patch({"a": "s"}, {"a": {"x": 1}}) == {"a": {"x": 1}}
    assert merge_patch({"a": {"x": 1}}, {"a": "s"}) == {"a": "s"}
    assert merge_patch({"a": [1, 2]}, {"a": [2, 1]}) == {"a": [2, 1]}
    assert merge_patch({"a": None}, {"a": None}) == {}
    assert merge_patch({"a": {"b": {"c": 1, "d": 2}}}, {"a": {"b": {"c": 1, "d": 3}}}) == {
        "a": {"b": {"d": 3}}
    }


# --- fields_patch -------------------------------------------------------------------------


def test_fields_patch_only_touches_the_named_fields() -> None:
    current = {
        "metadata": {"name": "x", "resourceVersion": "9"},
        "data": {"a": "1", "b": "2"},
        "binaryData": {"bin": "AAA="},
        "status": {"phase": "Old"},
    }
    desired = {
        "metadata": {"name": "other"},
        "data": {"a": "1", "b": "3", "c": "4"},
        "status": {"phase": "New"},
        "immutable": True,
    }
    patch = fields_patch(current, desired, ["data", "binaryData", "immutable", "spec"])
    assert patch == {
        "data": {"b": "3", "c": "4"},
        "binaryData": None,
        "immutable": True,
    }
    assert fields_patch(current, desired, iter(["status"])) == {"status": {"phase": "New"}}
    assert fields_patch(current, desired, []) == {}
    assert fields_patch(current, current, ["data", "binaryData"]) == {}


@FAST
@given(UNAMBIGUOUS_PAIRS, st.lists(KEYS, unique=True))
def test_fields_patch_is_merge_patch_restricted(pair: tuple[Obj, Obj], names: list[str]) -> None:
    current, desired = pair
    patch = fields_patch(current, desired, names)
    assert set(patch) <= set(names)
    restricted_desired = {k: v for k, v in desired.items() if k in names}
    patched = apply_merge_patch(current, patch)
    assert same_json({k: v for k, v in patched.items() if k in names}, restricted_desired)
    assert same_json(
        {k: v for k, v in patched.items() if k not in names},
        {k: v for k, v in current.items() if k not in names},
    )


# --- metadata_patch and update_patch --------------------------------------------------------


def virtual_cm(**overrides: Any) -> Obj:
    meta: Obj = {
        "name": "app-cfg",
        "namespace": "team",
        "uid": "uid-1",
        "resourceVersion": "17",
        "labels": {"app": "web", "tier": "front"},
        "annotations": {"note": "hello", "team": "x"},
    }
    meta.update(overrides)
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta, "data": {"k": "v"}}


def desired_of(virtual: Obj) -> Obj:
    return {
        "metadata": host_metadata(virtual, CTX, "ConfigMap"),
        **{f: virtual[f] for f in ("data",) if f in virtual},
    }


def as_stored(desired: Obj, **host_annotations: str) -> Obj:
    """``desired`` as the host API server returns it, plus foreign annotations."""
    host = copy.deepcopy(desired)
    host["metadata"].update(
        {"uid": "host-uid", "resourceVersion": "100", "creationTimestamp": "2024-01-01T00:00:00Z"}
    )
    host["metadata"]["annotations"].update(host_annotations)
    host["kind"] = "ConfigMap"
    return host


def test_host_metadata() -> None:
    assert host_metadata(virtual_cm(), CTX, "ConfigMap") == {
        "name": "app-cfg-x-team-x-vc",
        "namespace": "vcluster-vc",
        "labels": {
            "app": "web",
            "tier": "front",
            naming.LABEL_MANAGED_BY: "vc",
            naming.LABEL_NAMESPACE: "team",
        },
        "annotations": {
            "note": "hello",
            "team": "x",
            naming.ANNOTATION_OBJECT_NAME: "app-cfg",
            naming.ANNOTATION_OBJECT_NAMESPACE: "team",
            naming.ANNOTATION_OBJECT_UID: "uid-1",
            naming.ANNOTATION_OBJECT_KIND: "ConfigMap",
            naming.ANNOTATION_MANAGED_ANNOTATIONS: "note,team",
        },
    }


def test_metadata_patch_keeps_foreign_host_annotations() -> None:
    old = desired_of(virtual_cm())
    host = as_stored(old, **{"host.io/scanned": "yes", "other-controller/x": "1"})
    new_virtual = virtual_cm(annotations={"note": "changed"}, labels={"app": "web"})

    patch = metadata_patch(host, desired_of(new_virtual))

    assert patch == {
        "metadata": {
            "labels": {"tier": None},
            "annotations": {
                "note": "changed",
                "team": None,
                naming.ANNOTATION_MANAGED_ANNOTATIONS: "note",
            },
        }
    }
    patched = apply_merge_patch(host, patch)
    assert patched["metadata"]["annotations"]["host.io/scanned"] == "yes"
    assert patched["metadata"]["annotations"]["other-controller/x"] == "1"


def test_metadata_patch_restores_our_annotations_and_labels() -> None:
    desired = desired_of(virtual_cm())
    host = as_stored(desired)
    host["metadata"]["annotations"][naming.ANNOTATION_OBJECT_UID] = "forged"
    host["metadata"]["annotations"][naming.PREFIX + "stale"] = "x"
    del host["metadata"]["labels"][naming.LABEL_MANAGED_BY]
    host["metadata"]["labels"]["app"] = "edited"

    assert metadata_patch(host, desired) == {
        "metadata": {
            "labels": {"app": "web", naming.LABEL_MANAGED_BY: "vc"},
            "annotations": {naming.ANNOTATION_OBJECT_UID: "uid-1", naming.PREFIX + "stale": None},
        }
    }


def test_metadata_patch_of_a_host_object_without_labels_or_annotations() -> None:
    desired = desired_of(virtual_cm())
    patch = metadata_patch({"metadata": {"name": "x"}}, desired)
    assert patch == {
        "metadata": {
            "labels": desired["metadata"]["labels"],
            "annotations": desired["metadata"]["annotations"],
        }
    }
    assert metadata_patch({}, desired) == patch


def test_update_patch_is_empty_when_the_host_matches() -> None:
    """Idle sync writes nothing, even with server-set fields and foreign annotations."""
    desired = desired_of(virtual_cm())
    host = as_stored(desired, **{"host.io/scanned": "yes"})
    host["metadata"]["labels"] = dict(reversed(list(host["metadata"]["labels"].items())))
    assert update_patch(host, desired, ["data", "binaryData", "immutable"]) == {}


def test_update_patch_combines_metadata_and_fields() -> None:
    desired = desired_of(virtual_cm())
    host = as_stored(desired)
    host["data"] = {"k": "edited", "extra": "1"}
    host["metadata"]["labels"]["app"] = "edited"
    assert update_patch(host, desired, ["data"]) == {
        "metadata": {"labels": {"app": "web"}},
        "data": {"k": "v", "extra": None},
    }


LABEL_MAPS = st.dictionaries(
    st.sampled_from(["app", "tier", naming.PREFIX + "x", "example.com/y"]),
    st.sampled_from(["a", "b"]),
    max_size=3,
)
ANNOTATION_MAPS = st.dictionaries(
    st.sampled_from(["note", "team", naming.PREFIX + "forged", "other/z"]),
    st.sampled_from(["1", "2"]),
    max_size=3,
)
DATA = st.dictionaries(st.sampled_from(["k", "l", "m"]), st.sampled_from(["v", "w"]), max_size=3)


@FAST
@given(LABEL_MAPS, ANNOTATION_MAPS, DATA, LABEL_MAPS, ANNOTATION_MAPS, DATA, ANNOTATION_MAPS)
def test_update_patch_converges_in_one_step(
    old_labels: dict[str, str],
    old_annotations: dict[str, str],
    old_data: dict[str, str],
    labels: dict[str, str],
    annotations: dict[str, str],
    data: dict[str, str],
    foreign: dict[str, str],
) -> None:
    """Host synced from an older virtual version, then touched by a host controller:
    one patch brings it to the desired state, keeps foreign annotations, and the
    next sync writes nothing."""
    foreign = {f"host.io/{k.replace('/', '-')}": v for k, v in foreign.items()}
    old = virtual_cm(labels=old_labels, annotations=old_annotations)
    old["data"] = old_data
    new = virtual_cm(labels=labels, annotations=annotations)
    new["data"] = data
    host = as_stored(desired_of(old), **foreign)
    desired = desired_of(new)

    patched = apply_merge_patch(host, update_patch(host, desired, ["data"]))

    assert patched["data"] == desired["data"]
    assert patched["metadata"]["labels"] == desired["metadata"]["labels"]
    assert patched["metadata"]["annotations"] == {**foreign, **desired["metadata"]["annotations"]}
    assert update_patch(patched, desired, ["data"]) == {}
