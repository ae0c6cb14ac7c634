"""Executes translators' write actions: host writes, batched status, Warning events.

Invariants (checked here, on every write, whatever a translator returned):
- nothing is written unless ``gate()`` says we may (the Lease holder, or the
  only replica): losing leadership stops writes at the next call;
- a namespaced host write targets the virtual cluster's host namespace only;
- a host object we create carries our managed-by label;
- status patches for one object are coalesced: while one is pending, a newer
  one is merged into it (newest wins), and pending patches are flushed in
  batches with bounded concurrency.
"""

from __future__ import annotations

import asyncio
import base64
import datetime
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from contract import naming
from contract.resources import CONFIGMAPS, EVENTS, SECRETS, SERVICEACCOUNTS, Obj, Resource
from contract.translator import Create, Delete, IssueTokens, Patch, Side
from syncer.kube.api import Api
from syncer.kube.errors import AlreadyExists, Conflict, KubeError, NotFound
from syncer.store import Store

log = logging.getLogger(__name__)
WriteObserver = Callable[[str, str, str], None]
"""Called after each successful write with (side, verb, kind)."""


class WriteRefused(KubeError):
    """The writer refused a write: not the leader, or outside the host namespace."""


def compose(first: Obj, second: Obj) -> Obj | None:
    """One merge patch equivalent to applying ``first`` then ``second``, or None.

    None when no single merge patch can say it: ``first`` removes a key
    (null) and ``second`` sets an object there. Applied in turn they leave
    exactly ``second``'s object; merged into one patch, the old members would
    survive. The caller then sends both, in order.
    """
    out = dict(first)
    for key, value in second.items():
        before = out.get(key)
        if isinstance(value, dict) and isinstance(before, dict):
            merged = compose(before, value)
            if merged is None:
                return None
            out[key] = merged
        elif isinstance(value, dict) and key in out:
            return None  # null or a scalar before: the object must replace it whole
        else:
            out[key] = value
    return out


@dataclass
class _Pending:
    """Patches waiting for one object; consecutive ones are composed when possible."""

    resource: Resource
    name: str
    namespace: str | None
    patches: list[Obj]

    def add(self, patch: Obj) -> bool:
        """Append ``patch``; return True if it was merged into the last pending one."""
        merged = compose(self.patches[-1], patch)
        if merged is None:
            self.patches.append(patch)
            return False
        self.patches[-1] = merged
        return True


class StatusBatcher:
    """Coalesces status patches per object and flushes them in batches."""

    def __init__(
        self,
        client: Api,
        gate: Callable[[], bool],
        *,
        concurrency: int = 16,
        interval: float = 0.02,
        observer: WriteObserver | None = None,
    ) -> None:
        self._client = client
        self._gate = gate
        self._concurrency = concurrency
        self._interval = interval
        self._observer = observer
        self._pending: dict[tuple[str, str, str | None], _Pending] = {}
        self._wakeup = asyncio.Event()
        self._idle = asyncio.Event()
        self._idle.set()
        self.flushed = 0
        self.coalesced = 0
        self._failures = 0

    @property
    def pending(self) -> int:
        """Objects with status patches not yet written."""
        return len(self._pending) if not self._idle.is_set() else 0

    def submit(self, resource: Resource, name: str, namespace: str | None, patch: Obj) -> None:
        key = (resource.plural, name, namespace)
        pending = self._pending.get(key)
        if pending is None:
            self._pending[key] = _Pending(resource, name, namespace, [patch])
        elif pending.add(patch):
            self.coalesced += 1
        self._idle.clear()
        self._wakeup.set()

    async def run(self) -> None:
        """Flush loop; runs until cancelled."""
        while True:
            await self._wakeup.wait()
            # Let a burst of updates coalesce; back off while flushes keep failing.
            await asyncio.sleep(self._interval * 2 ** min(self._failures, 10))
            self._wakeup.clear()
            batch, self._pending = self._pending, {}
            items = list(batch.values())
            for start in range(0, len(items), self._concurrency):
                chunk = items[start : start + self._concurrency]
                await asyncio.gather(*(self._flush_one(p) for p in chunk))
            if not self._pending:
                self._idle.set()

    async def drain(self, timeout: float) -> None:
        """Wait until nothing is pending (graceful shutdown)."""
        await asyncio.wait_for(self._idle.wait(), timeout)

    def _retry(self, item: _Pending, failed: list[Obj]) -> None:
        """Put failed patches back *before* any newer ones submitted meanwhile."""
        self._failures += 1
        key = (item.resource.plural, item.name, item.namespace)
        retry = _Pending(item.resource, item.name, item.namespace, list(failed))
        newer = self._pending.pop(key, None)
        for patch in newer.patches if newer else ():
            retry.add(patch)
        self._pending[key] = retry
        self._idle.clear()
        self._wakeup.set()

    async def _flush_one(self, item: _Pending) -> None:
        for index, patch in enumerate(item.patches):
            if not self._gate():
                return
            try:
                await self._client.patch(
                    item.resource, item.name, patch, item.namespace, subresource="status"
                )
            except NotFound:
                return
            except KubeError as exc:
                log.warning("status patch of %s %s/%s failed: %s; will retry",
                            item.resource.kind, item.namespace, item.name, exc)
                self._retry(item, item.patches[index:])
                return
            self.flushed += 1
            self._failures = 0
            if self._observer is not None:
                self._observer(Side.VIRTUAL, "PATCH", item.resource.kind)


