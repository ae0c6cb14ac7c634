"""Network faults between the syncer and both API servers, under churn (issue 9).

Every byte the syncer exchanges with the host and with the virtual API server
goes through a :class:`tests.proxy.FaultyProxy` (its two kubeconfigs point at
them); the churn workload and the convergence oracle talk to both servers
directly, so they are untouched by the faults. One stack lives through the
phases in turn; each phase runs a fresh round of churn while its fault is
on, then the oracle must find nothing left to write:

- ``resets``: every live connection on both sides is reset every few seconds;
- ``stalls``: every live connection is frozen for 2 s, again and again;
- ``half-open``: the live connections of both sides silently drop every byte
  and stay open; only the syncer's own request and watch timeouts get it out;
- ``gone``: the syncer is cut off from a side while churn goes on and a
  synced host copy is deleted behind its back, that side's store is
  compacted at its current revision, and the syncer is let back in: its
  watches must get 410 Gone, re-list, and repair everything.

Why a host and virtual API servers of their own, without watch cache
(``--watch-cache=false``): a caching API server answers a resumed watch from
its in-memory window, which compaction does not touch, so no 410 would ever
reach the syncer. Both stores are compacted on demand through the etcd v3
gRPC ``Compact`` call, which etcd and kine (its memory driver included) both
implement; the test first checks that a watch at the syncer's last revision
really answers 410.
"""

from __future__ import annotations

import asyncio
import struct
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
import pytest

from contract import naming
from contract import resources as r
from contract.resources import Obj
from syncer.kube.client import REQUEST_TIMEOUT, WATCH_DEADLINE, ClientSettings, KubeClient
from syncer.kube.errors import ConnectionLost, Gone
from syncer.local.cluster import ControlPlane, HostCluster, VirtualControlPlane
from syncer.local.syncer_process import SyncerProcess
from tests.chaos import audit
from tests.chaos.churn import Churn, ChurnSpec
from tests.chaos.conftest import SYNCER_USER, Report
from tests.chaos.verdict import judge
from tests.cluster.conftest import VC, Stack
from tests.conftest import OWNER, running
from tests.proxy import FaultyProxy, kubeconfig_via
from tests.suite_size import pick
from tests.support import http_get, syncer_idle, wait_until

UNCACHED = ["--watch-cache=false"]


@dataclass(frozen=True)
class Size:
    objects: int
    """Virtual objects each phase's churn creates (its two namespaces included); the
    churn, at ``rate`` operations a second, lasts as long as the faults go on."""
    rate: float
    live_apps: int
    phases: tuple[str, ...]
    converge_timeout: float = 240.0


SIZE = pick(
    ci=Size(objects=20, rate=1.5, live_apps=2,
            phases=("resets", "stalls", "half-open", "gone-both")),
    full=Size(objects=40, rate=2.0, live_apps=6,
              phases=("resets", "stalls", "half-open", "gone-host", "gone-virtual",
                      "gone-both")),
)


@pytest.fixture(scope="module")
def host_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HostCluster]:
    """This module's host: its API server reads etcd directly, so compaction yields 410;
    audited like the chaos suite's own host (see ``tests/chaos/audit.py``)."""
    root = tmp_path_factory.mktemp("wire-host")
    cluster = HostCluster(name="wire", root=root, nodes=1, owner=OWNER,
                          apiserver_args=UNCACHED + audit.apiserver_flags(root / "audit"))
    with running(cluster):
        yield cluster


@pytest.fixture
def virtual_cluster(tmp_path: Path) -> Iterator[VirtualControlPlane]:
    """The virtual control plane (kine on SQLite, as in production), also without watch
    cache, so kine's compaction yields 410; kine compacts up to the revision asked for
    (by default it keeps the last 1,000, which a syncer that watches closely never falls
    behind by during one phase: found when watches began to be renewed every 12 s)."""
    root = tmp_path / VC
    cluster = VirtualControlPlane(name=VC, root=root, store="sqlite", owner=OWNER,
                                  apiserver_args=UNCACHED + audit.apiserver_flags(root / "audit"),
                                  store_args=["--compact-min-retain=0"])
    with running(cluster):
        yield cluster


