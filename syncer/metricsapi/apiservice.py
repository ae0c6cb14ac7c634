"""The APIService that routes ``metrics.k8s.io`` to a server on the API server's own loopback.

kube-apiserver's aggregator resolves the Service of an APIService of type
ExternalName to ``https://<externalName>:<APIService port>`` (``ResolveCluster`` in
``k8s.io/apiserver/pkg/util/proxy``) and verifies the server's certificate
against the APIService's ``caBundle`` for the name ``<service>.<namespace>.svc``.
With ExternalName ``localhost``, a server next to kube-apiserver (same machine
locally, same pod in the chart) serves the group over loopback, and nothing
else is dialed.

Two users of :func:`objects`: the syncer registers :data:`VIRTUAL_SERVICE` in
its virtual cluster (:func:`register`), and the local host registers its
metrics-server (:mod:`syncer.local.cluster`).
"""

from __future__ import annotations

import base64

from contract import naming
from contract.resources import APISERVICES, SERVICES, Obj, Resource
from syncer.kube.client import KubeClient
from syncer.metricsapi.routes import GROUP, VERSION

NAME = f"{VERSION}.{GROUP}"
VIRTUAL_SERVICE = naming.METRICS_API_SERVICE
HOST_SERVICE = ("metrics-server", "kube-system")
"""(name, namespace) of the local host's route to its metrics-server."""
_LABELS = {"app.kubernetes.io/managed-by": "vcsync"}


def server_name(service: tuple[str, str]) -> str:
    """The name the aggregator verifies the server's certificate for."""
    return f"{service[0]}.{service[1]}.svc"


def objects(service: tuple[str, str], port: int, ca_bundle: bytes) -> list[tuple[Resource, Obj]]:
    """The ExternalName Service ``service`` (name, namespace) and the APIService routing
    ``metrics.k8s.io/v1beta1`` through it to ``localhost:port``, in creation order."""
    name, namespace = service
    route = {
        "apiVersion": "v1", "kind": "Service",
        "metadata": {"name": name, "namespace": namespace, "labels": _LABELS},
        "spec": {"type": "ExternalName", "externalName": "localhost",
                 "ports": [{"name": "https", "port": port, "protocol": "TCP"}]},
    }
    apiservice = {
        "apiVersion": "apiregistration.k8s.io/v1", "kind": "APIService",
        "metadata": {"name": NAME, "labels": _LABELS},
        "spec": {
            "group": GROUP, "version": VERSION,
            "groupPriorityMinimum": 100, "versionPriority": 100,
            "service": {"name": name, "namespace": namespace, "port": port},
            "caBundle": base64.b64encode(ca_bundle).decode(),
        },
    }
    return [(SERVICES, route), (APISERVICES, apiservice)]


async def register(client: KubeClient, port: int, ca_bundle: bytes) -> None:
    """Apply the virtual cluster's route to the syncer (server-side apply, forced: the
    syncer owns ``v1beta1.metrics.k8s.io`` there and restores it on every start)."""
    for res, obj in objects(VIRTUAL_SERVICE, port, ca_bundle):
        meta = obj["metadata"]
        await client.patch(res, meta["name"], obj, meta.get("namespace"), patch_type="apply",
                           force=True)