class EventRecorder:
    """Warning events on virtual objects, at most one per (object, reason, message) per period."""

    def __init__(
        self, client: Api, gate: Callable[[], bool], period: float = 300.0
    ) -> None:
        self._client = client
        self._gate = gate
        self._period = period
        self._last: dict[tuple[str, str, str], float] = {}
        self.recorded = 0

    async def warn(self, obj: Obj, reason: str, message: str) -> None:
        meta = obj.get("metadata", {})
        key = (str(meta.get("uid", "")), reason, message)
        now = time.monotonic()
        if now - self._last.get(key, -self._period) < self._period or not self._gate():
            return
        self._last[key] = now
        stamp = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        namespace = meta.get("namespace") or "default"
        event = {
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {"generateName": f"{meta.get('name', 'object')}.", "namespace": namespace},
            "involvedObject": {
                "apiVersion": obj.get("apiVersion", "v1"),
                "kind": obj.get("kind", ""),
                "name": meta.get("name", ""),
                "namespace": meta.get("namespace"),
                "uid": meta.get("uid"),
                "resourceVersion": meta.get("resourceVersion"),
            },
            "reason": reason,
            "message": message[:1000],
            "type": "Warning",
            "count": 1,
            "firstTimestamp": stamp,
            "lastTimestamp": stamp,
            "source": {"component": "vcsync"},
            "reportingComponent": "vcsync",
        }
        try:
            await self._client.create(EVENTS, event, namespace)
            self.recorded += 1
        except KubeError as exc:
            log.warning("could not record event %s on %s: %s", reason, meta.get("name"), exc)


TOKEN_REFRESH_AT = naming.PREFIX + "token-refresh-at"
_ROOT_CA = "kube-root-ca.crt"
_TOKEN_REFRESH_FRACTION = 0.8  # kubelet refreshes projected tokens at 80% of their life


