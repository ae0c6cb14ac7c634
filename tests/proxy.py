"""A loopback TCP proxy that can stall, cut, black-hole or refuse connections.

Why in the test suite: watch and request robustness (stalled streams, resets,
half-open sockets, an unreachable server) is a property of the connection, so
the fault must sit on the wire between the syncer and a real API server, not
in a mock. It forwards bytes blindly (TLS passes through untouched) and only
ever listens on and dials 127.0.0.1.

Faults, per live connection unless said otherwise:

- ``stall``/``resume`` (and ``stall_for``): bytes are held, not lost; they flow
  again on resume (a congested or paused peer);
- ``reset``: every live connection is aborted (RST) at once; ``resets`` does it
  periodically for a while;
- ``blackhole``: the live connections become half-open: every byte on them is
  silently discarded while both sockets stay open; new connections are not
  affected, so only a client-side timeout gets the client out;
- ``refusing``: every new connection is aborted on accept (the server is
  unreachable); with ``cut`` the live ones go too;
- ``dropping``: every byte of every connection, old or new, is discarded (a
  network split that leaves sockets open).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from syncer.local.cluster import ControlPlane


@dataclass(eq=False)
class _Link:
    """One client connection and its upstream twin."""

    client: asyncio.StreamWriter
    upstream: asyncio.StreamWriter
    flowing: asyncio.Event = field(default_factory=asyncio.Event)
    blackholed_at: float | None = None

    @property
    def blackholed(self) -> bool:
        return self.blackholed_at is not None

    def abort(self) -> None:
        self.flowing.set()
        for writer in (self.client, self.upstream):
            writer.transport.abort()


class FaultyProxy:
    """Forward 127.0.0.1:<port> to 127.0.0.1:<target>; inject faults on the way."""

    def __init__(self, target_port: int) -> None:
        self.dropping = False
        """While True, every byte in either direction is dropped (a network split)."""
        self.refusing = False
        """While True, new connections are aborted as soon as they are accepted."""
        self.target_port = target_port
        self.port = 0
        self.connections = 0
        self.refused = 0
        self._server: asyncio.Server | None = None
        self._live: list[_Link] = []
        self._handlers: set[asyncio.Task[None]] = set()

    async def start(self) -> FaultyProxy:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if task is not None:  # awaited by stop(), so no handler outlives the proxy
            self._handlers.add(task)
            task.add_done_callback(self._handlers.discard)
        if self.refusing:
            self.refused += 1
            writer.transport.abort()
            return
        self.connections += 1
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target_port)
        except OSError:
            writer.transport.abort()
            return
        link = _Link(writer, up_writer)
        link.flowing.set()
        self._live.append(link)
        try:
            await asyncio.gather(self._pipe(reader, up_writer, link),
                                 self._pipe(up_reader, writer, link))
        finally:
            self._live.remove(link)
            for w in (writer, up_writer):
                w.close()

    async def _pipe(self, src: asyncio.StreamReader, dst: asyncio.StreamWriter,
                    link: _Link) -> None:
        with contextlib.suppress(ConnectionError, OSError):
            while data := await src.read(65536):
                await link.flowing.wait()
                if self.dropping or link.blackholed:
                    continue
                dst.write(data)
                await dst.drain()
        with contextlib.suppress(ConnectionError, OSError, RuntimeError):
            dst.close()

    @property
    def live(self) -> int:
        """How many connections are open through the proxy right now."""
        return len(self._live)

    def stall(self) -> int:
        """Stop forwarding on every live connection (they stay open, silent); return how many."""
        for link in self._live:
            link.flowing.clear()
        return len(self._live)

    def resume(self) -> int:
        """Let held bytes flow again on every live connection; return how many."""
        for link in self._live:
            link.flowing.set()
        return len(self._live)

    def stall_for(self, seconds: float) -> int:
        """Stall every live connection for ``seconds``, then resume; return how many."""
        stalled = [link for link in self._live if link.flowing.is_set()]
        for link in stalled:
            link.flowing.clear()
        asyncio.get_running_loop().call_later(seconds, _release, stalled)
        return len(stalled)

    async def stalls(self, seconds: float, gap: float, until: asyncio.Event) -> int:
        """Stall every live connection for ``seconds``, let it flow for ``gap``, again and
        again until ``until`` is set; return how many connection stalls there were."""
        stalled = 0
        while not until.is_set():
            stalled += self.stall_for(seconds)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(until.wait(), seconds + gap)
        return stalled

    def reset(self) -> int:
        """Abort every live connection at once; return how many."""
        links = list(self._live)
        for link in links:
            link.abort()
        return len(links)

    def blackhole(self) -> int:
        """Make every live connection half-open (bytes vanish, sockets stay); return how many."""
        links = [link for link in self._live if not link.blackholed]
        for link in links:
            link.blackholed_at = time.monotonic()
            link.flowing.set()
        return len(links)

    def blackholed(self) -> int:
        """How many half-open connections are still held open by their clients."""
        return sum(link.blackholed for link in self._live)

    def cut(self) -> int:
        """Disconnect: abort live connections and refuse new ones until ``refusing`` is
        set back to False; return how many live connections were aborted."""
        self.refusing = True
        return self.reset()

    async def resets(self, every: float, until: asyncio.Event) -> int:
        """Reset every live connection now and then each ``every`` seconds until ``until``
        is set; return how many connections were aborted in all."""
        aborted = self.reset()
        while not until.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(until.wait(), every)
            if not until.is_set():
                aborted += self.reset()
        return aborted

    async def stop(self) -> None:
        """Close the listener, abort every connection and wait for their handlers to end."""
        if self._server is not None:
            self._server.close()
        self.refusing = True
        self.reset()
        if self._handlers:
            await asyncio.wait(list(self._handlers), timeout=10)
        if self._server is not None:
            await self._server.wait_closed()


def _release(links: list[_Link]) -> None:
    for link in links:
        link.flowing.set()


def kubeconfig_via(cluster: ControlPlane, port: int, path: Path) -> Path:
    """A copy of ``cluster``'s kubeconfig that talks to it through a proxy on ``port``."""
    config = cluster.kubeconfig_dict()
    config["clusters"][0]["cluster"]["server"] = f"https://127.0.0.1:{port}"
    path.write_text(yaml.safe_dump(config))
    return path
