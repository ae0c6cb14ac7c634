"""Controllers: caches -> sharded queue -> translator -> writer, one per enabled kind.

The path of one event: an informer updates its store and tells the
controller the key; host events are mapped back to the *virtual* key through
the host object's identity annotations, so one work item covers both sides.
``reconcile`` never trusts event payloads: it reads both stores (level based,
like controller-runtime), asks the translator for actions, and executes them.

Invariants:
- no reconcile runs before every cache is synced (otherwise a virtual object
  seen before the host cache is complete would be created twice);
- a standby (not the Lease holder) reconciles nothing and writes nothing;
- an object labelled ``vcsync.dev/controlled-by`` on either side is left alone;
- a failing key backs off on its own and never blocks other keys; a rejection
  by the host (Invalid, Forbidden, ...) becomes a Warning event on the virtual
  object whose message names virtual objects only.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

import structlog

from contract import naming
from contract.resources import Obj, Resource
from contract.translator import (
    ALL_IN_NAMESPACE,
    Action,
    Context,
    Create,
    Delete,
    IssueTokens,
    Patch,
    Side,
    Translator,
    dependency_ref,
)
from syncer.informer import InformerSet
from syncer.kube.errors import (
    AlreadyExists,
    ApiError,
    BadRequest,
    Conflict,
    Forbidden,
    Invalid,
    KubeError,
)
from syncer.metrics import WorkqueueMetrics
from syncer.planning import ensure_actions, execute, plan
from syncer.store import NAMESPACE_INDEX, object_key
from syncer.workqueue import ShardedQueue
from syncer.writer import EventRecorder, StatusBatcher, Writer, WriteRefused

log = logging.getLogger(__name__)
OWNER_INDEX = "virtual-owner"
DEPENDENCY_INDEX = "host-dependencies"
# Transient failures (throttling, host down) become a Warning event only once
# they persist this many retries in a row: a blip is not the tenant's business.
_PERSISTENT_FAILURES = 5
_OWN_COPY_RETRY = 1.0
"""Seconds until a key whose copy we found already made (not yet cached) is looked at again."""
_REJECTIONS = (Invalid, Forbidden, BadRequest)
_EXPECTATION_RETRY = 0.1
_EXPECTATION_TIMEOUT = 10.0


class NameTaken(KubeError):
    """A referenced object's host name is held by an object that is not its copy."""


class CacheLookup:
    """The read-only view of the caches translators get (``contract.translator.Lookup``)."""

    def __init__(self, informers: InformerSet) -> None:
        self._informers = informers

    def get(self, side: Side, resource: Resource, key: str) -> Obj | None:
        return self._informers.store(side, resource).get(key)

    def by_index(self, side: Side, resource: Resource, index: str, value: str) -> list[Obj]:
        return self._informers.store(side, resource).by_index(index, value)

    def in_namespace(self, side: Side, resource: Resource, namespace: str) -> list[Obj]:
        return self._informers.store(side, resource).by_index(NAMESPACE_INDEX, namespace)


@dataclass(frozen=True)
class Wiring:
    """What every controller of one virtual cluster shares."""

    informers: InformerSet
    writer: Writer
    status: StatusBatcher
    events: EventRecorder
    ctx: Context
    gate: Callable[[], bool]
    """True while this process may write (the Lease holder, or the only replica)."""
    shards: int = 4
    workers_per_shard: int = 2
    queue_metrics: WorkqueueMetrics | None = None