class Writer:
    """Runs Create/Patch/Delete/IssueTokens actions against the right cluster, with the
    checks above."""

    def __init__(
        self,
        clients: Mapping[Side, Api],
        vcluster: str,
        host_namespace: str,
        gate: Callable[[], bool],
        status: StatusBatcher,
        observer: WriteObserver | None = None,
    ) -> None:
        self._clients = clients
        self._vcluster = vcluster
        self._host_namespace = host_namespace
        self._gate = gate
        self._status = status
        self._observer = observer
        # token Secret name -> when it is due for refresh (epoch seconds)
        self._tokens: dict[str, float] = {}
        self._host_secrets: Store | None = None
        self._virtual_configmaps: Store | None = None

    def use_caches(self, host_secrets: Store | None, virtual_configmaps: Store | None) -> None:
        """Read token Secrets and root CA bundles from these caches instead of GETs.

        Why: a GET per new pod (is its token Secret there yet?) and another per
        token write (the namespace's ``kube-root-ca.crt``) were a third of the
        host requests and a fifth of the virtual ones per synced pod, and made a
        restart's resync cost one host GET per pod (``vcsync bench load``). The
        engine's caches are synced before any reconcile and hold every
        managed host Secret (token Secrets carry the managed-by label) and every
        virtual ConfigMap. A Secret the cache has not seen yet (another replica
        wrote it a moment ago) is created, collides and is replaced: one
        redundant write, never a missing token. ``None``: no such cache, GET.
        """
        self._host_secrets = host_secrets
        self._virtual_configmaps = virtual_configmaps

    def _check(self, side: Side, resource: Resource, namespace: str | None) -> None:
        if not self._gate():
            raise WriteRefused("not the leader: write dropped")
        if side == Side.HOST and resource.namespaced and namespace != self._host_namespace:
            raise WriteRefused(
                f"refusing a host write to namespace {namespace!r}: "
                f"only {self._host_namespace!r} belongs to this virtual cluster"
            )

    def _done(self, side: Side, verb: str, resource: Resource) -> None:
        if self._observer is not None:
            self._observer(side, verb, resource.kind)

    async def read(
        self, side: Side, resource: Resource, name: str, namespace: str | None
    ) -> Obj | None:
        """GET one object (None if absent), for the questions no cache answers: who holds
        a host name we failed to create (caches only hold objects we own)."""
        try:
            return await self._clients[side].get(resource, name, namespace)
        except NotFound:
            return None

    async def create(self, action: Create) -> Obj:
        meta = action.obj.get("metadata", {})
        namespace = meta.get("namespace")
        self._check(action.side, action.resource, namespace)
        client = self._clients[action.side]
        if action.subresource:
            name = action.name or meta.get("name", "")
            try:
                result = await client.create_subresource(
                    action.resource, name, action.subresource, action.obj, namespace
                )
            except Conflict:
                if action.subresource != "binding":
                    raise
                # Already bound: our own earlier binding, which the cache has not
                # seen yet (only the syncer binds virtual pods). Nothing to do.
                return {}
        else:
            labels = meta.get("labels") or {}
            if action.side == Side.HOST and labels.get(naming.LABEL_MANAGED_BY) != self._vcluster:
                raise WriteRefused(f"refusing to create an unowned host {action.resource.kind}")
            # Throttled: back to the controller, which re-plans after the Retry-After
            # (a retry here could create a copy whose source was deleted meanwhile).
            result = await client.create(action.resource, action.obj, namespace,
                                         retry_throttled=False)
        self._done(action.side, "POST", action.resource)
        return result

    async def patch(self, action: Patch) -> None:
        self._check(action.side, action.resource, action.namespace)
        if action.side == Side.VIRTUAL and action.subresource == "status":
            self._status.submit(action.resource, action.name, action.namespace, action.patch)
            return
        await self._clients[action.side].patch(
            action.resource, action.name, action.patch, action.namespace,
            subresource=action.subresource, patch_type=action.patch_type,
        )
        self._done(action.side, "PATCH", action.resource)

    async def delete(self, action: Delete) -> None:
        self._check(action.side, action.resource, action.namespace)
        try:
            await self._clients[action.side].delete(
                action.resource, action.name, action.namespace,
                grace_period=action.grace_period, uid=action.uid,
            )
        except NotFound:
            return
        self._done(action.side, "DELETE", action.resource)

    async def issue_tokens(self, action: IssueTokens) -> float:
        """Make sure the pod's token Secret is fresh; return seconds until it is due again.

        A fresh Secret costs nothing (its refresh time is remembered, or read
        once after a restart); a missing or due one gets new TokenRequests
        against the virtual API server and one write on the host.
        """
        meta = action.secret_meta
        name, namespace = meta["name"], meta["namespace"]
        self._check(Side.HOST, SECRETS, namespace)
        now = time.time()
        refresh_at = self._tokens.get(name)
        if refresh_at is None:
            refresh_at = await self._read_refresh_at(name, namespace)
        if refresh_at is None or refresh_at <= now:
            refresh_at = await self._write_tokens(action, exists=refresh_at is not None)
        self._tokens[name] = refresh_at
        return refresh_at - now

    async def _read_refresh_at(self, name: str, namespace: str) -> float | None:
        if self._host_secrets is not None:
            cached = self._host_secrets.get(f"{namespace}/{name}")
            if cached is None:
                return None
            secret = cached
        else:
            try:
                secret = await self._clients[Side.HOST].get(SECRETS, name, namespace)
            except NotFound:
                return None
        annotations = secret["metadata"].get("annotations") or {}
        return float(annotations.get(TOKEN_REFRESH_AT, 0))

    async def _write_tokens(self, action: IssueTokens, exists: bool) -> float:
        virtual = self._clients[Side.VIRTUAL]
        data: dict[str, str] = {}
        for spec in action.tokens:
            request: Obj = {"spec": {
                "expirationSeconds": spec.expiration_seconds,
                "boundObjectRef": {"apiVersion": "v1", "kind": "Pod",
                                   "name": action.pod_name, "uid": action.pod_uid},
            }}
            if spec.audience:
                request["spec"]["audiences"] = [spec.audience]
            issued = await virtual.create_subresource(
                SERVICEACCOUNTS, action.service_account, "token", request, action.namespace
            )
            data[spec.key] = _b64(issued["status"]["token"])
        root_ca = await self._root_ca(action.namespace)
        data["ca.crt"] = _b64(root_ca.get("data", {}).get("ca.crt", ""))
        lifetime = min(spec.expiration_seconds for spec in action.tokens)
        refresh_at = time.time() + _TOKEN_REFRESH_FRACTION * lifetime
        secret = _token_secret(action, data, refresh_at)
        host = self._clients[Side.HOST]
        meta = action.secret_meta
        if exists:
            await host.replace(SECRETS, meta["name"], secret, meta["namespace"])
        else:
            try:
                await host.create(SECRETS, secret, meta["namespace"])
            except AlreadyExists:
                await host.replace(SECRETS, meta["name"], secret, meta["namespace"])
        self._done(Side.HOST, "PUT" if exists else "POST", SECRETS)
        return refresh_at

    async def _root_ca(self, namespace: str) -> Obj:
        """The namespace's ``kube-root-ca.crt`` (from the cache when it has it)."""
        name = _ROOT_CA
        if self._virtual_configmaps is not None:
            cached = self._virtual_configmaps.get(f"{namespace}/{name}")
            if cached is not None:
                return cached
        return await self._clients[Side.VIRTUAL].get(CONFIGMAPS, name, namespace)


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def _token_secret(action: IssueTokens, data: dict[str, str], refresh_at: float) -> Obj:
    meta = dict(action.secret_meta)
    meta["annotations"] = {**meta.get("annotations", {}), TOKEN_REFRESH_AT: f"{refresh_at:.0f}"}
    meta["ownerReferences"] = [action.owner]
    return {"apiVersion": "v1", "kind": "Secret", "type": "Opaque", "metadata": meta, "data": data}
