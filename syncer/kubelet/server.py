"""The kubelet endpoint's listener: authenticate, route, resolve, forward, splice.

One connection carries one request (answers say ``Connection: close``):

1. TLS with a verified client certificate from the kubelet CA, whose common
   name must be kube-apiserver's kubelet client (else 403);
2. the request head is parsed into a :class:`~syncer.kubelet.routes.KubeletCall`
   (unknown paths 404, node-level paths 404 with a hint);
3. the virtual pod is resolved to its host pod through the syncer's caches
   (:mod:`syncer.kubelet.pods`; none: 404 naming the virtual pod only);
4. a new connection to the host API carries the pod subresource request with
   the syncer's host credentials and the client's upgrade headers;
5. a ``101`` or ``2xx`` answer is passed on and the bytes are spliced both ways
   (:mod:`syncer.kubelet.splice`); any other answer becomes a short plain-text
   error whose host names are replaced by the virtual ones.

Authorization of the tenant happened before step 1: kube-apiserver checks
``pods/log`` / ``pods/exec`` / ... against the virtual cluster's RBAC before it
dials a kubelet.

Invariant: at most ``max_streams`` requests are in flight; one more gets 503
at once, so memory stays bounded (each holds at most two chunk buffers).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

import orjson

from syncer.kube import liveness
from syncer.kube.client import StreamTarget
from syncer.kubelet import http1, routes, splice
from syncer.kubelet.pods import HostPod, PodResolver
from syncer.kubelet.tls import peer_allowed

log = logging.getLogger(__name__)

HEAD_TIMEOUT = 30.0
"""How long a caller (or the host, for a non-following request) may take for its head."""
ERROR_BODY_LIMIT = 64 * 1024
MAX_STREAMS = 256
_UPGRADE_HEADERS = ("Upgrade", "X-Stream-Protocol-Version", "Sec-WebSocket-Key",
                    "Sec-WebSocket-Version", "Sec-WebSocket-Protocol", "Sec-WebSocket-Extensions")
_SWITCHED_HEADERS = ("Connection", "Upgrade", "X-Stream-Protocol-Version", "Sec-WebSocket-Accept",
                     "Sec-WebSocket-Protocol", "Sec-WebSocket-Extensions")
_BODY_HEADERS = ("Content-Type", "Content-Length", "Transfer-Encoding")
_PASSED_STATUSES = (400, 404, 409, 410, 422, 429, 500, 503)
"""Host error codes passed on as they are; others become 502 (the host is not the kubelet)."""

RequestObserver = Callable[[str, int], None]
"""Called once per request with (call, status code): "log", "exec", ... or "-" unrouted."""


class HostStreams(Protocol):
    """Where a request is forwarded: the host API (``KubeClient`` provides it)."""

    async def stream_target(self) -> StreamTarget: ...


@dataclass(frozen=True)
class KubeletStatistics:
    """A snapshot for ``/debug/statistics``."""

    requests: int
    refused: int
    open_streams: int
    bytes_up: int
    bytes_down: int


@dataclass
class _Counters:
    requests: int = 0
    refused: int = 0
    open_streams: int = 0
    flow: splice.Flow = field(default_factory=splice.Flow)


class Refused(Exception):
    """A request answered with an error of ours; ``status`` and the text go to the caller."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def virtual_message(message: str, call: routes.KubeletCall, host: HostPod) -> str:
    """``message`` from the host with the host pod and namespace replaced by virtual names."""
    text = message.replace(f"{host.namespace}/{host.name}", f"{call.namespace}/{call.pod}")
    return text.replace(host.name, call.pod).replace(host.namespace, call.namespace)


def _status_message(body: bytes) -> str:
    """The ``message`` of a Status JSON, else the body as text."""
    with contextlib.suppress(ValueError, AttributeError):
        message = orjson.loads(body).get("message")
        if isinstance(message, str):
            return message
    return body.decode(errors="replace").strip()


