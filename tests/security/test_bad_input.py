"""The bad-input corpus against one virtual cluster and one syncer (see ``corpus.py``).

Why one cluster for the whole corpus: the point is that hostile input does not
hurt *other* objects or the syncer itself, which only shows when they share
one syncer; and a cluster per entry would take hours on this machine. So all
entries are written at once (stage by stage), every entry's outcome is
awaited together (one LIST per kind and side per poll), and each entry is
reported as its own subtest. Then the properties of the whole:

- the syncer process never died or restarted (same pid, still running);
- its queues drain, and once idle it makes no writes (no hot loop);
- a canary pod created after the corpus syncs promptly;
- nothing reached a host namespace other than this virtual cluster's, and no
  cluster-scoped host object but the expected PriorityClasses;
- no Warning names a host object or the host namespace.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest

from contract import naming
from contract import resources as r
from contract.resources import Obj
from syncer.kube.errors import ApiError, NotFound
from syncer.local.syncer_process import SyncerProcess
from tests.cluster.conftest import VC, Stack, sync_config
from tests.security import corpus as c
from tests.suite_size import pick
from tests.support import metric_samples, metric_total, syncer_idle, wait_until

KINDS: dict[str, r.Resource] = {res.kind: res for res in (
    r.PODS, r.SERVICES, r.ENDPOINTS, r.CONFIGMAPS, r.SECRETS, r.PVCS, r.INGRESSES,
    r.NETWORKPOLICIES, r.PRIORITYCLASSES)}
SELECTED = {"vcsync-corpus": "selected"}
CANARY_NS = "canary"
STAGE_TIMEOUT = pick(ci=240.0, full=600.0)
"""Seconds for every entry of one stage to reach its outcome (the machine is slow)."""
POLL = 2.0
QUIET_WINDOW = 10.0
"""Seconds of idleness in which the syncer must make no write (a hot loop would)."""
MAX_QUIET_RETRIES = 40
"""Retries allowed in the quiet window: the corpus leaves about ten keys failing for good
(refused input), each backing off exponentially from 5 ms (a hot loop would retry hundreds)."""
CANARY_DEADLINE = 30.0
_MISSING = object()


@pytest.fixture
def config() -> Obj:
    """Every kind the corpus covers, StorageClasses shown by label."""
    on = {"enabled": True}
    return sync_config(
        {"ingresses": on, "networkPolicies": on, "priorityClasses": on},
        {"storageClasses": {"enabled": True, "selector": {"labels": SELECTED}}})


# -- what the clusters look like ---------------------------------------------------------


@dataclass
class World:
    """One snapshot of both clusters: virtual objects by (namespace, name), host ones by name."""

    virtual: dict[str, dict[tuple[str, str], Obj]] = field(default_factory=dict)
    host: dict[str, dict[str, Obj]] = field(default_factory=dict)
    events: list[Obj] = field(default_factory=list)


async def snapshot(stack: Stack, kinds: Iterable[str]) -> World:
    world = World()
    for kind in sorted(set(kinds)):
        res = KINDS[kind]
        virtual, _ = await stack.virtual.list(res)
        host, _ = await stack.host.list(res, stack.host_namespace if res.namespaced else None)
        world.virtual[kind] = {_vkey(o): o for o in virtual}
        world.host[kind] = {o["metadata"]["name"]: o for o in host}
    world.events, _ = await stack.virtual.list(r.EVENTS)
    return world


def _vkey(obj: Obj) -> tuple[str, str]:
    meta = obj["metadata"]
    return meta.get("namespace", ""), meta["name"]


# -- checking outcomes ---------------------------------------------------------------


@dataclass
class Run:
    """What applying the corpus left behind: API errors per case, uids of created objects."""

    stack: Stack
    errors: dict[str, list[ApiError]] = field(default_factory=dict)
    uids: set[str] = field(default_factory=set)


def _namespace(kind: str, namespace: str | None) -> str:
    return "" if not KINDS[kind].namespaced else namespace or c.NS


def _host_name(run: Run, kind: str, name: str, namespace: str) -> str:
    if not KINDS[kind].namespaced:
        return naming.host_cluster_scoped_name(name, run.stack.host_namespace, VC)
    return naming.host_name(name, namespace, VC)


def _at(obj: Any, path: str) -> Any:
    """The value at a dotted path (numbers index lists), or ``_MISSING``."""
    for part in path.split("."):
        if isinstance(obj, dict) and part in obj:
            obj = obj[part]
        elif isinstance(obj, list) and part.lstrip("-").isdigit() and -len(obj) <= int(
                part) < len(obj):
            obj = obj[int(part)]
        else:
            return _MISSING
    return obj


def _mismatch(what: str, value: Any, expected: Any, other: Any) -> str | None:
    """Why ``value`` does not match ``expected`` (``other``: the other side's value)."""
    match expected:
        case c.ABSENT if value is _MISSING:
            return None
        case c.ABSENT:
            return f"{what} should be absent, is {_short(value)}"
        case c.SAME:
            ok = value is not _MISSING and value == other
            return None if ok else f"{what} is {_short(value)}, other side {_short(other)}"
        case c.Length(n) | c.AtLeast(n):
            size = len(value) if isinstance(value, (list, str)) else -1
            ok = size == n if isinstance(expected, c.Length) else size >= n
            return None if ok else f"{what} has {size} items, expected {expected}"
        case c.Includes(item):
            ok = isinstance(value, list) and item in value
            return None if ok else f"{what} lacks {_short(item)}"
        case _:
            return None if value == expected else (
                f"{what} is {_short(value)}, expected {_short(expected)}")


def _short(value: Any) -> str:
    text = "<missing>" if value is _MISSING else repr(value)
    return text if len(text) <= 160 else f"{text[:150]}... ({len(text)} chars)"


def _synced(run: Run, world: World, outcome: c.Synced) -> str | None:
    namespace = _namespace(outcome.kind, outcome.namespace)
    virtual = world.virtual[outcome.kind].get((namespace, outcome.name))
    if virtual is None:
        return f"virtual {outcome.kind} {outcome.name} does not exist"
    host_name = _host_name(run, outcome.kind, outcome.name, namespace)
    host = world.host[outcome.kind].get(host_name)
    if host is None:
        return f"no host copy {host_name} of {outcome.kind} {outcome.name}"
    problems: list[str | None] = list(_identity_problems(virtual, host, outcome.kind, namespace))
    if outcome.host_name_length is not None and len(host_name) != outcome.host_name_length:
        problems.append(f"host name has {len(host_name)} characters")
    vmeta, hmeta = virtual["metadata"], host["metadata"]
    for section, expected in (("labels", outcome.labels), ("annotations", outcome.annotations)):
        for key, want in expected.items():
            problems.append(_mismatch(f"host {section}[{key}]", (hmeta.get(section) or {}).get(
                key, _MISSING), want, (vmeta.get(section) or {}).get(key, _MISSING)))
    for path, want in outcome.fields.items():
        problems.append(_mismatch(f"host {path}", _at(host, path), want, _at(virtual, path)))
    for path, want in outcome.virtual_fields.items():
        problems.append(_mismatch(f"virtual {path}", _at(virtual, path), want, _at(host, path)))
    found = [p for p in problems if p]
    return "; ".join(found) if found else None


def _identity_problems(virtual: Obj, host: Obj, kind: str, namespace: str) -> Iterator[str]:
    """NAMING.md: ownership labels and the virtual identity on every host copy."""
    labels = host["metadata"].get("labels") or {}
    if labels.get(naming.LABEL_MANAGED_BY) != VC:
        yield f"host managed-by label is {labels.get(naming.LABEL_MANAGED_BY)!r}"
    if namespace and labels.get(naming.LABEL_NAMESPACE) != namespace:
        yield f"host namespace label is {labels.get(naming.LABEL_NAMESPACE)!r}"
    identity = naming.identity_of(host)
    want = naming.VirtualIdentity(virtual["metadata"]["name"], namespace or None,
                                  virtual["metadata"]["uid"], kind)
    if identity != want:
        yield f"host identity is {identity}, expected {want}"


def _warned(world: World, outcome: c.Warned) -> str | None:
    namespace = _namespace(outcome.kind, outcome.namespace)
    about = [e for e in world.events if e.get("type") == "Warning"
             and e["involvedObject"].get("kind") == outcome.kind
             and e["involvedObject"].get("name") == outcome.name
             and (e["involvedObject"].get("namespace") or "") == namespace]
    if any(e.get("reason") == outcome.reason and outcome.message in e.get("message", "")
           for e in about):
        return None
    seen = [(e.get("reason"), _short(e.get("message", ""))) for e in about]
    return f"no Warning {outcome.reason} with {outcome.message!r}; warnings seen: {seen}"


def _absent(run: Run, world: World, outcome: c.Absent) -> str | None:
    namespace = _namespace(outcome.kind, outcome.namespace)
    host_name = _host_name(run, outcome.kind, outcome.name, namespace)
    if host_name in world.host[outcome.kind]:
        return f"host copy {host_name} exists"
    virtual = world.virtual[outcome.kind].get((namespace, outcome.name))
    if outcome.virtual is False and virtual is not None:
        return "the virtual object still exists"
    if outcome.virtual and virtual is None:
        return "the virtual object is gone"
    if outcome.terminating and not (virtual or {}).get("metadata", {}).get("deletionTimestamp"):
        return "the virtual object is not being deleted"
    return None


def _rejected(run: Run, case_id: str, outcome: c.Rejected) -> str | None:
    errors = run.errors.get(case_id, [])
    if any(e.status == outcome.status and outcome.message in e.message for e in errors):
        return None
    return f"no {outcome.status} answer mentioning {outcome.message!r}; errors: {errors}"


def check(run: Run, world: World, case_id: str, outcomes: Iterable[c.Outcome]) -> str | None:
    """The first problem of one stage's outcomes in ``world``; None when all hold."""
    errors = run.errors.get(case_id, [])
    expects_rejection = False
    for outcome in outcomes:
        match outcome:
            case c.Synced():
                problem = _synced(run, world, outcome)
            case c.Warned():
                problem = _warned(world, outcome)
            case c.Absent():
                problem = _absent(run, world, outcome)
            case c.Rejected():
                expects_rejection = True
                problem = _rejected(run, case_id, outcome)
        if problem:
            failed = f" (API errors: {errors})" if errors and not expects_rejection else ""
            return f"{type(outcome).__name__} {getattr(outcome, 'name', '')}: {problem}{failed}"
    if errors and not expects_rejection:
        return f"unexpected API errors: {errors}"
    return None


def _kinds(outcomes: Iterable[c.Outcome]) -> set[str]:
    return {o.kind for o in outcomes if isinstance(o, c.Synced | c.Absent)}


# -- applying the corpus ------------------------------------------------------------


async def _create(run: Run, case_id: str, obj: Obj) -> None:
    res = KINDS[obj["kind"]]
    namespace = obj["metadata"].get("namespace") if res.namespaced else None
    try:
        created = await run.stack.virtual.create(res, obj, namespace)
    except ApiError as exc:
        run.errors.setdefault(case_id, []).append(exc)
        return
    run.uids.add(created["metadata"]["uid"])


async def _delete(run: Run, kind: str, name: str, namespace: str) -> None:
    res = KINDS[kind]
    await run.stack.virtual.delete(res, name, namespace if res.namespaced else None,
                                   grace_period=0)


async def _gone(run: Run, kind: str, name: str, namespace: str) -> bool:
    res = KINDS[kind]
    try:
        await run.stack.virtual.get(res, name, namespace if res.namespaced else None)
    except NotFound:
        return True
    return False


async def _churn(run: Run, case_id: str, step: c.Churn) -> None:
    """Create and delete as fast as the API allows; a PVC's protection finalizer is
    removed by the virtual controller-manager, so each round waits for the object to go."""
    meta = step.obj["metadata"]
    kind, name, namespace = step.obj["kind"], meta["name"], meta.get("namespace", "")
    for _ in range(step.rounds):
        await _create(run, case_id, step.obj)
        await _delete(run, kind, name, namespace)
        await wait_until(lambda: _gone(run, kind, name, namespace),
                         f"churned {kind} {name} to be deleted", timeout=60)
    if step.end_created:
        await _create(run, case_id, step.obj)


async def _run_step(run: Run, case_id: str, step: c.Step) -> None:
    match step:
        case c.Apply(obj=obj):
            await _create(run, case_id, obj)
        case c.HostApply(obj=obj):
            res = KINDS[obj["kind"]]
            await run.stack.host.create(res, obj, run.stack.host_namespace)
        case c.Remove(kind=kind, name=name, namespace=namespace):
            await _delete(run, kind, name, namespace)
        case c.Unfinalize(kind=kind, name=name, namespace=namespace):
            res = KINDS[kind]
            await run.stack.virtual.patch(res, name, {"metadata": {"finalizers": None}},
                                          namespace if res.namespaced else None)
        case c.Churn():
            await _churn(run, case_id, step)


async def apply_stage(run: Run, cases: list[c.Case], index: int, parallel: int = 8) -> None:
    """Stage ``index`` of every case, ``parallel`` cases at a time, steps in order."""
    gate = asyncio.Semaphore(parallel)

    async def one(case: c.Case) -> None:
        async with gate:
            for step in case.stages[index].steps:
                await _run_step(run, case.id, step)

    await asyncio.gather(*(one(case) for case in cases if len(case.stages) > index))


async def await_stage(run: Run, cases: list[c.Case], index: int,
                      timeout: float) -> dict[str, str]:
    """Poll until every case's stage ``index`` outcomes hold; the problems left at the end."""
    pending = {case.id: case.stages[index].expect for case in cases if len(case.stages) > index}
    problems: dict[str, str] = {}
    deadline = time.monotonic() + timeout
    while pending:
        world = await snapshot(run.stack, (k for o in pending.values() for k in _kinds(o)))
        problems = {}
        for case_id, outcomes in pending.items():
            problem = check(run, world, case_id, outcomes)
            if problem:
                problems[case_id] = problem
        pending = {case_id: pending[case_id] for case_id in problems}
        if not pending or time.monotonic() > deadline:
            break
        await asyncio.sleep(POLL)
    return problems


# -- set-up -----------------------------------------------------------------------------


async def _prepare_namespaces(stack: Stack, names: Iterable[str]) -> None:
    """The corpus' namespaces, each with its default ServiceAccount (pods need it)."""
    for name in names:
        labels = dict(c.NAMESPACE_LABELS.get(name, {}))
        await stack.virtual.create(r.NAMESPACES, {"metadata": {"name": name, "labels": labels}})
    for name in names:
        await wait_until(_default_account(stack, name), f"the default ServiceAccount of {name}",
                         timeout=60)


def _default_account(stack: Stack, namespace: str) -> Callable[[], Awaitable[Obj | None]]:
    return lambda: stack.virtual_get(r.SERVICEACCOUNTS, "default", namespace)


async def _host_storage_class(stack: Stack) -> None:
    await stack.host.create(r.STORAGECLASSES, {
        "metadata": {"name": c.STORAGE_CLASS, "labels": SELECTED},
        "provisioner": "example.com/none", "volumeBindingMode": "WaitForFirstConsumer"})
    await wait_until(lambda: _exists(stack, r.STORAGECLASSES, c.STORAGE_CLASS),
                     "the selected StorageClass in the virtual cluster", timeout=60)


async def _exists(stack: Stack, res: r.Resource, name: str) -> bool:
    try:
        await stack.virtual.get(res, name)
    except NotFound:
        return False
    return True


async def _cleanup_cluster_scoped(run: Run) -> None:
    """The host cluster is shared by the session: leave no cluster-scoped object behind."""
    stack = run.stack
    classes, _ = await stack.virtual.list(r.PRIORITYCLASSES)
    for pc in classes:
        if not pc["metadata"]["name"].startswith("system-"):
            await stack.virtual.delete(r.PRIORITYCLASSES, pc["metadata"]["name"])
    await wait_until(lambda: _no_host_priority_classes(run),
                     "the corpus' host PriorityClasses to be removed", timeout=60)
    with contextlib.suppress(NotFound):
        await stack.host.delete(r.STORAGECLASSES, c.STORAGE_CLASS)


async def _no_host_priority_classes(run: Run) -> bool:
    items, _ = await run.stack.host.list(r.PRIORITYCLASSES)
    return not [p for p in items if _uid_of(p) in run.uids]


def _uid_of(host: Obj) -> str | None:
    annotations = host["metadata"].get("annotations") or {}
    uid = annotations.get(naming.ANNOTATION_OBJECT_UID)
    return str(uid) if uid else None


# -- global properties ----------------------------------------------------------------


def _syncer_alive(syncer: SyncerProcess, pid: int) -> None:
    assert syncer.exit_code() is None, f"the syncer exited: {syncer.logs(40)}"
    assert syncer.component is not None
    assert syncer.component.proc is not None
    assert syncer.component.proc.pid == pid, "the syncer was restarted"


_HOST_DRIVEN = ("'Event'", "'Node'")
"""Writes that follow the host by themselves: events (the scheduler retries pods it cannot
place) and node status (kwok's heartbeats, every ~10 minutes per node)."""


def _writes(url: str) -> dict[str, float]:
    """Successful writes so far by side/verb/kind, but those that follow the host."""
    return {k: v for k, v in metric_samples(url, "vcsync_writes_total").items()
            if not any(kind in k for kind in _HOST_DRIVEN)}


@dataclass(frozen=True)
class Quiet:
    """What an idle syncer did during :data:`QUIET_WINDOW` seconds."""

    writes: dict[str, float]
    """Writes by side/verb/kind (a hot loop writes; an idle syncer does not)."""
    retries: float
    """Rate-limited retries of failing keys (each backs off on its own: a handful)."""


async def _quiet(syncer: SyncerProcess) -> Quiet:
    await wait_until(lambda: syncer_idle(syncer.url), "the syncer's queues to drain",
                     timeout=120)
    writes, retries = _writes(syncer.url), metric_total(syncer.url, "workqueue_retries_total")
    await asyncio.sleep(QUIET_WINDOW)  # a window of time is the property measured here
    after = _writes(syncer.url)
    return Quiet({k: v - writes.get(k, 0) for k, v in after.items() if v != writes.get(k, 0)},
                 metric_total(syncer.url, "workqueue_retries_total") - retries)


async def _canary_seconds(stack: Stack) -> float:
    """Seconds from creating a plain pod after the corpus to its host copy."""
    await _prepare_namespaces(stack, [CANARY_NS])
    start = time.monotonic()
    await stack.virtual.create(r.PODS, c.pod("canary", CANARY_NS), CANARY_NS)
    await wait_until(lambda: stack.host_get(r.PODS, "canary", CANARY_NS),
                     "the canary pod on the host", timeout=120, interval=0.1)
    return time.monotonic() - start


async def _foreign_host_objects(run: Run) -> list[str]:
    """Host objects of ours anywhere but our host namespace (cluster-scoped: PriorityClasses
    named for our host namespace only)."""
    stack, found = run.stack, []
    for res in KINDS.values():
        items, _ = await stack.host.list(res)
        for obj in items:
            meta = obj["metadata"]
            identity = naming.identity_of(obj)
            if identity is None or identity.uid not in run.uids:
                continue
            if res.namespaced and meta.get("namespace") == stack.host_namespace:
                continue
            if not res.namespaced and meta["name"] == naming.host_cluster_scoped_name(
                    identity.name, stack.host_namespace, VC):
                continue
            found.append(f"{res.kind} {meta.get('namespace')}/{meta['name']}")
    return found


async def _leaky_warnings(stack: Stack) -> list[str]:
    events, _ = await stack.virtual.list(r.EVENTS)
    return [f"{e['involvedObject'].get('name')}: {e.get('message')}" for e in events
            if e.get("source", {}).get("component") == "vcsync"
            and (stack.host_namespace in e.get("message", "") or f"-x-{VC}" in e.get(
                "message", ""))]


# -- the test -----------------------------------------------------------------------------


async def test_bad_input_corpus(stack: Stack, subtests: pytest.Subtests) -> None:
    """Every corpus entry reaches its outcome on one shared syncer, which stays healthy."""
    cases = c.corpus()
    await _prepare_namespaces(stack, c.NAMESPACES)
    syncer = stack.syncer().start()
    assert syncer.component is not None
    assert syncer.component.proc is not None
    pid = syncer.component.proc.pid
    run = Run(stack)
    try:
        await _host_storage_class(stack)
        problems, timings = await _apply_all(run, cases)
        quiet = await _quiet(syncer)
        final = await _final_check(run, cases)
        _report("after the syncer went idle", final)
        for case in cases:
            with subtests.test(msg=case.id):
                assert problems.get(case.id) is None, problems[case.id]
                assert final.get(case.id) is None, final[case.id]
        with subtests.test(msg="syncer-alive"):
            _syncer_alive(syncer, pid)
        with subtests.test(msg="idle-without-writes"):
            assert not quiet.writes, f"writes while idle: {quiet.writes}"
            assert quiet.retries <= MAX_QUIET_RETRIES, f"{quiet.retries} retries while idle"
        with subtests.test(msg="canary"):
            seconds = await _canary_seconds(stack)
            rejected = sum(len(errors) for errors in run.errors.values())
            print(f"\ncorpus: {len(cases)} cases, {len(run.uids)} objects created, {rejected} "
                  f"refused by the virtual API server; stages took "
                  f"{[round(t) for t in timings]} s; idle: {quiet.retries:.0f} retries in "
                  f"{QUIET_WINDOW:.0f} s; canary synced in {seconds:.1f} s")
            assert seconds < CANARY_DEADLINE
        with subtests.test(msg="no-foreign-host-objects"):
            assert not await _foreign_host_objects(run)
        with subtests.test(msg="warnings-name-no-host-objects"):
            assert not await _leaky_warnings(stack)
        with subtests.test(msg="syncer-alive-at-end"):
            _syncer_alive(syncer, pid)
    finally:
        await _cleanup_cluster_scoped(run)


async def _apply_all(run: Run, cases: list[c.Case]) -> tuple[dict[str, str], list[float]]:
    """Every stage of every case, each awaited before the next: problems and stage times."""
    problems: dict[str, str] = {}
    timings: list[float] = []
    for index in range(max(len(case.stages) for case in cases)):
        started = time.monotonic()
        await apply_stage(run, cases, index)
        found = await await_stage(run, cases, index, STAGE_TIMEOUT)
        timings.append(time.monotonic() - started)
        _report(f"stage {index + 1}: {timings[-1]:.0f} s", found)
        problems.update(found)
    return problems, timings


def _report(title: str, problems: dict[str, str]) -> None:
    """One line per failing entry (the subtests repeat them with every log attached)."""
    lines = [f"  {case_id}: {problem}" for case_id, problem in sorted(problems.items())]
    print(f"\ncorpus {title}, {len(problems)} problems", *lines, sep="\n")


async def _final_check(run: Run, cases: list[c.Case]) -> dict[str, str]:
    """Each case's last stage once more, after the syncer went idle: an Absent that held
    only because the syncer had not got to the object yet fails here."""
    last = {case.id: case.stages[-1].expect for case in cases}
    world = await snapshot(run.stack, (k for o in last.values() for k in _kinds(o)))
    found = {case_id: check(run, world, case_id, outcomes) for case_id, outcomes in last.items()}
    return {case_id: problem for case_id, problem in found.items() if problem}
