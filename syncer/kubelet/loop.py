"""The kubelet endpoint runs on a stdlib asyncio loop in a thread of its own.

Why not on the syncer's uvloop: uvloop 0.23's TLS drops the data it still
holds when the peer's close arrives while reading is paused
(MagicStack/uvloop#661, unfixed). Reading *is* paused whenever the tenant reads
slower than the host sends, which is the normal case of a splice with bounded
buffers, and the host closes right after the last bytes of every log and exec
stream: through uvloop, ``kubectl logs`` of a 10 MiB log lost its last 100-200
KiB about every second time. CPython's own TLS transport waits for reading to
resume before it shuts down (``sslproto.SSLProtocol.eof_received``), so the
endpoint's sockets live on a stdlib loop.

What crosses the thread boundary: the pod lookups read the engine's caches
(dict reads, atomic under the GIL; cached objects are replaced, never mutated),
``ready()`` reads an event's flag, and the host client's credentials and token
bucket stay on the engine's loop (:class:`CrossLoopHost` asks it there).
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Coroutine
from typing import Any, TypeVar

from syncer.kube.client import KubeClient, StreamTarget

T = TypeVar("T")


class CrossLoopHost:
    """The host client as the kubelet thread uses it: each target is prepared on the
    client's own loop (its token bucket, its credential refresh)."""

    def __init__(self, client: KubeClient, loop: asyncio.AbstractEventLoop) -> None:
        self._client = client
        self._loop = loop

    async def stream_target(self) -> StreamTarget:
        future = asyncio.run_coroutine_threadsafe(self._client.stream_target(), self._loop)
        return await asyncio.wrap_future(future)


class LoopThread:
    """A stdlib event loop running in a daemon thread until :meth:`close`."""

    def __init__(self, name: str) -> None:
        self._loop = asyncio.SelectorEventLoop()
        self._thread = threading.Thread(target=self._loop.run_forever, name=name, daemon=True)
        self._thread.start()

    async def run(self, coro: Coroutine[Any, Any, T]) -> T:
        """Run ``coro`` on the thread's loop; await its result from the calling loop."""
        return await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(coro, self._loop))

    async def close(self) -> None:
        """Stop the loop and wait for the thread (off the calling loop)."""
        self._loop.call_soon_threadsafe(self._loop.stop)
        await asyncio.to_thread(self._thread.join)
        self._loop.close()
