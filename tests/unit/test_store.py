"""Unit tests of :mod:`syncer.store`: objects by key, indexes, list replacement.

The central property: after any sequence of upserts, deletes, replaces and
indexer registrations, every index equals the one recomputed from scratch
from the stored objects, with no empty value sets left behind.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from contract.resources import Obj
from syncer.store import NAMESPACE_INDEX, Change, Store, object_key, strip

FAST = settings(max_examples=80, deadline=None, database=None)


def make(
    name: str,
    namespace: str | None = "default",
    rv: str = "1",
    labels: dict[str, str] | None = None,
    **extra: Any,
) -> Obj:
    meta: Obj = {"name": name, "resourceVersion": rv}
    if namespace is not None:
        meta["namespace"] = namespace
    if labels is not None:
        meta["labels"] = labels
    return {"metadata": meta, **extra}


def by_app(obj: Obj) -> Iterable[str]:
    """A custom index: the value of the ``app`` label (none without it)."""
    app = (obj["metadata"].get("labels") or {}).get("app")
    return (app,) if app else ()


def by_every_label(obj: Obj) -> Iterable[str]:
    """A multi-valued index: every ``key=value`` label."""
    return [f"{k}={v}" for k, v in (obj["metadata"].get("labels") or {}).items()]


def raw_index(store: Store, name: str) -> dict[str, set[str]]:
    """The index as stored (private on purpose: stale or empty entries must not exist)."""
    return {value: set(keys) for value, keys in store._indexes[name].items()}


def recomputed(store: Store, func: Any) -> dict[str, set[str]]:
    expected: dict[str, set[str]] = {}
    for key in store.list_keys():
        obj = store.get(key)
        assert obj is not None
        for value in func(obj):
            expected.setdefault(value, set()).add(key)
    return expected


def keys_of(objs: Iterable[Obj]) -> set[str]:
    return {object_key(o) for o in objs}


# --- object_key and strip ----------------------------------------------------------


@pytest.mark.parametrize(
    ("obj", "key"),
    [
        (make("web", "team-a"), "team-a/web"),
        (make("node-1", None), "node-1"),
        ({"metadata": {"name": "pv", "namespace": ""}}, "pv"),
        ({"metadata": {"name": "pv", "namespace": None}}, "pv"),
        ({"metadata": {}}, ""),
        ({}, ""),
    ],
)
def test_object_key(obj: Obj, key: str) -> None:
    assert object_key(obj) == key


def test_strip_drops_managed_fields_only() -> None:
    obj = make("web", labels={"app": "web"}, data={"k": "v"})
    obj["metadata"]["managedFields"] = [{"manager": "kubectl", "operation": "Apply"}]
    expected = copy.deepcopy(obj)
    del expected["metadata"]["managedFields"]

    result = strip(obj)

    assert result is obj
    assert result == expected


@pytest.mark.parametrize("obj", [{}, {"metadata": {}}, {"metadata": None}, make("web")])
def test_strip_without_managed_fields_is_a_no_op(obj: Obj) -> None:
    before = copy.deepcopy(obj)
    assert strip(obj) == before


# --- upsert, get, delete -------------------------------------------------------------


def test_upsert_get_delete() -> None:
    store = Store()
    first = make("web", "team-a", rv="1")
    second = make("web", "team-a", rv="2")
    other = make("db", "team-a")

    assert store.upsert(first) is None
    assert store.upsert(other) is None
    assert store.get("team-a/web") is first
    assert store.upsert(second) is first
    assert store.get("team-a/web") is second
    assert len(store) == 2
    assert sorted(store.list_keys()) == ["team-a/db", "team-a/web"]
    assert sorted(object_key(o) for o in store) == ["team-a/db", "team-a/web"]

    assert store.delete("team-a/web") is second
    assert store.get("team-a/web") is None
    assert store.delete("team-a/web") is None
    assert store.delete("never/existed") is None
    assert len(store) == 1
    assert store.list_keys() == ["team-a/db"]


def test_cluster_scoped_objects_are_keyed_by_name() -> None:
    store = Store()
    node = make("node-1", None)
    store.upsert(node)
    assert store.get("node-1") is node
    assert store.get("/node-1") is None
    assert store.by_index(NAMESPACE_INDEX, "") == []
    assert raw_index(store, NAMESPACE_INDEX) == {}


def test_iteration_survives_mutation_of_the_store() -> None:
    store = Store()
    for name in ("a", "b", "c"):
        store.upsert(make(name))
    for obj in store:
        store.delete(object_key(obj))
    assert len(store) == 0


# --- the namespace index ---------------------------------------------------------------


def test_namespace_index() -> None:
    store = Store()
    a1, a2, b1 = make("one", "a"), make("two", "a"), make("one", "b")
    for obj in (a1, a2, b1, make("node", None)):
        store.upsert(obj)

    assert keys_of(store.by_index(NAMESPACE_INDEX, "a")) == {"a/one", "a/two"}
    assert sorted(store.index_keys(NAMESPACE_INDEX, "b")) == ["b/one"]
    assert store.by_index(NAMESPACE_INDEX, "missing") == []
    assert store.index_keys(NAMESPACE_INDEX, "missing") == []

    store.delete("b/one")
    assert store.by_index(NAMESPACE_INDEX, "b") == []
    assert "b" not in raw_index(store, NAMESPACE_INDEX)


def test_by_index_of_unknown_index_raises() -> None:
    with pytest.raises(KeyError):
        Store().by_index("no-such-index", "x")


# --- custom indexers -------------------------------------------------------------------


def test_indexer_added_before_objects() -> None:
    store = Store()
    store.add_indexer("app", by_app)
    store.upsert(make("web-1", labels={"app": "web"}))
    store.upsert(make("web-2", labels={"app": "web"}))
    store.upsert(make("db-1", labels={"app": "db"}))
    store.upsert(make("bare"))

    assert keys_of(store.by_index("app", "web")) == {"default/web-1", "default/web-2"}
    assert keys_of(store.by_index("app", "db")) == {"default/db-1"}
    assert raw_index(store, "app") == {
        "web": {"default/web-1", "default/web-2"},
        "db": {"default/db-1"},
    }


def test_indexer_added_after_objects_is_built_from_them() -> None:
    store = Store()
    store.upsert(make("web-1", labels={"app": "web"}))
    store.upsert(make("db-1", labels={"app": "db"}))
    store.upsert(make("bare"))

    store.add_indexer("app", by_app)

    assert raw_index(store, "app") == {"web": {"default/web-1"}, "db": {"default/db-1"}}
    store.upsert(make("web-2", labels={"app": "web"}))
    assert keys_of(store.by_index("app", "web")) == {"default/web-1", "default/web-2"}


def test_index_follows_a_changed_value_and_drops_empty_values() -> None:
    store = Store()
    store.add_indexer("app", by_app)
    store.upsert(make("x", labels={"app": "old"}, rv="1"))
    store.upsert(make("y", labels={"app": "old"}, rv="1"))

    store.upsert(make("x", labels={"app": "new"}, rv="2"))
    assert keys_of(store.by_index("app", "old")) == {"default/y"}
    assert keys_of(store.by_index("app", "new")) == {"default/x"}

    store.upsert(make("y", labels={}, rv="2"))
    assert store.by_index("app", "old") == []
    assert raw_index(store, "app") == {"new": {"default/x"}}


def test_index_forgets_deleted_objects() -> None:
    store = Store()
    store.add_indexer("labels", by_every_label)
    store.upsert(make("x", labels={"a": "1", "b": "2"}))
    store.upsert(make("y", labels={"a": "1"}))

    store.delete("default/x")
    assert raw_index(store, "labels") == {"a=1": {"default/y"}}
    store.delete("default/y")
    assert raw_index(store, "labels") == {}


def test_index_returns_the_current_objects() -> None:
    store = Store()
    store.add_indexer("app", by_app)
    store.upsert(make("x", labels={"app": "web"}, rv="1"))
    newer = make("x", labels={"app": "web"}, rv="2")
    store.upsert(newer)
    assert store.by_index("app", "web") == [newer]
    assert store.by_index("app", "web")[0] is newer


def test_duplicate_index_values_count_once() -> None:
    store = Store()
    store.add_indexer("dup", lambda obj: ["v", "v"])
    store.upsert(make("x"))
    assert store.index_keys("dup", "v") == ["default/x"]
    store.delete("default/x")
    assert raw_index(store, "dup") == {}


# --- replace ---------------------------------------------------------------------------


def test_replace_reports_exactly_adds_updates_and_deletes() -> None:
    store = Store()
    store.add_indexer("app", by_app)
    kept = make("kept", rv="5", labels={"app": "a"})
    updated_old = make("updated", rv="5", labels={"app": "a"})
    gone = make("gone", rv="5", labels={"app": "gone"})
    for obj in (kept, updated_old, gone):
        store.upsert(obj)

    kept_relisted = make("kept", rv="5", labels={"app": "a"})
    updated_new = make("updated", rv="6", labels={"app": "b"})
    added = make("added", "other", rv="1")

    changes = store.replace([kept_relisted, updated_new, added])

    assert sorted(changes, key=lambda c: c.key) == [
        Change("default/gone", gone, None),
        Change("default/updated", updated_old, updated_new),
        Change("other/added", None, added),
    ]
    assert sorted(store.list_keys()) == ["default/kept", "default/updated", "other/added"]
    assert store.get("default/updated") is updated_new
    assert raw_index(store, "app") == {"a": {"default/kept"}, "b": {"default/updated"}}
    assert raw_index(store, NAMESPACE_INDEX) == {
        "default": {"default/kept", "default/updated"},
        "other": {"other/added"},
    }


def test_replace_with_the_same_list_changes_nothing() -> None:
    store = Store()
    objs = [make("a", rv="1"), make("b", rv="7"), make("n", None, rv="3")]
    assert [c.key for c in store.replace(objs)] == ["default/a", "default/b", "n"]
    assert store.replace(copy.deepcopy(objs)) == []
    assert len(store) == 3


def test_replace_keeps_the_cached_object_when_the_version_is_unchanged() -> None:
    store = Store()
    cached = make("a", rv="1", data={"k": "old"})
    store.upsert(cached)
    assert store.replace([make("a", rv="1", data={"k": "new"})]) == []
    assert store.get("default/a") is cached


def test_replace_with_an_empty_list_deletes_everything() -> None:
    store = Store()
    store.add_indexer("app", by_app)
    a, b = make("a", labels={"app": "x"}), make("b", "other")
    store.upsert(a)
    store.upsert(b)
    changes = store.replace([])
    assert sorted(changes, key=lambda c: c.key) == [
        Change("default/a", a, None),
        Change("other/b", b, None),
    ]
    assert len(store) == 0
    assert raw_index(store, "app") == {}
    assert raw_index(store, NAMESPACE_INDEX) == {}


# --- random sequences: indexes always equal a recomputation ---------------------------------

NAMES = st.sampled_from(["a", "b", "c", "d"])
NAMESPACES = st.sampled_from(["ns1", "ns2", None])
LABELS = st.dictionaries(st.sampled_from(["app", "tier"]), st.sampled_from(["x", "y", "z"]))
VERSIONS = st.sampled_from(["1", "2", "3"])


@dataclass(frozen=True)
class Upsert:
    obj: Obj


@dataclass(frozen=True)
class Delete:
    key: str


@dataclass(frozen=True)
class Replace:
    objs: tuple[Obj, ...]


@dataclass(frozen=True)
class AddIndexer:
    name: str


OBJECTS = st.builds(make, NAMES, NAMESPACES, VERSIONS, LABELS)
KEYS = st.builds(lambda n, ns: f"{ns}/{n}" if ns else n, NAMES, NAMESPACES)
OPERATIONS = st.lists(
    st.one_of(
        st.builds(Upsert, OBJECTS),
        st.builds(Delete, KEYS),
        st.builds(Replace, st.lists(OBJECTS, max_size=5).map(tuple)),
        st.builds(AddIndexer, st.sampled_from(["app", "labels"])),
    ),
    max_size=25,
)
INDEXERS = {"app": by_app, "labels": by_every_label}


def assert_indexes_consistent(store: Store, funcs: dict[str, Any]) -> None:
    for name, func in funcs.items():
        assert raw_index(store, name) == recomputed(store, func), name
        for value, keys in recomputed(store, func).items():
            assert sorted(store.index_keys(name, value)) == sorted(keys)
            assert keys_of(store.by_index(name, value)) == keys


@FAST
@given(OPERATIONS)
def test_indexes_equal_a_recomputation_after_any_sequence(operations: list[Any]) -> None:
    store = Store()
    funcs: dict[str, Any] = {NAMESPACE_INDEX: lambda obj: [obj["metadata"]["namespace"]]
                             if obj["metadata"].get("namespace") else []}
    model: dict[str, Obj] = {}
    for op in operations:
        match op:
            case Upsert(obj=obj):
                assert store.upsert(obj) is model.get(object_key(obj))
                model[object_key(obj)] = obj
            case Delete(key=key):
                assert store.delete(key) is model.pop(key, None)
            case Replace(objs=objs):
                last = {object_key(o): o for o in objs}  # a LIST has unique keys
                changes = store.replace(list(last.values()))
                changed = {c.key for c in changes}
                expected_changed = {
                    k for k, o in last.items()
                    if k not in model or model[k]["metadata"]["resourceVersion"]
                    != o["metadata"]["resourceVersion"]
                } | (model.keys() - last.keys())
                assert changed == expected_changed
                assert len(changes) == len(changed)
                for change in changes:
                    assert change.old is model.get(change.key)
                    assert change.new is last.get(change.key)
                for key, obj in last.items():
                    if key in changed:
                        model[key] = obj
                for key in model.keys() - last.keys():
                    del model[key]
            case AddIndexer(name=name):
                store.add_indexer(name, INDEXERS[name])
                funcs[name] = INDEXERS[name]
        assert {k: store.get(k) for k in store.list_keys()} == model
        assert_indexes_consistent(store, funcs)
