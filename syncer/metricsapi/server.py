"""The metrics API's listener: authenticate the front proxy, authorize the user, ask the host.

One request, in order:

1. TLS with a client certificate from the kubelet CA whose common name is the
   front proxy's (:data:`~syncer.kubelet.tls.FRONT_PROXY_COMMON_NAME`), else 401:
   only then do the ``X-Remote-*`` headers name a user the virtual kube-apiserver
   authenticated (without a user: 401);
2. the path is routed (:mod:`.routes`); discovery is answered only while the
   host serves ``metrics.k8s.io`` (else 503, which the aggregator shows as the
   APIService being unavailable, and ``kubectl top`` as "Metrics API not
   available");
3. a SubjectAccessReview against the *virtual* API decides, else 403 (kube-apiserver
   authorized the request already; this check makes the server safe on its own, as
   metrics-server's delegated authorization does);
4. the virtual objects the request names or selects are read from the virtual
   API (so label and field selectors mean exactly what they mean there), each is
   tied to its host pod through the syncer's caches (:mod:`syncer.kubelet.pods`),
   and the host's ``metrics.k8s.io`` is asked with the syncer's host identity for
   this cluster's pods only (its managed-by label) or for the nodes;
5. the answer holds only the virtual objects' names and labels (:mod:`.translate`).

Errors never carry host text: host failures become a 503 naming no host object.
"""

from __future__ import annotations

import logging
import ssl
from collections.abc import Callable

import orjson
from aiohttp import web

from contract import naming
from contract.resources import NODE_METRICS, NODES, POD_METRICS, PODS, SUBJECTACCESSREVIEWS, Obj
from syncer.kube.client import KubeClient
from syncer.kube.errors import ApiError, BadRequest, KubeError, NotFound
from syncer.kubelet.pods import CachedPods
from syncer.kubelet.routes import RouteError
from syncer.kubelet.tls import FRONT_PROXY_COMMON_NAME, peer_allowed
from syncer.metricsapi import routes, translate
from syncer.metricsapi.routes import GROUP_VERSION, MetricsCall

log = logging.getLogger(__name__)

HOST_UNAVAILABLE = (f"the host cluster does not serve {GROUP_VERSION} (it needs a "
                    "metrics-server, or its metrics-server is not ready)")


