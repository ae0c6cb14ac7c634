"""Raw-JSON async client for one API server (the syncer holds two of them).

Why below kubernetes_asyncio's ``ApiClient``: its model path costs about a
millisecond per object and its body encoder is stdlib ``json``; and importing
it costs each syncer about 60 MiB. Where the server is and how to authenticate
comes from :mod:`syncer.kube.credentials` (client-go's kubeconfig rules); this
module sends and parses bytes with aiohttp and orjson.

Every answer's status code is checked here (36.1.0 does not raise in raw
mode) and mapped to :mod:`syncer.kube.errors`. Throttling, 5xx and lost
connections are retried with jittered exponential backoff (``Retry-After``
wins when the server sends it); other 4xx are returned to the caller at once,
who decides what a Conflict or Invalid means.

Liveness (issue 22): a connection whose peer went away silently must be given
up within 20 s, whatever it carries. Every socket has TCP keepalive tuned
(:mod:`syncer.kube.liveness`: a dead peer's kernel stops answering); and since
a peer whose kernel still answers may send nothing all the same (an L7 proxy
whose upstream is gone, a frozen process), requests and watches have
deadlines of their own: a request gets no byte for :data:`REQUEST_TIMEOUT`
seconds, a watch has not ended :data:`WATCH_GRACE` seconds after the
:data:`WATCH_TIMEOUT` it asked the server for. HTTP/1.1 has no ping, so a watch
is kept short: the server ends it on time (a caching one sends a bookmark two
seconds before, so the next watch resumes from a fresh resourceVersion), and
one that does not end was on a dead connection. The price is one watch
request per informer every 12 s, served from the API server's watch cache.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
import time
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass
from typing import Literal

import aiohttp
import orjson
from aiohttp.helpers import get_env_proxy_for_url
from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception,
    stop_after_attempt,
    wait_exponential_jitter,
)
from yarl import URL

from contract.resources import Obj, Resource
from syncer.kube import credentials, liveness
from syncer.kube.credentials import Endpoint
from syncer.kube.errors import (
    ApiError,
    ConnectionLost,
    Gone,
    ServerError,
    TooManyRequests,
    error_for,
)
from syncer.kube.ratelimit import TokenBucket
from syncer.metrics import ERROR_CODE, RequestSample

PatchType = Literal["merge", "strategic", "apply", "json"]
_CONTENT_TYPES: dict[PatchType, str] = {
    "merge": "application/merge-patch+json",
    "strategic": "application/strategic-merge-patch+json",
    "apply": "application/apply-patch+yaml",
    "json": "application/json-patch+json",
}
WATCH_TIMEOUT = 12
"""Seconds a watch asks the server to run (``timeoutSeconds``) before it ends it."""
WATCH_GRACE = 4.0
"""Seconds past :data:`WATCH_TIMEOUT` after which a watch that has not ended is given up."""
WATCH_DEADLINE = WATCH_TIMEOUT + WATCH_GRACE
REQUEST_TIMEOUT = 15.0
"""Seconds a request may go without a byte of its answer (a dead connection, or a server
too slow to be waited for: the request is retried)."""
REQUEST_TOTAL_TIMEOUT = 60.0
"""Seconds a request may take in all (kube-apiserver's own limit for one request)."""
CONNECT_TIMEOUT = 10.0
STREAM_BUFFER = 32 * 1024
FIELD_MANAGER = "vcsync"

RequestObserver = Callable[[RequestSample], None]
"""Called after every HTTP request (each attempt; a watch once its answer's status is known,
or it failed) with what client-go's metrics record of it."""


@dataclass(frozen=True)
class ClientSettings:
    """Per-cluster client tuning.

    Defaults: QPS 50 / burst 100. client-go's 5/10 is too slow for a syncer
    that owns thousands of objects; vCluster raises its own limits for the
    same reason. 50 QPS is still a small share of a default kube-apiserver
    (400 mutating in flight), so one virtual cluster cannot crowd out others.
    """

    qps: float = 50.0
    burst: int = 100
    max_connections: int = 64
    retries: int = 6


@dataclass(frozen=True)
class StreamTarget:
    """A connection to open to an API server, and the headers a request on it carries."""

    host: str
    port: int
    tls: ssl.SSLContext | None
    server_hostname: str | None
    headers: list[tuple[str, str]]

    async def connect(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        """Open the connection (keepalive tuned: a dead peer is noticed while idle)."""
        try:
            reader, writer = await asyncio.wait_for(asyncio.open_connection(
                self.host, self.port, ssl=self.tls, server_hostname=self.server_hostname,
                limit=STREAM_BUFFER,
            ), CONNECT_TIMEOUT)
        except (TimeoutError, OSError, ssl.SSLError) as exc:
            raise ConnectionLost(f"connect {self.host}:{self.port}: {type(exc).__name__}: "
                                 f"{exc}") from exc
        sock = writer.get_extra_info("socket")
        if sock is not None:
            liveness.tune(sock)
        return reader, writer


@dataclass(frozen=True)
class WatchEvent:
    """One line of a watch stream: ADDED, MODIFIED, DELETED or BOOKMARK."""

    type: str
    object: Obj


def _is_retryable(exc: BaseException) -> bool:
    if isinstance(exc, ServerError):
        return exc.status != 501
    return isinstance(exc, TooManyRequests | ConnectionLost)


_BACKOFF = wait_exponential_jitter(multiplier=0.2, max=10.0, jitter=0.5)


def _wait(state: RetryCallState) -> float:
    """Jittered exponential backoff, but never shorter than the server's Retry-After."""
    backoff = _BACKOFF(state)
    exc = state.outcome.exception() if state.outcome else None
    if isinstance(exc, TooManyRequests):
        return max(backoff, exc.retry_after)
    return backoff


class KubeClient:
    """Requests against one API server. Create with :meth:`from_kubeconfig` or
    :meth:`in_cluster`; close with :meth:`close` (or ``async with``)."""

    def __init__(
        self,
        name: str,
        endpoint: Endpoint,
        settings: ClientSettings | None = None,
        observer: RequestObserver | None = None,
    ) -> None:
        self.name = name
        self.settings = settings or ClientSettings()
        self._endpoint = endpoint
        # Our own session, trusting nothing from the environment: a session that trusts it
        # makes aiohttp look up proxies and ~/.netrc for every request, each in a worker
        # thread (two thread hops per request, about a third of the syncer's CPU under
        # load: benchmarks/load.py with --profile); ours reads the proxy once, here. Its
        # connector makes every socket with keepalive tuned (syncer.kube.liveness).
        connector = aiohttp.TCPConnector(
            limit=self.settings.max_connections, ssl=endpoint.new_tls(),
            socket_factory=liveness.new_socket,
        )
        self._session = aiohttp.ClientSession(connector=connector, trust_env=False,
                                              read_bufsize=2**21)
        self._server_hostname = endpoint.tls_server_name
        self._host = endpoint.server
        self._metric_host = _authority(self._host)
        self._proxy, self._proxy_auth = _env_proxy(self._host)
        self._bucket = TokenBucket(self.settings.qps, self.settings.burst)
        self._observer = observer
        self._stream_tls: ssl.SSLContext | None = None

    @classmethod
    async def from_kubeconfig(
        cls,
        path: str,
        context: str | None = None,
        *,
        name: str = "cluster",
        settings: ClientSettings | None = None,
        observer: RequestObserver | None = None,
    ) -> KubeClient:
        """Raises :class:`~syncer.kube.credentials.CredentialsError` for an unusable
        kubeconfig (or an exec plugin that gives no token)."""
        endpoint = await credentials.from_kubeconfig(path, context)
        return cls(name, endpoint, settings, observer)

    @classmethod
    def in_cluster(
        cls,
        *,
        name: str = "host",
        settings: ClientSettings | None = None,
        observer: RequestObserver | None = None,
    ) -> KubeClient:
        return cls(name, credentials.in_cluster(), settings, observer)

    async def close(self) -> None:
        await self._session.close()

    async def __aenter__(self) -> KubeClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # -- transport ------------------------------------------------------

    async def _headers(self, content_type: str | None) -> dict[str, str]:
        headers = {"Accept": "application/json"}
        if content_type:
            headers["Content-Type"] = content_type
        authorization = await self._endpoint.auth.header()
        if authorization:
            headers["Authorization"] = authorization
        return headers

    async def _send_once(
        self,
        method: str,
        path: str,
        params: Mapping[str, str] | None,
        data: bytes | None,
        content_type: str | None,
    ) -> bytes:
        throttled = await self._bucket.acquire()
        headers = await self._headers(content_type)
        start = time.monotonic()
        status = 0
        payload = b""
        try:
            async with self._session.request(
                method,
                self._host + path,
                params=params,
                data=data,
                headers=headers,
                timeout=aiohttp.ClientTimeout(total=REQUEST_TOTAL_TIMEOUT,
                                              sock_connect=CONNECT_TIMEOUT,
                                              sock_read=REQUEST_TIMEOUT),
                server_hostname=self._server_hostname,
                proxy=self._proxy,
                proxy_auth=self._proxy_auth,
            ) as resp:
                status = resp.status
                payload = await resp.read()
                if not 200 <= status < 300:
                    raise error_for(
                        status, payload, method, path, resp.headers.get("Retry-After")
                    )
                return payload
        except (TimeoutError, aiohttp.ClientError, OSError) as exc:
            raise ConnectionLost(f"{method} {path}: {type(exc).__name__}: {exc}") from exc
        finally:
            if status == 401:
                self._endpoint.auth.unauthorized()
            if self._observer is not None:
                self._observer(RequestSample(
                    self._metric_host, method, str(status) if status else ERROR_CODE,
                    time.monotonic() - start, throttled, len(data or b""), len(payload)))

    async def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, str] | None = None,
        body: Obj | bytes | None = None,
        content_type: str | None = "application/json",
        retry: bool = True,
        retry_throttled: bool = True,
    ) -> Obj:
        """Send one request (retried when retryable) and return the parsed answer.

        ``retry_throttled=False`` hands a 429 straight back (its ``retry_after``
        says when to try again): for a caller that must decide afresh whether the
        request is still wanted by then (see :meth:`create`).
        """
        data = body if isinstance(body, bytes) or body is None else orjson.dumps(body)
        payload = b""

        def retryable(exc: BaseException) -> bool:
            return _is_retryable(exc) and (retry_throttled or not isinstance(
                exc, TooManyRequests))

        async for attempt in AsyncRetrying(
            retry=retry_if_exception(retryable),
            stop=stop_after_attempt(self.settings.retries if retry else 1),
            wait=_wait,
            reraise=True,
        ):
            with attempt:
                payload = await self._send_once(
                    method, path, params, data, content_type if data is not None else None
                )
        result: Obj = orjson.loads(payload) if payload else {}
        return result

    # -- upgraded streams -------------------------------------------------

    async def stream_target(self) -> StreamTarget:
        """Where and how to open a new HTTP/1.1 connection to the API server, outside the
        request pool, with the headers of a request sent on it.

        For a request whose connection is then upgraded (SPDY, WebSocket) or streamed and
        spliced byte for byte (the kubelet endpoint): aiohttp's client cannot hand over a
        connection after ``101``. Same server, CA, client certificate, SNI and credentials
        as every other request; counted against the token bucket. The caller connects
        (:meth:`StreamTarget.connect`), on whichever event loop it runs.
        """
        if self._proxy is not None:
            raise ConnectionLost(f"{self._host}: streams through the HTTP proxy {self._proxy} "
                                 "are not supported")
        await self._bucket.acquire()
        url = URL(self._host)
        tls = self._tls_for_streams() if url.scheme == "https" else None
        headers = [("Host", f"{url.host}:{url.port}")]
        headers += [(k, v) for k, v in (await self._headers(None)).items() if k != "Accept"]
        return StreamTarget(str(url.host), int(url.port or 443), tls,
                            (self._server_hostname or url.host) if tls is not None else None,
                            headers)

    def _tls_for_streams(self) -> ssl.SSLContext:
        """The endpoint's TLS settings in a context of their own, with ALPN pinned to
        HTTP/1.1 (upgrades do not exist in HTTP/2)."""
        if self._stream_tls is None:
            self._stream_tls = self._endpoint.new_tls()
            self._stream_tls.set_alpn_protocols(["http/1.1"])
        return self._stream_tls

    # -- verbs ----------------------------------------------------------

    async def get(self, res: Resource, name: str, namespace: str | None = None) -> Obj:
        return await self.request("GET", res.path(namespace, name))

    async def list(
        self,
        res: Resource,
        namespace: str | None = None,
        *,
        label_selector: str | None = None,
        field_selector: str | None = None,
        page_size: int = 500,
    ) -> tuple[list[Obj], str]:
        """A paged LIST; returns (items, resourceVersion of the list)."""
        items: list[Obj] = []
        params = _selectors(label_selector, field_selector)
        params["limit"] = str(page_size)
        while True:
            page = await self.request("GET", res.path(namespace), params=params)
            items.extend(page.get("items") or [])
            meta = page.get("metadata", {})
            if not meta.get("continue"):
                return items, str(meta.get("resourceVersion", ""))
            params["continue"] = meta["continue"]

    async def watch(
        self,
        res: Resource,
        resource_version: str,
        namespace: str | None = None,
        *,
        label_selector: str | None = None,
        field_selector: str | None = None,
        timeout_seconds: int = WATCH_TIMEOUT,
        grace: float = WATCH_GRACE,
    ) -> AsyncIterator[WatchEvent]:
        """Stream events after ``resource_version`` (with bookmarks) for ``timeout_seconds``.

        Raises :class:`Gone` when the version is too old (also when it arrives
        as an ERROR event), :class:`ConnectionLost` when the stream breaks or
        has not ended ``grace`` seconds after ``timeout_seconds`` (a dead
        connection: module doc). The clean end of the stream just ends the
        iteration.
        """
        params = _selectors(label_selector, field_selector)
        params.update(
            watch="1",
            resourceVersion=resource_version,
            allowWatchBookmarks="true",
            timeoutSeconds=str(timeout_seconds),
        )
        path = res.path(namespace)
        throttled = await self._bucket.acquire()
        headers = await self._headers(None)
        deadline = timeout_seconds + grace
        timeout = aiohttp.ClientTimeout(total=deadline, sock_connect=CONNECT_TIMEOUT)
        start = time.monotonic()
        answered = False
        try:
            async with self._session.get(
                self._host + path,
                params=params,
                headers=headers,
                timeout=timeout,
                server_hostname=self._server_hostname,
                proxy=self._proxy,
                proxy_auth=self._proxy_auth,
            ) as resp:
                answered = True
                self._observe_watch(str(resp.status), start, throttled)
                if resp.status == 401:
                    self._endpoint.auth.unauthorized()
                if resp.status != 200:
                    payload = await resp.read()
                    raise error_for(
                        resp.status, payload, "WATCH", path, resp.headers.get("Retry-After")
                    )
                async for line in resp.content:
                    if line.strip():
                        yield _watch_event(line, path)
        except TimeoutError as exc:
            if not answered:
                self._observe_watch(ERROR_CODE, start, throttled)
            raise ConnectionLost(f"WATCH {path}: not ended {deadline:g}s after it began, "
                                 f"though the server was to end it after {timeout_seconds}s: "
                                 "the connection is dead") from exc
        except (aiohttp.ClientError, OSError, ValueError) as exc:
            if not answered:
                self._observe_watch(ERROR_CODE, start, throttled)
            raise ConnectionLost(f"WATCH {path}: {type(exc).__name__}: {exc}") from exc

    def _observe_watch(self, code: str, start: float, throttled: float) -> None:
        """A watch is the GET it is (client-go counts it so), with no latency sample."""
        if self._observer is not None:
            self._observer(RequestSample(self._metric_host, "GET", code,
                                         time.monotonic() - start, throttled, 0, 0, watch=True))

    async def create(
        self, res: Resource, obj: Obj | bytes, namespace: str | None = None, *,
        retry_throttled: bool = True,
    ) -> Obj:
        """POST ``obj``. A create that waits out a Retry-After may land after the reason
        for it is gone (its source deleted meanwhile: a ghost copy); a syncer passes
        ``retry_throttled=False`` and re-plans after the Retry-After instead."""
        return await self.request("POST", res.path(namespace), body=obj,
                                  retry_throttled=retry_throttled)

    async def create_subresource(
        self, res: Resource, name: str, subresource: str, body: Obj, namespace: str | None = None
    ) -> Obj:
        """POST to a subresource: ``binding`` of a pod, ``token`` of a ServiceAccount."""
        return await self.request("POST", res.path(namespace, name, subresource), body=body)

    async def patch(
        self,
        res: Resource,
        name: str,
        patch: Obj | bytes,
        namespace: str | None = None,
        *,
        subresource: str | None = None,
        patch_type: PatchType = "merge",
        force: bool = False,
    ) -> Obj:
        """PATCH an object or its ``status``; ``apply`` is server-side apply as ``vcsync``."""
        params = {"fieldManager": FIELD_MANAGER}
        if patch_type == "apply" and force:
            params["force"] = "true"
        return await self.request(
            "PATCH",
            res.path(namespace, name, subresource),
            params=params,
            body=patch,
            content_type=_CONTENT_TYPES[patch_type],
        )

    async def replace(
        self, res: Resource, name: str, obj: Obj, namespace: str | None = None,
        *, subresource: str | None = None,
    ) -> Obj:
        return await self.request("PUT", res.path(namespace, name, subresource), body=obj)

    async def delete(
        self,
        res: Resource,
        name: str,
        namespace: str | None = None,
        *,
        grace_period: int | None = None,
        uid: str | None = None,
        resource_version: str | None = None,
        propagation: str | None = None,
    ) -> Obj:
        """DELETE with optional grace period and uid/resourceVersion preconditions."""
        options: Obj = {"apiVersion": "v1", "kind": "DeleteOptions"}
        if grace_period is not None:
            options["gracePeriodSeconds"] = grace_period
        preconditions = {
            k: v for k, v in (("uid", uid), ("resourceVersion", resource_version)) if v
        }
        if preconditions:
            options["preconditions"] = preconditions
        if propagation:
            options["propagationPolicy"] = propagation
        return await self.request("DELETE", res.path(namespace, name), body=options)


