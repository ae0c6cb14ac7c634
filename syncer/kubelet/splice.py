"""Copy bytes both ways between two connections until one of them ends.

Why byte splicing and not a protocol translator: after the host API answered
``101 Switching Protocols``, the bytes are SPDY or WebSocket frames between
the virtual kube-apiserver and the host's kubelet path; copying them untouched
keeps every flavour working (exec, attach, port-forward; SPDY, WebSocket,
tunnelled SPDY) and keeps pings and close frames end to end. A log stream is
the same: the host's chunked body, passed on as it arrives (``logs -f``).

Invariants:

- memory per direction is bounded: at most one chunk of :data:`CHUNK` bytes is
  held, and a read waits until the previous write drained below the writer's
  high-water mark (backpressure reaches the sender through TCP);
- when either side ends (EOF, reset, error), both are closed: a tenant's
  ``kubectl`` sees its stream end when the pod's side ends, and a host stream
  is released as soon as the tenant goes away. TLS cannot half-close, and SPDY
  and WebSocket carry their own per-stream close, so nothing is lost by this.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass

CHUNK = 32 * 1024
CLOSE_TIMEOUT = 5.0


@dataclass
class Flow:
    """Bytes moved by one splice: ``up`` from the tenant side, ``down`` to it."""

    up: int = 0
    down: int = 0


async def _pump(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, flow: Flow,
                upward: bool) -> None:
    while True:
        data = await reader.read(CHUNK)
        if not data:
            return
        writer.write(data)
        await writer.drain()
        if upward:
            flow.up += len(data)
        else:
            flow.down += len(data)


async def close(writer: asyncio.StreamWriter) -> None:
    """Close ``writer``'s connection, giving a TLS peer :data:`CLOSE_TIMEOUT` to answer."""
    writer.close()
    with contextlib.suppress(Exception):
        await asyncio.wait_for(writer.wait_closed(), CLOSE_TIMEOUT)
    if not writer.transport.is_closing():
        writer.transport.abort()


async def splice(
    tenant: tuple[asyncio.StreamReader, asyncio.StreamWriter],
    host: tuple[asyncio.StreamReader, asyncio.StreamWriter],
    flow: Flow,
) -> None:
    """Copy tenant -> host and host -> tenant until one direction ends, then close both.

    Errors of either connection (reset, TLS failure) end the splice like an EOF:
    there is nobody to report them to but the other side, and closing tells it.
    """
    pumps = [
        asyncio.create_task(_pump(tenant[0], host[1], flow, upward=True)),
        asyncio.create_task(_pump(host[0], tenant[1], flow, upward=False)),
    ]
    try:
        await asyncio.wait(pumps, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for pump in pumps:
            pump.cancel()
        await asyncio.gather(*pumps, return_exceptions=True)
        await asyncio.gather(close(tenant[1]), close(host[1]))