class Refused(Exception):
    """An answer other than 200: ``status`` and the message go to the caller as a Status."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


class MetricsApiServer:
    """Serves ``metrics.k8s.io/v1beta1`` of one virtual cluster; see the module docstring."""

    def __init__(self, pods: CachedPods, virtual: KubeClient, host: KubeClient,
                 host_namespace: str, vcluster: str, tls: ssl.SSLContext, *,
                 ready: Callable[[], bool]) -> None:
        self._pods = pods
        self._virtual = virtual
        self._host = host
        self._host_namespace = host_namespace
        self._vcluster = vcluster
        self._tls = tls
        self._ready = ready
        self._runner: web.AppRunner | None = None

    async def start(self, port: int) -> None:
        """Listen on 127.0.0.1:``port`` (the aggregator dials ``localhost``). ``reuse_port``:
        replicas of one syncer on one machine share it, as they share the kubelet port."""
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", port, ssl_context=self._tls,
                           reuse_port=True)
        await site.start()

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    async def _handle(self, request: web.Request) -> web.Response:
        try:
            code, body = 200, await self._answer(request)
        except Refused as exc:
            code, body = exc.status, translate.status(exc.status, str(exc))
            log.info("metrics API %s: %d %s", request.rel_url.raw_path, code, exc)
        return web.Response(status=code, body=orjson.dumps(body),
                            content_type="application/json")

    async def _answer(self, request: web.Request) -> Obj:
        transport = request.transport
        peer = transport.get_extra_info("peercert") if transport is not None else None
        if not peer_allowed(peer, FRONT_PROXY_COMMON_NAME):
            raise Refused(401, "only the virtual kube-apiserver's front proxy may call the "
                               "metrics API")
        who = routes.caller(request.headers.items())
        if who is None:
            raise Refused(401, "the front proxy named no user (X-Remote-User)")
        try:
            call = routes.parse(request.method, request.rel_url.raw_path, request.query)
        except RouteError as exc:
            raise Refused(exc.status, str(exc)) from exc
        if call is None:
            await self._check_host()
            return routes.DISCOVERY
        if not self._ready():
            raise Refused(503, "the syncer is starting: its caches are not synced yet")
        await self._authorize(who, call)
        return await (self._nodes(call) if call.resource == "nodes" else self._pods_of(call))

    async def _check_host(self) -> None:
        try:
            await self._host.request("GET", routes.PREFIX, retry=False)
        except KubeError as exc:
            raise _host_failure(exc) from exc

    async def _authorize(self, who: routes.Caller, call: MetricsCall) -> None:
        try:
            review = await self._virtual.create(SUBJECTACCESSREVIEWS,
                                                routes.access_review(who, call))
        except KubeError as exc:
            raise Refused(503, "the virtual API server could not review the access") from exc
        if not (review.get("status") or {}).get("allowed"):
            raise Refused(403, routes.forbidden_message(who, call))

    # -- answers -------------------------------------------------------------------------

    async def _pods_of(self, call: MetricsCall) -> Obj:
        if call.name:
            resolved = self._pods.resolve(call.namespace, call.name)
            if resolved is None:
                raise Refused(404, translate.not_found_message(call))
            virtual, host = resolved
            found = await self._host_get(POD_METRICS.path(host.namespace, host.name), call)
            return translate.pod_metrics(found, virtual)
        pods = await self._virtual_list(call)
        selector = f"{naming.LABEL_MANAGED_BY}={self._vcluster}"
        if call.namespace:
            selector += f",{naming.LABEL_NAMESPACE}={call.namespace}"
        host_items = await self._host_list(POD_METRICS.path(self._host_namespace), selector)
        return translate.metrics_list("pods", translate.pod_items(pods, host_items,
                                                                  self._host_name_of))

    def _host_name_of(self, pod: Obj) -> str | None:
        meta = pod["metadata"]
        host = self._pods.host_pod(meta["namespace"], meta["name"])
        return None if host is None else host.name

    async def _nodes(self, call: MetricsCall) -> Obj:
        if call.name:
            try:
                node = await self._virtual.get(NODES, call.name)
            except NotFound as exc:
                raise Refused(404, translate.not_found_message(call)) from exc
            except KubeError as exc:
                raise Refused(503, "the virtual API server could not be read") from exc
            found = await self._host_get(NODE_METRICS.path(name=call.name), call)
            return translate.node_metrics(found, node)
        nodes = await self._virtual_list(call)
        host_items = await self._host_list(NODE_METRICS.path(), "")
        return translate.metrics_list("nodes", translate.node_items(nodes, host_items))

    # -- reads ---------------------------------------------------------------------------

    async def _virtual_list(self, call: MetricsCall) -> list[Obj]:
        """The virtual objects the call selects: the virtual API applies the selectors."""
        resource = PODS if call.resource == "pods" else NODES
        try:
            items, _ = await self._virtual.list(
                resource, call.namespace or None, label_selector=call.label_selector or None,
                field_selector=call.field_selector or None)
        except BadRequest as exc:
            raise Refused(400, exc.message) from exc
        except KubeError as exc:
            raise Refused(503, "the virtual API server could not be read") from exc
        return items

    async def _host_get(self, path: str, call: MetricsCall) -> Obj:
        try:
            return await self._host.request("GET", path, retry=False)
        except NotFound as exc:
            raise Refused(404, translate.not_found_message(call)) from exc
        except KubeError as exc:
            raise _host_failure(exc) from exc

    async def _host_list(self, path: str, selector: str) -> list[Obj]:
        params = {"labelSelector": selector} if selector else None
        try:
            found = await self._host.request("GET", path, params=params, retry=False)
        except KubeError as exc:
            raise _host_failure(exc) from exc
        items = found.get("items") or []
        return [i for i in items if isinstance(i, dict)]


def _host_failure(exc: KubeError) -> Refused:
    """What the tenant is told when the host's metrics API fails: no host text."""
    if isinstance(exc, ApiError):
        return Refused(503, f"{HOST_UNAVAILABLE}; the host answered {exc.status}")
    return Refused(503, "the host API server is unreachable from the syncer")
