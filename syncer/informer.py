"""LIST + WATCH + re-LIST for one kind on one cluster, feeding a :class:`Store`.

Why our own loop and not ``kubernetes_asyncio.watch.Watch``: that helper turns
every event into model objects and gives up after one 410. Here:

1. paged LIST -> the store is replaced by it (deletes emitted for objects that
   vanished while we were not watching) -> ``synced`` is set;
2. WATCH from the list's resourceVersion with bookmarks; each event updates
   the store, then the handler is told (key, old, new);
3. a stream that ends cleanly (the server ends every watch after 12 s) is
   resumed at once from the last seen resourceVersion (a bookmark's, when the
   server sends one before the end); one that breaks, or has not ended 4 s
   after it should have (a dead connection), is resumed after a backoff
   that grows with *consecutive* failures: a watch that streamed before it
   broke starts a new series (one blip does not inherit the backoff of
   earlier ones); 410 Gone means the version is too old: back to step 1.

Invariant: after every handler call the store reflects all events up to and
including that one, so a handler (and any reconcile it triggers) reads state
at least as new as the event. No event is lost: what a broken watch missed is
found by the re-LIST diff.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Callable
from dataclasses import dataclass

from contract.resources import Resource, Side
from syncer.kube.client import WATCH_TIMEOUT, KubeClient, Obj
from syncer.kube.errors import ApiError, ConnectionLost, Gone, KubeError
from syncer.store import Store, object_key, strip

log = logging.getLogger(__name__)

Handler = Callable[[str, Obj | None, Obj | None], None]
"""Called with (key, old, new): old None = added, new None = deleted."""

_MIN_BACKOFF = 0.5
_MAX_BACKOFF = 30.0


@dataclass(frozen=True)
class InformerStatistics:
    """A snapshot for debugging and /metrics."""

    resource: str
    cluster: str
    objects: int
    synced: bool
    lists: int
    watches: int
    events: int
    relists_after_gone: int
    resource_version: str


class Informer:
    """Keeps ``store`` equal to the server's view of one kind; call :meth:`run` as a task."""

    def __init__(
        self,
        client: KubeClient,
        resource: Resource,
        handler: Handler,
        *,
        store: Store | None = None,
        namespace: str | None = None,
        label_selector: str | None = None,
        field_selector: str | None = None,
        watch_timeout: int = WATCH_TIMEOUT,
    ) -> None:
        self.client = client
        self.resource = resource
        self.store = store or Store()
        self.synced = asyncio.Event()
        self._handler = handler
        self._namespace = namespace
        self._label_selector = label_selector
        self._field_selector = field_selector
        self._watch_timeout = watch_timeout
        self._rv = ""
        self._lists = self._watches = self._events = self._gone = 0
        self._streamed = False
        """Whether the current watch delivered anything (an event or a bookmark)."""

    def statistics(self) -> InformerStatistics:
        return InformerStatistics(
            resource=self.resource.plural,
            cluster=self.client.name,
            objects=len(self.store),
            synced=self.synced.is_set(),
            lists=self._lists,
            watches=self._watches,
            events=self._events,
            relists_after_gone=self._gone,
            resource_version=self._rv,
        )

    async def run(self) -> None:
        """Run until cancelled; never raises for API trouble (it backs off and retries)."""
        failures = 0
        while True:
            try:
                if not self._rv:
                    await self._list()
                await self._watch()
                failures = 0
            except Gone:
                self._gone += 1
                self._rv = ""
                log.info("%s/%s: resourceVersion expired; re-listing",
                         self.client.name, self.resource.plural)
            except (ConnectionLost, ApiError, KubeError) as exc:
                if self._streamed:
                    failures = 0  # it worked until now: a new series of failures
                    self._streamed = False
                failures += 1
                delay = min(_MAX_BACKOFF, _MIN_BACKOFF * 2 ** (failures - 1))
                delay *= random.uniform(0.8, 1.2)
                log.warning("%s/%s: %s; retrying in %.1fs",
                            self.client.name, self.resource.plural, exc, delay)
                if isinstance(exc, ApiError):
                    self._rv = ""  # unknown server state: start over with a LIST
                await asyncio.sleep(delay)

    async def _list(self) -> None:
        items, rv = await self.client.list(
            self.resource,
            self._namespace,
            label_selector=self._label_selector,
            field_selector=self._field_selector,
        )
        self._lists += 1
        for change in self.store.replace(strip(item) for item in items):
            self._emit(change.key, change.old, change.new)
        self._rv = rv
        self.synced.set()

    async def _watch(self) -> None:
        self._watches += 1
        self._streamed = False
        stream = self.client.watch(
            self.resource,
            self._rv,
            self._namespace,
            label_selector=self._label_selector,
            field_selector=self._field_selector,
            timeout_seconds=self._watch_timeout,
        )
        async for event in stream:
            self._streamed = True
            meta = event.object.get("metadata", {})
            if event.type != "BOOKMARK":
                self._apply(event.type, strip(event.object))
            self._rv = str(meta.get("resourceVersion") or self._rv)

    def _apply(self, kind: str, obj: Obj) -> None:
        key = object_key(obj)
        if kind == "DELETED":
            old = self.store.delete(key)
            self._emit(key, old if old is not None else obj, None)
        else:
            self._emit(key, self.store.upsert(obj), obj)

    def _emit(self, key: str, old: Obj | None, new: Obj | None) -> None:
        self._events += 1
        try:
            self._handler(key, old, new)
        except Exception:  # a handler bug must not kill the watch of every object
            log.exception("%s/%s: event handler failed for %s",
                          self.client.name, self.resource.plural, key)