def _authority(url: str) -> str:
    """client-go's ``host`` label: the server URL's host[:port], as written."""
    parsed = URL(url)
    host = parsed.raw_host or ""
    if ":" in host:
        host = f"[{host}]"
    return f"{host}:{parsed.explicit_port}" if parsed.explicit_port else host


def _env_proxy(url: str) -> tuple[str | None, aiohttp.BasicAuth | None]:
    """The proxy ``HTTPS_PROXY``/``NO_PROXY`` (and ~/.netrc for its credentials) name for
    ``url``, as a session trusting the environment would find it, or none."""
    with contextlib.suppress(LookupError):
        proxy, auth = get_env_proxy_for_url(URL(url))
        return str(proxy), auth
    return None, None


def _selectors(label_selector: str | None, field_selector: str | None) -> dict[str, str]:
    params: dict[str, str] = {}
    if label_selector:
        params["labelSelector"] = label_selector
    if field_selector:
        params["fieldSelector"] = field_selector
    return params


def _watch_event(line: bytes, path: str) -> WatchEvent:
    event = orjson.loads(line)
    kind, obj = event.get("type", ""), event.get("object") or {}
    if kind == "ERROR":
        code = int(obj.get("code", 500))
        error = error_for(code, orjson.dumps(obj), "WATCH", path)
        raise error if isinstance(error, Gone) else ConnectionLost(str(error))
    return WatchEvent(kind, obj)


__all__ = ["ApiError", "ClientSettings", "KubeClient", "Obj", "StreamTarget", "WatchEvent"]