@dataclass
class Wire:
    """The stack, the two proxies on the syncer's wires, and the syncer behind them."""

    stack: Stack
    host: FaultyProxy
    virtual: FaultyProxy
    syncer: SyncerProcess | None = None
    figures: list[Obj] = field(default_factory=list)

    def proxy(self, side: str) -> FaultyProxy:
        return self.host if side == "host" else self.virtual

    def cluster(self, side: str) -> ControlPlane:
        return self.stack.host_cluster if side == "host" else self.stack.virtual_cluster

    def client(self, side: str) -> KubeClient:
        return self.stack.host if side == "host" else self.stack.virtual

    def informers(self) -> list[Obj]:
        """The syncer's informer statistics (/debug/statistics)."""
        assert self.syncer is not None
        stats: Obj = orjson.loads(http_get(f"{self.syncer.url}/debug/statistics"))
        informers: list[Obj] = stats.get("informers", [])
        return informers

    def relists_after_gone(self, side: str) -> int:
        return sum(i["relists_after_gone"] for i in self.informers() if i["cluster"] == side)


@pytest.fixture
async def wire(stack: Stack, tmp_path: Path) -> AsyncIterator[Wire]:
    host = await FaultyProxy(stack.host_cluster.ports["apiserver"]).start()
    virtual = await FaultyProxy(stack.virtual_cluster.ports["apiserver"]).start()
    w = Wire(stack, host, virtual)
    try:
        yield w
    finally:
        for proxy in (host, virtual):
            await proxy.stop()


async def _start_syncer(w: Wire, tmp_path: Path) -> SyncerProcess:
    """``vcsync run`` whose host and virtual kubeconfigs both lead through the proxies
    (the later flag wins over the stack's direct kubeconfigs). Waited for in a thread:
    the proxies run on this event loop and must keep forwarding meanwhile."""
    host = kubeconfig_via(w.stack.host_cluster, w.host.port, tmp_path / "host-via.kubeconfig")
    virtual = kubeconfig_via(w.stack.virtual_cluster, w.virtual.port,
                             tmp_path / "virtual-via.kubeconfig")
    syncer = w.stack.syncer("", f"--host-kubeconfig={host}",
                            f"--virtual-kubeconfig={virtual}").start(wait_ready=False)
    await asyncio.to_thread(syncer.wait_ready, 120)
    return syncer


class _PhaseChurn(Churn):
    """The shared churn workload in namespaces of its own phase, so that every phase
    creates fresh names (the workload never reuses one) next to the earlier phases'
    apps, which stay and must stay synced."""

    def __init__(self, client: KubeClient, spec: ChurnSpec, phase: str) -> None:
        super().__init__(client, spec)
        self.phase = phase

    @property
    def namespaces(self) -> list[str]:
        return [f"{self.phase}-{i}" for i in range(self.spec.namespaces)]


Fault = Callable[[Wire, Churn], Awaitable[Obj]]


async def test_syncer_converges_after_every_wire_fault(
    wire: Wire, churn_client: KubeClient, tmp_path: Path, report: Report
) -> None:
    wire.syncer = await _start_syncer(wire, tmp_path)
    churns: list[Churn] = []
    for number, phase in enumerate(SIZE.phases):
        churns.append(_PhaseChurn(churn_client, ChurnSpec(
            objects=SIZE.objects, rate=SIZE.rate, live_apps=SIZE.live_apps, seed=number),
            phase))
        await _phase(wire, churns, phase, FAULTS[phase])
    report("wire", {"phases": wire.figures})


LIVENESS_BOUND = 20.0
"""Issue 22: a dead peer (a half-open connection, its bytes silently dropped) is given up
within 20 s, on requests and on watches."""
GIVE_UP_TIMEOUT = 150.0
"""How long the measurements wait: room for the 70 s watch timeout of before issue 22."""


async def test_half_open_connections_are_given_up_within_20_seconds(
    wire: Wire, tmp_path: Path, report: Report
) -> None:
    """How long a half-open connection holds things up, measured three ways: a request and
    a watch of the syncer's client, each on a connection black-holed under it (seconds
    until the client gives it up); then the syncer at rest with both sides black-holed
    and a Service created right after (seconds until every informer watches again, and
    until the Service is on the host). Each within 20 s."""
    figures = await _client_gives_up(wire, tmp_path)
    wire.syncer = await _start_syncer(wire, tmp_path)
    figures.update(await _syncer_gets_over(wire))
    report("half-open-detection", figures)
    slow = {what: seconds for what, seconds in figures.items() if seconds > LIVENESS_BOUND}
    assert not slow, f"held up by half-open connections for over {LIVENESS_BOUND:.0f}s: {slow}"