class Controller:
    """Reconciles one translator's kind; :meth:`reconcile` is the queue's handler."""

    def __init__(self, translator: Translator, wiring: Wiring) -> None:
        self.translator = translator
        self.ctx = wiring.ctx
        self.queue = ShardedQueue(
            translator.kind, shards=wiring.shards, workers_per_shard=wiring.workers_per_shard,
            metrics=wiring.queue_metrics, expected=(KubeError,),
        )
        self.peers: Mapping[str, Controller] = {}
        self._writer = wiring.writer
        self._events = wiring.events
        self._gate = wiring.gate
        self._expected: dict[str, tuple[str, float]] = {}  # key -> (uid we created, give up at)
        informers = wiring.informers
        self._virtual = informers.store(Side.VIRTUAL, translator.resource)
        host_informer = informers.informer(
            Side.HOST, translator.host, translator.host_label_selector(self.ctx)
        )
        self._host = host_informer.store
        self._host.add_indexer(OWNER_INDEX, self._owner_keys)
        self._host.add_indexer(DEPENDENCY_INDEX, translator.host_dependencies)
        self._wire(informers)

    # -- wiring -------------------------------------------------------------

    def _owner_keys(self, host: Obj) -> Iterable[str]:
        key = self.translator.virtual_key(host, self.ctx)
        return (key,) if key else ()

    def _wire(self, informers: InformerSet) -> None:
        t = self.translator
        informers.subscribe(Side.VIRTUAL, t.resource, self._on_virtual)
        informers.subscribe(Side.HOST, t.host, self._on_objects(self._owner_keys))
        for index in t.indexes():
            informers.store(index.side, index.resource).add_indexer(index.name, index.func)
        for side, resource in t.reads():
            informers.informer(side, resource)
            if side == Side.HOST:
                informers.subscribe(side, resource, self._on_dependency(resource))
        for trigger in t.triggers():
            informers.subscribe(trigger.side, trigger.resource, self._on_objects(trigger.keys))

    def _on_objects(
        self, keys: Callable[[Obj], Iterable[str]]
    ) -> Callable[[str, Obj | None, Obj | None], None]:
        def handler(_: str, old: Obj | None, new: Obj | None) -> None:
            for obj in (old, new):
                if obj is not None:
                    for key in keys(obj):
                        self._add(key)

        return handler

    def _on_dependency(
        self, resource: Resource
    ) -> Callable[[str, Obj | None, Obj | None], None]:
        """A host object others depend on came, went or changed identity: file them anew.

        Why: a host object's owner may be read from another cache (an Event's
        from its involved object). Seen before that object arrived, it was
        filed under no virtual key, and nothing else would file it again.
        """
        def handler(_: str, old: Obj | None, new: Obj | None) -> None:
            obj = new if new is not None else old
            if obj is None or (old is not None and new is not None
                               and naming.identity_of(old) == naming.identity_of(new)):
                return
            meta = obj["metadata"]
            ref = dependency_ref(resource.kind, meta.get("namespace") or "", meta["name"])
            for dependent in self._host.by_index(DEPENDENCY_INDEX, ref):
                self._host.reindex(object_key(dependent))
                for key in self._owner_keys(dependent):
                    self._add(key)

        return handler

    def _on_virtual(self, key: str, old: Obj | None, new: Obj | None) -> None:
        expected = self._expected.get(key)
        if new is not None and expected and new["metadata"].get("uid") == expected[0]:
            del self._expected[key]
        self.queue.add(key)

    def _add(self, key: str) -> None:
        """Queue ``key``; ``<namespace>/*`` (see ``Trigger``) queues the whole namespace."""
        namespace, _, name = key.rpartition("/")
        if name != ALL_IN_NAMESPACE:
            self.queue.add(key)
            return
        for obj in self._virtual.by_index(NAMESPACE_INDEX, namespace):
            self.queue.add(f"{namespace}/{obj['metadata']['name']}")

    def start(self) -> None:
        self.queue.start(self.reconcile)

    def resync(self) -> None:
        """Queue every key either side knows (start-up, and on becoming leader)."""
        for key in self._virtual.list_keys():
            self.queue.add(key)
        for host in self._host:
            for key in self._owner_keys(host):
                self.queue.add(key)

    # -- reconcile ----------------------------------------------------------

    def host_for(self, key: str) -> Obj | None:
        found = self._host.by_index(OWNER_INDEX, key)
        return found[0] if found else None

    def plan(self, virtual: Obj | None, host: Obj | None) -> list[Action]:
        """Pick the translator case from what exists (see :func:`plan`)."""
        return plan(self.translator, self.ctx, virtual, host)

    async def reconcile(self, key: str) -> float | None:
        if not self._gate():
            return None
        with structlog.contextvars.bound_contextvars(kind=self.translator.kind, key=key):
            return await self._reconcile(key)

    async def _reconcile(self, key: str) -> float | None:
        virtual = self._virtual.get(key)
        if virtual is None and self._awaiting(key):
            return _EXPECTATION_RETRY
        actions = self.plan(virtual, self.host_for(key))
        try:
            return await self._execute(actions, virtual)
        except WriteRefused:
            if not self._gate():
                return None  # lost the lease mid-reconcile: the new leader takes over
            raise
        except _REJECTIONS as exc:
            await self._warn(virtual, "SyncError", self._sanitize(exc, virtual))
            raise
        except NameTaken as exc:
            await self._warn(virtual, "NameConflict", str(exc))
            raise
        except AlreadyExists as exc:
            if any(isinstance(a, Create) for a in actions) and await self._holds_copy(
                    actions, key):
                # Our own copy, whose create the cache has not seen yet (a referrer's
                # ensure made it, or a broken connection lost the answer to ours and the
                # client sent it again): synced; look again once the cache has it.
                return _OWN_COPY_RETRY
            await self._warn_if_persistent(key, virtual, exc)
            raise
        except KubeError as exc:
            await self._warn_if_persistent(key, virtual, exc)
            raise

    async def _warn_if_persistent(self, key: str, virtual: Obj | None, exc: KubeError) -> None:
        """A plain Conflict is optimistic concurrency (re-read and retry); anything else
        that keeps failing (AlreadyExists on an unowned host object, throttling, a host
        outage) is the tenant's business."""
        if type(exc) is not Conflict and self.queue.num_requeues(key) >= _PERSISTENT_FAILURES:
            await self._warn(virtual, "SyncError", self._sanitize(exc, virtual))

    async def _execute(self, actions: list[Action], virtual: Obj | None) -> float | None:
        return await execute(actions, _Writes(self, virtual))

    async def _ensure(self, kind: type[Translator], key: str) -> None:
        if kind not in self.translator.ensures():
            raise TypeError(f"{self.translator.kind} ensures {kind.kind}, which it does not "
                            "declare in ensures()")
        peer = self.peers.get(kind.kind)
        if peer is not None:  # a disabled kind has nothing to ensure
            await peer.ensure(key)

    def _expect(self, action: Create, created: Obj) -> None:
        """Remember a virtual object we just created until our cache has seen it.

        Without this, a reconcile that runs between our Create and the cache's
        ADDED event (e.g. the one queued by the DELETE of a Service we re-create
        with the host's ClusterIP) would see "host only" and delete the host
        copy as an orphan (client-go's controllers keep "expectations" for the
        same reason).
        """
        if action.side != Side.VIRTUAL or action.subresource or (
            action.resource != self.translator.resource
        ):
            return
        meta = created.get("metadata", {})
        self._expected[object_key(created)] = (
            meta.get("uid", ""), time.monotonic() + _EXPECTATION_TIMEOUT
        )

    def _awaiting(self, key: str) -> bool:
        expected = self._expected.get(key)
        if expected is None:
            return False
        if time.monotonic() < expected[1]:
            return True
        del self._expected[key]  # the cache never saw it (deleted at once?): stop waiting
        return False

    async def ensure(self, key: str) -> None:
        """Create the target-side copy of ``key`` now if it is missing (a referrer waits).

        toHost kinds: the host copy of a virtual object (a ConfigMap a pod
        mounts); fromHost kinds: the virtual copy of a host object (the node a
        pod is about to be bound to). The kind's own filter is not consulted:
        the referrer's need is the reason. A source that does not exist is not
        an error: Kubernetes lets a pod reference a ConfigMap created later.
        """
        virtual = self._virtual.get(key)
        actions = ensure_actions(self.translator, self.ctx, virtual, self.host_for(key))
        if actions:
            try:
                await self._execute(actions, virtual)
            except AlreadyExists:
                # Created concurrently by this kind's own worker, and so it exists as
                # required; but an object we do not own under that name must never
                # stand in for it (the referrer would mount someone else's data).
                if not await self._holds_copy(actions, key):
                    raise NameTaken(
                        f"{self.translator.resource.kind} {key.rpartition('/')[2]!r} is not "
                        "synced: its name in the host cluster is taken by an object this "
                        "virtual cluster does not own") from None
            except Conflict:
                pass  # optimistic concurrency: the next reconcile of the key re-reads
            self.queue.add(key)

    async def _holds_copy(self, actions: list[Action], key: str) -> bool:
        """Whether the host object our Create collided with is this key's own copy (virtual
        copies of host objects, e.g. nodes, carry no ownership and are never in doubt)."""
        create = next(a for a in actions if isinstance(a, Create))
        if create.side is not Side.HOST:
            return True
        meta = create.obj["metadata"]
        found = await self._writer.read(create.side, create.resource, meta["name"],
                                        meta.get("namespace"))
        return found is not None and naming.is_managed(found, self.ctx.vcluster) and (
            self.translator.virtual_key(found, self.ctx) == key)

    async def _warn(self, virtual: Obj | None, reason: str, message: str) -> None:
        if virtual is not None:
            await self._events.warn(virtual, reason, message)

    def _sanitize(self, exc: KubeError, virtual: Obj | None) -> str:
        return warning_text(exc, self.ctx, virtual)