class InformerSet:
    """One shared informer per (side, resource), with fan-out to many subscribers.

    Why shared: ConfigMaps, Secrets and pods all need the virtual pod cache
    (references, triggers); watching pods three times would triple memory and
    API load. Subscribers and indexes must be added before :meth:`start`.
    Host informers are always confined to the virtual cluster's host
    namespace (cluster-scoped host kinds excepted) and a label selector.
    """

    def __init__(
        self, clients: dict[Side, KubeClient], host_namespace: str, host_selector: str
    ) -> None:
        self._clients = clients
        self._host_namespace = host_namespace
        self._host_selector = host_selector
        self._informers: dict[tuple[Side, Resource], Informer] = {}
        self._subscribers: dict[tuple[Side, Resource], list[Handler]] = {}
        self._tasks: list[asyncio.Task[None]] = []

    def informer(
        self, side: Side, resource: Resource, label_selector: str | None = None
    ) -> Informer:
        """The informer of ``resource`` on ``side``, created on first use.

        Host informers default to the ownership selector given at construction;
        a fromHost kind passes its own (``""`` = every object).
        """
        key = (side, resource)
        found = self._informers.get(key)
        if found is not None:
            return found
        if side is Side.HOST and label_selector is None:
            label_selector = self._host_selector
        subscribers: list[Handler] = []
        self._subscribers[key] = subscribers

        def fan_out(k: str, old: Obj | None, new: Obj | None) -> None:
            for handler in subscribers:
                handler(k, old, new)

        namespace = self._host_namespace if side is Side.HOST and resource.namespaced else None
        informer = Informer(
            self._clients[side], resource, fan_out,
            namespace=namespace, label_selector=label_selector or None,
        )
        self._informers[key] = informer
        return informer

    def subscribe(self, side: Side, resource: Resource, handler: Handler) -> None:
        self.informer(side, resource)
        self._subscribers[(side, resource)].append(handler)

    def existing_store(self, side: Side, resource: Resource) -> Store | None:
        """The store of ``resource`` on ``side`` if some subscriber asked for it, else None
        (never creates an informer: after :meth:`start` a new one would never run)."""
        informer = self._informers.get((side, resource))
        return informer.store if informer is not None else None

    def store(self, side: Side, resource: Resource) -> Store:
        return self.informer(side, resource).store

    def start(self) -> None:
        self._tasks = [
            asyncio.create_task(inf.run(), name=f"informer-{side}-{res.plural}")
            for (side, res), inf in self._informers.items()
        ]

    async def wait_synced(self) -> None:
        await asyncio.gather(*(inf.synced.wait() for inf in self._informers.values()))

    def statistics(self) -> list[InformerStatistics]:
        return [inf.statistics() for inf in self._informers.values()]

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