async def _client_gives_up(w: Wire, tmp_path: Path) -> dict[str, float]:
    """A request on the client's one pooled connection, and a watch that already streamed,
    each black-holed: seconds until each fails with ConnectionLost."""
    path = kubeconfig_via(w.stack.host_cluster, w.host.port, tmp_path / "probe.kubeconfig")
    one = ClientSettings(max_connections=1)
    async with await KubeClient.from_kubeconfig(str(path), name="probe", settings=one) as client:
        _, revision = await client.list(r.NAMESPACES)  # leaves its connection in the pool
        request = asyncio.create_task(client.request("GET", r.NAMESPACES.path(), retry=False))
        request_s = await _seconds_to_give_up(w.host, request, "the probe request")
    async with await KubeClient.from_kubeconfig(str(path), name="probe") as client:
        events: list[Obj] = []

        async def follow() -> None:
            async for event in client.watch(r.NAMESPACES, revision):
                events.append(event.object)

        watch = asyncio.create_task(follow())
        await w.stack.host.create(r.NAMESPACES, {"metadata": {"name": "half-open-probe"}})
        await wait_until(lambda: events, "the probe watch to stream a namespace's creation")
        watch_s = await _seconds_to_give_up(w.host, watch, "the probe watch")
    return {"client_request_given_up_s": request_s, "client_watch_given_up_s": watch_s}


async def _seconds_to_give_up(proxy: FaultyProxy, doomed: asyncio.Task[Any], what: str) -> float:
    """Black-hole every live connection of ``proxy`` (``doomed`` runs on one of them), then
    the seconds until ``doomed`` fails with ConnectionLost."""
    assert proxy.blackhole(), "no live connection to black-hole"
    start = time.monotonic()
    try:
        await wait_until(doomed.done, f"{what} to give up its half-open connection",
                         timeout=GIVE_UP_TIMEOUT, interval=0.1)
    finally:
        doomed.cancel()
    seconds = round(time.monotonic() - start, 1)
    with pytest.raises(ConnectionLost):
        doomed.result()
    return seconds


async def _syncer_gets_over(w: Wire) -> dict[str, float]:
    """The syncer at rest, both sides black-holed, then a Service created: seconds until
    every informer watches again, and until the Service is on the host."""
    assert w.syncer is not None
    url = w.syncer.url
    namespace = "half-open"
    await w.stack.virtual.create(r.NAMESPACES, {"metadata": {"name": namespace}})
    await wait_until(lambda: syncer_idle(url), "the syncer idle")
    before = _watch_counts(w.informers())
    held = {s: w.proxy(s).blackhole() for s in ("host", "virtual")}
    assert all(held.values()), f"no live connection to black-hole on some side: {held}"
    start = time.monotonic()
    await w.stack.virtual.create(r.SERVICES, {"metadata": {"name": "probe"}, "spec": {
        "ports": [{"port": 80}]}}, namespace)

    def renewed() -> bool:
        now = _watch_counts(w.informers())
        return all(now[k] > count for k, count in before.items())

    await wait_until(renewed, "every informer of the syncer to watch again",
                     timeout=GIVE_UP_TIMEOUT, interval=0.5)
    watches_s = round(time.monotonic() - start, 1)
    await wait_until(lambda: w.stack.host_get(r.SERVICES, "probe", namespace),
                     "the Service created during the fault on the host",
                     timeout=GIVE_UP_TIMEOUT, interval=0.5)
    return {"syncer_watches_renewed_s": watches_s,
            "service_created_during_fault_on_host_s": round(time.monotonic() - start, 1)}


async def _phase(w: Wire, churns: list[Churn], name: str, fault: Fault) -> None:
    """Churn with ``fault`` on; when both are over, judge every phase's workload so far
    (rolled out, converged, nothing lost or duplicated); record the figures."""
    since, started = audit.now(), time.monotonic()
    churn = churns[-1]
    run = asyncio.create_task(churn.run())
    try:
        figures = await fault(w, churn)
        ended = time.monotonic()
        await run
    finally:
        run.cancel()
    verdict = await judge(w.stack, churns, {SYNCER_USER}, since, time.monotonic(),
                          f"after {name}", timeout=SIZE.converge_timeout)
    warnings = await _sync_errors(w.stack)
    w.figures.append({
        "phase": name, **figures, "fault_seconds": round(ended - started, 1),
        "churn_seconds_after_fault": round(time.monotonic() - ended, 1),
        **verdict.figures(), "sync_error_warnings": len(warnings),
        "churn": churn.record.summary()["counts"],
    })
    verdict.check()
    mistaken = [m for m in warnings if "already exists" in m]
    assert not mistaken, f"the tenant was told its own synced objects collide: {mistaken[:5]}"


