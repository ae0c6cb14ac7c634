"""LIST + WATCH + re-LIST for one kind on one cluster, feeding a :class:`Store`.

Why our own loop and not ``kubernetes_asyncio.watch.Watch``: that helper turns
every event into model objects and gives up after one 410. Here:

1. paged LIST -> the store is replaced by it (deletes emitted for objects that
   vanished while we were not watching) -> ``synced`` is set;
2. WATCH from the list's resourceVersion with bookmarks; each event updates
   the store, then the handler is told (key, old, new);
3. a stream that ends cleanly is resumed from the last seen resourceVersion;
   one that breaks or stalls (no byte for ~70 s) is resumed after a backoff;
   410 Gone means the version is too old: back to step 1.

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

from syncer.kube.client import KubeClient, Obj
from syncer.kube.errors import ApiError, ConnectionLost, Gone, KubeError
from syncer.kube.resources import Resource
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
        watch_timeout: int = 300,
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
        stream = self.client.watch(
            self.resource,
            self._rv,
            self._namespace,
            label_selector=self._label_selector,
            field_selector=self._field_selector,
            timeout_seconds=self._watch_timeout,
        )
        async for event in stream:
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
