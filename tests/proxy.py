"""A loopback TCP proxy that can stall or cut connections (fault injection).

Why in the test suite: watch robustness (stalled streams, resets) is a
property of the connection, so the fault must sit on the wire between the
syncer and a real API server, not in a mock. It forwards bytes blindly (TLS
passes through untouched) and only ever listens on and dials 127.0.0.1.
"""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path

import yaml

from syncer.local.cluster import ControlPlane


class FaultyProxy:
    """Forward 127.0.0.1:<port> to 127.0.0.1:<target>; ``stall``/``reset`` live connections."""

    def __init__(self, target_port: int) -> None:
        self.dropping = False
        """While True, every byte in either direction is dropped (a network split)."""
        self.target_port = target_port
        self.port = 0
        self.connections = 0
        self._server: asyncio.Server | None = None
        self._live: list[tuple[asyncio.StreamWriter, asyncio.StreamWriter, asyncio.Event]] = []

    async def start(self) -> FaultyProxy:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target_port)
        flowing = asyncio.Event()
        flowing.set()
        entry = (writer, up_writer, flowing)
        self._live.append(entry)
        try:
            await asyncio.gather(
                self._pipe(reader, up_writer, flowing), self._pipe(up_reader, writer, flowing)
            )
        finally:
            self._live.remove(entry)
            for w in (writer, up_writer):
                w.close()

    async def _pipe(
        self, src: asyncio.StreamReader, dst: asyncio.StreamWriter, flowing: asyncio.Event
    ) -> None:
        with contextlib.suppress(ConnectionError, OSError):
            while data := await src.read(65536):
                await flowing.wait()
                if self.dropping:
                    continue
                dst.write(data)
                await dst.drain()
        with contextlib.suppress(ConnectionError, OSError, RuntimeError):
            dst.close()

    def stall(self) -> int:
        """Stop forwarding on every live connection (they stay open, silent); return how many."""
        for _, _, flowing in self._live:
            flowing.clear()
        return len(self._live)

    def reset(self) -> int:
        """Abort every live connection at once; return how many."""
        count = len(self._live)
        for client, upstream, flowing in list(self._live):
            flowing.set()
            for w in (client, upstream):
                w.transport.abort()
        return count

    async def stop(self) -> None:
        self.reset()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()


def kubeconfig_via(cluster: ControlPlane, port: int, path: Path) -> Path:
    """A copy of ``cluster``'s kubeconfig that talks to it through a proxy on ``port``."""
    config = cluster.kubeconfig_dict()
    config["clusters"][0]["cluster"]["server"] = f"https://127.0.0.1:{port}"
    path.write_text(yaml.safe_dump(config))
    return path