async def _sync_errors(stack: Stack) -> list[str]:
    """The messages of every SyncError Warning the syncer recorded in the virtual cluster.

    Some are right during a fault (a write that kept failing while the host was
    unreachable); one saying an object "already exists" is not: it is the
    syncer's own create, whose answer a broken connection lost.
    """
    events, _ = await stack.virtual.list(r.EVENTS, field_selector="reason=SyncError")
    return [f"{e['involvedObject'].get('namespace')}/{e['involvedObject'].get('name')}: "
            f"{e.get('message', '')}" for e in events]


# -- the faults ------------------------------------------------------------------------


async def _resets(w: Wire, churn: Churn) -> Obj:
    aborted = await asyncio.gather(*(w.proxy(s).resets(3.0, churn.done)
                                     for s in ("host", "virtual")))
    assert all(aborted), f"no connection to reset on some side: {aborted}"
    return {"connections_reset": dict(zip(("host", "virtual"), aborted, strict=True))}


async def _stalls(w: Wire, churn: Churn) -> Obj:
    stalled = await asyncio.gather(*(w.proxy(s).stalls(2.0, 2.0, churn.done)
                                     for s in ("host", "virtual")))
    assert all(stalled), f"no connection to stall on some side: {stalled}"
    return {"connection_stalls_of_2s": dict(zip(("host", "virtual"), stalled, strict=True))}


async def _half_open(w: Wire, churn: Churn) -> Obj:
    """Black-hole the live connections; the syncer must give them up on its own timeouts
    (requests after REQUEST_TIMEOUT without an answer, watches not ended by WATCH_DEADLINE):
    every informer must have opened a new watch.

    Only the informers' new watches are awaited, not the proxy's sockets: a client that
    gives up a TLS connection still waits for the peer's close_notify (asyncio's SSL
    shutdown timeout, 30 s) before the socket goes, which says nothing about the syncer.
    """
    before = _watch_counts(w.informers())
    held = {s: w.proxy(s).blackhole() for s in ("host", "virtual")}
    assert all(held.values()), f"no live connection to black-hole on some side: {held}"
    start = time.monotonic()

    def renewed() -> bool:
        now = _watch_counts(w.informers())
        return all(now[k] > count for k, count in before.items())

    await wait_until(renewed, "every informer of the syncer to open a new watch",
                     timeout=WATCH_DEADLINE + REQUEST_TIMEOUT + 30, interval=1.0)
    return {"half_open_connections": held,
            "seconds_until_every_watch_renewed": round(time.monotonic() - start, 1),
            "half_open_still_open_then": {s: w.proxy(s).blackholed() for s in held}}


def _watch_counts(informers: list[Obj]) -> dict[tuple[str, str], int]:
    return {(i["cluster"], i["resource"]): int(i["watches"]) for i in informers}


def _gone(*sides: str) -> Fault:
    async def fault(w: Wire, churn: Churn) -> Obj:
        return await _cut_and_compact(w, churn, sides)
    return fault


async def _cut_and_compact(w: Wire, churn: Churn, sides: tuple[str, ...]) -> Obj:
    """Cut ``sides`` off while churn runs (and, with the host cut, delete one synced host
    copy behind the syncer's back), compact their stores past the syncer's revisions,
    check a watch at those revisions answers 410, and let the syncer back in."""
    relists = {s: w.relists_after_gone(s) for s in sides}
    oldest = {s: _oldest_revision(w.informers(), s) for s in sides}
    for side in sides:
        w.proxy(side).cut()
    await churn.done.wait()
    removed = await _delete_one_host_copy(w.stack) if "host" in sides else None
    compacted: dict[str, int] = {}
    for side in sides:
        compacted[side] = await _compact_now(w, side)
        with pytest.raises(Gone):
            await _watch_once(w.client(side), oldest[side])
        w.proxy(side).refusing = False

    async def relisted() -> bool:
        return all(w.relists_after_gone(s) > relists[s] for s in sides)

    await wait_until(relisted, f"the syncer to re-list after 410 on {', '.join(sides)}",
                     timeout=SIZE.converge_timeout, interval=1.0)
    return {"cut": list(sides), "syncer_revision": oldest, "compacted_at": compacted,
            "host_copy_deleted": removed,
            "relists_after_gone": {s: w.relists_after_gone(s) - relists[s] for s in sides}}