class _Writes:
    """The engine's executor for one reconcile of ``controller``: the writer writes,
    Warnings go on ``virtual``."""

    def __init__(self, controller: Controller, virtual: Obj | None) -> None:
        self._controller = controller
        self._writer = controller._writer
        self._virtual = virtual

    async def create(self, action: Create) -> None:
        self._controller._expect(action, await self._writer.create(action))

    async def patch(self, action: Patch) -> None:
        await self._writer.patch(action)

    async def delete(self, action: Delete) -> None:
        await self._writer.delete(action)

    async def ensure(self, kind: type[Translator], key: str) -> None:
        await self._controller._ensure(kind, key)

    async def issue_tokens(self, action: IssueTokens) -> float | None:
        return await self._writer.issue_tokens(action)

    async def warn(self, reason: str, message: str) -> None:
        await self._controller._warn(self._virtual, reason, message)

    async def requeue(self, after: float) -> None:
        """The returned delay is the requeue; nothing to write."""


def warning_text(exc: KubeError, ctx: Context, virtual: Obj | None) -> str:
    """The host's error text with host names replaced by virtual ones."""
    text = exc.message if isinstance(exc, ApiError) and exc.message else str(exc)
    if virtual is None:
        return text
    meta = virtual["metadata"]
    namespace = meta.get("namespace")
    if namespace:
        text = text.replace(ctx.host_name(meta["name"], namespace), meta["name"])
    text = naming.virtual_text(text, ctx.vcluster, ctx.host_namespace, namespace)
    return f"syncing to the host cluster failed: {text}"