class KubeletServer:
    """Serves the kubelet API subset for one virtual cluster; see the module docstring."""

    def __init__(
        self, pods: PodResolver, host: HostStreams, tls: ssl.SSLContext, *,
        ready: Callable[[], bool], max_streams: int = MAX_STREAMS,
        observer: RequestObserver | None = None,
    ) -> None:
        self._pods = pods
        self._host = host
        self._tls = tls
        self._ready = ready
        self._max_streams = max_streams
        self._observer = observer
        self._counters = _Counters()
        self._server: asyncio.Server | None = None
        self._connections: set[asyncio.Task[None]] = set()

    async def start(self, address: str, port: int) -> None:
        self._server = await asyncio.start_server(
            self._accept, address, port, ssl=self._tls, limit=splice.CHUNK,
            ssl_handshake_timeout=HEAD_TIMEOUT, reuse_address=True, reuse_port=True,
        )

    async def stop(self) -> None:
        """Stop listening and end every open stream (their callers see the stream end)."""
        if self._server is not None:
            self._server.close()
        for task in list(self._connections):
            task.cancel()
        await asyncio.gather(*self._connections, return_exceptions=True)
        if self._server is not None:
            await self._server.wait_closed()

    def statistics(self) -> KubeletStatistics:
        c = self._counters
        return KubeletStatistics(c.requests, c.refused, c.open_streams, c.flow.up, c.flow.down)

    # -- one connection ----------------------------------------------------------

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """Serve one caller; its socket probes the peer (``syncer.kube.liveness``), so a
        stream whose kube-apiserver went away does not hold a host stream forever."""
        task = asyncio.current_task()
        assert task is not None
        sock = writer.get_extra_info("socket")
        if sock is not None:
            liveness.tune(sock)
        self._connections.add(task)
        try:
            await self._serve(reader, writer)
        finally:
            self._connections.discard(task)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._counters.requests += 1
        name = "-"
        try:
            if not peer_allowed(writer.get_extra_info("peercert")):
                raise Refused(403, "only the virtual cluster's kube-apiserver may call this "
                                   "kubelet endpoint")
            head = await asyncio.wait_for(http1.read_head(reader), HEAD_TIMEOUT)
            call = self._route(head)
            name = call.call.value
            code = await self._forward(call, head, (reader, writer))
        except Refused as exc:
            code = await self._refuse(writer, exc.status, str(exc))
        except (http1.ProtocolError, TimeoutError) as exc:
            code = await self._refuse(writer, 400, f"bad request: {exc}")
        except (ConnectionError, ssl.SSLError, asyncio.IncompleteReadError) as exc:
            log.info("kubelet %s: connection ended: %s", name, exc)
            code = 0
        finally:
            await splice.close(writer)
        if self._observer is not None:
            self._observer(name, code)

    def _route(self, head: http1.Head) -> routes.KubeletCall:
        try:
            call = routes.parse(head.start[0], head.start[1])
            routes.host_query(call)  # validates the parameters before anything is dialed
        except routes.RouteError as exc:
            raise Refused(exc.status, str(exc)) from exc
        if not self._ready():
            raise Refused(503, "the syncer is starting: its caches are not synced yet")
        return call

    async def _refuse(self, writer: asyncio.StreamWriter, status: int, message: str) -> int:
        self._counters.refused += 1
        with contextlib.suppress(ConnectionError, ssl.SSLError):
            writer.write(http1.error_response(status, message))
            await writer.drain()
        return status

    async def _forward(
        self, call: routes.KubeletCall, head: http1.Head,
        tenant: tuple[asyncio.StreamReader, asyncio.StreamWriter],
    ) -> int:
        pod = self._pods.host_pod(call.namespace, call.pod)
        if pod is None:
            raise Refused(404, f'pods "{call.pod}" not found in namespace "{call.namespace}"')
        if self._counters.open_streams >= self._max_streams:
            raise Refused(503, f"too many open streams ({self._max_streams}); try again later")
        self._counters.open_streams += 1
        try:
            return await self._relay(call, head, pod, tenant)
        finally:
            self._counters.open_streams -= 1

    async def _relay(
        self, call: routes.KubeletCall, head: http1.Head, pod: HostPod,
        tenant: tuple[asyncio.StreamReader, asyncio.StreamWriter],
    ) -> int:
        try:
            target = await self._host.stream_target()
            host = await target.connect()
        except Exception as exc:  # the host API is unreachable: that is the tenant's answer
            raise Refused(503, "the host API server is unreachable from the syncer") from exc
        started = time.monotonic()
        try:
            answer = await self._send(call, head, pod, target.headers, host)
        except BaseException:
            await splice.close(host[1])
            raise
        if answer.status == 101 or 200 <= answer.status < 300:
            allowed = _SWITCHED_HEADERS if answer.status == 101 else _BODY_HEADERS
            headers = http1.pick(answer.headers, allowed)
            if answer.status != 101:
                headers.append(("Connection", "close"))
            tenant[1].write(http1.response_head(answer.status, answer.start[2], headers))
            flow = splice.Flow()
            await splice.splice(tenant, host, flow)
            self._counters.flow.up += flow.up
            self._counters.flow.down += flow.down
            log.info("kubelet %s %s/%s: %d bytes up, %d down in %.1fs", call.call.value,
                     call.namespace, call.pod, flow.up, flow.down, time.monotonic() - started)
            return answer.status
        body = await asyncio.wait_for(http1.read_body(host[0], answer, ERROR_BODY_LIMIT),
                                      HEAD_TIMEOUT)
        await splice.close(host[1])
        raise Refused(*_host_error(answer.status, _status_message(body), call, pod))

    async def _send(
        self, call: routes.KubeletCall, head: http1.Head, pod: HostPod,
        credentials: list[tuple[str, str]],
        host: tuple[asyncio.StreamReader, asyncio.StreamWriter],
    ) -> http1.Head:
        upgrade = http1.pick(head.headers, _UPGRADE_HEADERS)
        headers = [*credentials, *upgrade]
        headers.append(("Connection", "Upgrade" if upgrade else "close"))
        target = routes.host_target(call, pod.namespace, pod.name)
        host[1].write(http1.request_head(head.start[0], target, headers))
        await host[1].drain()
        # A following log stream may answer only once its first line exists.
        follows = call.call is routes.Call.LOGS and ("follow", "true") in call.query
        return await asyncio.wait_for(http1.read_head(host[0]),
                                      None if follows else HEAD_TIMEOUT)


def _host_error(status: int, message: str, call: routes.KubeletCall,
                pod: HostPod) -> tuple[int, str]:
    """What the tenant is told about a host refusal: no host identity, no host names."""
    if status in (401, 403):
        return 502, (f"the host refused the syncer's {call.call.value} request for this pod "
                     "(its host credentials or RBAC)")
    code = status if status in _PASSED_STATUSES else 502
    return code, virtual_message(message, call, pod)