FAULTS: dict[str, Fault] = {
    "resets": _resets, "stalls": _stalls, "half-open": _half_open,
    "gone-host": _gone("host"), "gone-virtual": _gone("virtual"),
    "gone-both": _gone("host", "virtual"),
}


def _oldest_revision(informers: list[Obj], side: str) -> int:
    return min(int(i["resource_version"]) for i in informers
               if i["cluster"] == side and i["resource_version"])


async def _delete_one_host_copy(stack: Stack) -> str:
    """Delete a synced host ConfigMap out of band: only a re-list can tell the syncer."""
    selector = f"{naming.LABEL_MANAGED_BY}={VC}"
    items, _ = await stack.host.list(r.CONFIGMAPS, stack.host_namespace,
                                     label_selector=selector)
    for item in items:
        identity = naming.identity_of(item)
        if identity is not None and identity.namespace and await stack.virtual_get(
                r.CONFIGMAPS, identity.name, identity.namespace) is not None:
            name = str(item["metadata"]["name"])
            await stack.host.delete(r.CONFIGMAPS, name, stack.host_namespace)
            return name
    raise AssertionError("no synced host ConfigMap whose virtual source still exists")


async def _watch_once(client: KubeClient, revision: int) -> None:
    """Open a ConfigMap watch at ``revision`` and read its first event."""
    async for _ in client.watch(r.CONFIGMAPS, str(revision), timeout_seconds=5):
        return


async def _compact_now(w: Wire, side: str) -> int:
    """Compact ``side``'s store (etcd or kine) at its current revision; return it."""
    _, revision = await w.client(side).list(r.NAMESPACES)
    await compact(w.cluster(side).ports["store"], int(revision))
    return int(revision)


# -- etcd v3 Compact over gRPC (HTTP/2 without TLS), as etcd and kine serve it -----------

_PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
_DATA, _HEADERS, _RST_STREAM, _SETTINGS, _PING, _GOAWAY = 0, 1, 3, 4, 6, 7
_END_STREAM, _ACK, _END_HEADERS = 1, 1, 4


def _frame(kind: int, flags: int, stream: int, payload: bytes = b"") -> bytes:
    return struct.pack(">I", len(payload))[1:] + bytes([kind, flags]) + struct.pack(
        ">I", stream) + payload


def _header(name: str, value: str) -> bytes:
    """HPACK "literal header field without indexing, new name", no Huffman."""
    encoded = [s.encode() for s in (name, value)]
    assert all(len(s) < 127 for s in encoded)
    return b"\x00" + b"".join(bytes([len(s)]) + s for s in encoded)


def _varint(n: int) -> bytes:
    out = b""
    while n > 0x7F:
        out += bytes([n & 0x7F | 0x80])
        n >>= 7
    return out + bytes([n])


async def compact(port: int, revision: int) -> None:
    """``KV.Compact(revision, physical=true)`` on 127.0.0.1:``port``.

    Why by hand: the only alternative clients (grpcio and the etcd protos, or
    etcdctl) are not installed, and the call is one request of a few bytes:
    a successful Compact answers a message; a failed one only trailers.
    """
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    message = b"\x08" + _varint(revision) + b"\x10\x01"
    headers = b"".join(_header(k, v) for k, v in (
        (":method", "POST"), (":scheme", "http"), (":path", "/etcdserverpb.KV/Compact"),
        (":authority", f"127.0.0.1:{port}"), ("content-type", "application/grpc"),
        ("te", "trailers")))
    writer.write(_PREFACE + _frame(_SETTINGS, 0, 0) + _frame(_HEADERS, _END_HEADERS, 1, headers)
                 + _frame(_DATA, _END_STREAM, 1, b"\x00" + struct.pack(">I", len(message))
                          + message))
    answered = False
    try:
        while True:
            head = await asyncio.wait_for(reader.readexactly(9), 30)
            kind, flags, stream = head[3], head[4], int.from_bytes(head[5:], "big")
            payload = await reader.readexactly(int.from_bytes(head[:3], "big"))
            if kind in (_SETTINGS, _PING) and not flags & _ACK:
                writer.write(_frame(kind, _ACK, 0, payload if kind == _PING else b""))
            elif kind == _DATA and stream == 1:
                answered = answered or len(payload) > 5
            elif kind in (_RST_STREAM, _GOAWAY) or (
                    kind == _HEADERS and stream == 1 and flags & _END_STREAM):
                break
    finally:
        writer.close()
    assert answered, f"Compact({revision}) on port {port} failed (no answer message)"