class Engine:
    """All controllers of one virtual cluster, sharing caches, writer and status batcher."""

    def __init__(self, translators: list[Translator], wiring: Wiring) -> None:
        self.informers = wiring.informers
        self.status = wiring.status
        self.controllers = {t.kind: Controller(t, wiring) for t in translators}
        for controller in self.controllers.values():
            controller.peers = self.controllers
        self.started = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []

    async def run(self) -> None:
        """Start caches, wait until all are synced, then start reconciling everything."""
        self.informers.start()
        self._tasks.append(asyncio.create_task(self.status.run(), name="status-batcher"))
        await self.informers.wait_synced()
        for controller in self.controllers.values():
            controller.resync()
            controller.start()
        self.started.set()
        log.info("caches synced; %d controllers started", len(self.controllers))

    def resync(self) -> None:
        for controller in self.controllers.values():
            controller.resync()

    def ready(self) -> bool:
        return self.started.is_set()

    async def stop(self, timeout: float = 20.0) -> None:
        """Finish in-flight work and pending status writes, then stop the caches."""
        await asyncio.gather(
            *(c.queue.shutdown(drain=True, timeout=timeout) for c in self.controllers.values())
        )
        try:
            await self.status.drain(timeout)
        except TimeoutError:
            log.warning("status writes still pending at shutdown")
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self.informers.stop()
