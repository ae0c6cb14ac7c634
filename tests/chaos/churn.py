"""A bounded churn workload against a virtual cluster, for the chaos tests.

Why this shape: it exercises what a tenant's day does to the syncer. Each
*app* is a Deployment whose pods use a ConfigMap and a Secret (env, envFrom
and volumes, so both must reach the host before the pods), and a Service
selecting those pods. Apps are created, changed (ConfigMap and Secret data,
the image, which rolls the pods, and the replica count) and deleted, at a
given rate until a given number of objects has been created. The pods come
from the *virtual* controller-manager and run on the host's kwok nodes, so
every host pod the syncer creates has to become Running and be reported back.

Names are never reused (``app-<n>`` counts up), so every host name has one
virtual source in the whole run and a second creation of a host name is a
re-creation, never a legitimate new object.

The workload outlives control-plane restarts: a request that cannot reach
the virtual API server (connection refused, 5xx, 429) is retried for up to
:attr:`ChurnSpec.outage` seconds; a create that landed before the connection
broke (AlreadyExists on the retry) and a delete that did (NotFound) count as
done. What it did is counted in :class:`ChurnRecord` for the tests' figures.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import random
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from contract import resources as r
from contract.resources import Obj, Resource
from syncer.kube.client import KubeClient
from syncer.kube.errors import (
    AlreadyExists,
    ConnectionLost,
    Forbidden,
    NotFound,
    ServerError,
    TooManyRequests,
    Unauthorized,
)

T = TypeVar("T")
_TRANSIENT = (ConnectionLost, ServerError, TooManyRequests, Forbidden, Unauthorized)
"""Answers of an API server that is down or coming back: a restarted kube-apiserver
serves requests before its authorizer's caches are filled, so even a cluster-admin
account is refused (403) for a moment."""
_IMAGES = ("registry.invalid/churn/app:v1", "registry.invalid/churn/app:v2",
           "registry.invalid/churn/app:v3")
_KINDS: tuple[Resource, ...] = (r.CONFIGMAPS, r.SECRETS, r.DEPLOYMENTS, r.SERVICES)
"""What one app is made of, in creation order (references before referrers)."""


@dataclass(frozen=True)
class ChurnSpec:
    """How much churn: ``objects`` virtual objects created in total, ``rate`` operations/s."""

    objects: int
    rate: float
    namespaces: int = 2
    live_apps: int = 8
    """At most this many apps exist at once (deletes keep the set bounded)."""
    max_replicas: int = 2
    seed: int = 0
    prefix: str = "churn"
    """Namespaces are ``<prefix>-<i>``: workloads with other prefixes never share a name."""
    outage: float = 180.0
    """How long one request keeps retrying while the virtual API is unreachable."""


@dataclass
class ChurnRecord:
    """What the workload did, for the tests' figures and final checks."""

    counts: Counter[str] = field(default_factory=Counter)
    """``create ConfigMap``, ``update Deployment image``, ``delete Service``, ``retry``..."""
    live: dict[tuple[str, str, str], str] = field(default_factory=dict)
    """(kind, namespace, name) -> uid of every object the workload created and still keeps."""
    created: int = 0
    operations: int = 0
    started: float = 0.0
    finished: float = 0.0

    def summary(self) -> dict[str, Any]:
        return {"objects_created": self.created, "operations": self.operations,
                "seconds": round(self.finished - self.started, 1),
                "live_objects": len(self.live), "counts": dict(sorted(self.counts.items()))}


@dataclass
class _App:
    namespace: str
    name: str
    replicas: int
    image: int = 0
    version: int = 1


class Churn:
    """Drive :class:`ChurnSpec` against ``client`` (the virtual API server)."""

    def __init__(self, client: KubeClient, spec: ChurnSpec) -> None:
        self.client = client
        self.spec = spec
        self.record = ChurnRecord()
        self.done = asyncio.Event()
        self._rng = random.Random(spec.seed)
        self._apps: list[_App] = []
        self._next = 0

    @property
    def namespaces(self) -> list[str]:
        return [f"{self.spec.prefix}-{i}" for i in range(self.spec.namespaces)]

    def progressed(self, created: int) -> bool:
        """Whether ``created`` objects were created, or the run is over (fault schedules)."""
        return self.record.created >= created or self.done.is_set()

    # -- the run -----------------------------------------------------------------------

    async def run(self) -> ChurnRecord:
        """Create the namespaces, then operate at ``rate`` until ``objects`` were created."""
        self.record.started = time.monotonic()
        try:
            for namespace in self.namespaces:
                await self._create(r.NAMESPACES, {"metadata": {"name": namespace}}, None)
            start = time.monotonic()
            while self.record.created < self.spec.objects:
                await self._step()
                self.record.operations += 1
                due = start + self.record.operations / self.spec.rate
                await asyncio.sleep(max(0.0, due - time.monotonic()))
        finally:
            self.record.finished = time.monotonic()
            self.done.set()
        return self.record

    async def _step(self) -> None:
        """One operation, chosen so that the live set stays between 1 and ``live_apps``."""
        live = len(self._apps)
        if live < 2 or (live < self.spec.live_apps and self._rng.random() < 0.35):
            await self._create_app()
            return
        app = self._rng.choice(self._apps)
        choice = self._rng.random()
        if choice < 0.2 or (live >= self.spec.live_apps and choice < 0.35):
            await self._delete_app(app)
        elif choice < 0.45:
            await self._bump_data(app)
        elif choice < 0.7:
            await self._change_image(app)
        else:
            await self._scale(app)

    # -- operations ----------------------------------------------------------------------

    async def _create_app(self) -> None:
        namespace = self.namespaces[self._next % len(self.namespaces)]
        app = _App(namespace, f"app-{self._next}", self._rng.randint(1, self.spec.max_replicas))
        self._next += 1
        for resource, obj in zip(_KINDS, _manifests(app), strict=True):
            await self._create(resource, obj, namespace)
        self._apps.append(app)

    async def _delete_app(self, app: _App) -> None:
        self._apps.remove(app)
        for resource in reversed(_KINDS):
            await self._delete(resource, _name(app, resource), app.namespace)

    async def _bump_data(self, app: _App) -> None:
        app.version += 1
        await self._patch(r.CONFIGMAPS, f"{app.name}-cfg", app.namespace,
                          {"data": _config_data(app)}, "ConfigMap data")
        await self._patch(r.SECRETS, f"{app.name}-sec", app.namespace,
                          {"data": _secret_data(app)}, "Secret data")

    async def _change_image(self, app: _App) -> None:
        app.image = (app.image + 1) % len(_IMAGES)
        patch = {"spec": {"template": {"spec": {"containers": [
            {"name": "app", "image": _IMAGES[app.image]}]}}}}
        await self._patch(r.DEPLOYMENTS, app.name, app.namespace, patch, "Deployment image",
                          strategic=True)

    async def _scale(self, app: _App) -> None:
        app.replicas = self._rng.randint(1, self.spec.max_replicas)
        await self._patch(r.DEPLOYMENTS, app.name, app.namespace,
                          {"spec": {"replicas": app.replicas}}, "Deployment replicas")

    # -- requests that survive an API server restart --------------------------------------

    async def _retrying(self, call: Callable[[], Awaitable[T]]) -> T:
        deadline = time.monotonic() + self.spec.outage
        delay = 0.5
        while True:
            try:
                return await call()
            except _TRANSIENT:
                if time.monotonic() > deadline:
                    raise
                self.record.counts["retry"] += 1
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)

    async def _create(self, resource: Resource, obj: Obj, namespace: str | None) -> None:
        name = obj["metadata"]["name"]
        retried = self.record.counts["retry"]
        try:
            created = await self._retrying(lambda: self.client.create(resource, obj, namespace))
        except AlreadyExists:
            if self.record.counts["retry"] == retried:
                raise  # not our own earlier attempt: names are never reused
            created = await self._retrying(lambda: self.client.get(resource, name, namespace))
        self.record.live[(resource.kind, namespace or "", name)] = created["metadata"]["uid"]
        self.record.counts[f"create {resource.kind}"] += 1
        self.record.created += 1

    async def _patch(self, resource: Resource, name: str, namespace: str, patch: Obj,
                     what: str, strategic: bool = False) -> None:
        await self._retrying(lambda: self.client.patch(
            resource, name, patch, namespace, patch_type="strategic" if strategic else "merge"))
        self.record.counts[f"update {what}"] += 1

    async def _delete(self, resource: Resource, name: str, namespace: str) -> None:
        uid: str | None = self.record.live.pop((resource.kind, namespace, name))
        if resource == r.SERVICES:
            uid = None  # the syncer re-created it with the host's ClusterIP (a new uid)
        # NotFound: an earlier attempt landed before its answer was lost.
        with contextlib.suppress(NotFound):
            await self._retrying(lambda: self.client.delete(resource, name, namespace, uid=uid))
        self.record.counts[f"delete {resource.kind}"] += 1

    # -- checks after the run ------------------------------------------------------------

    async def lost_or_recreated(self) -> list[str]:
        """Objects the workload created and kept that are gone, or came back as another uid.

        Services are the exception for the uid: the syncer re-creates a virtual
        Service once, with the ClusterIP the host allocated (see
        ``translators.services``).
        """
        found: list[str] = []
        for (kind, namespace, name), uid in sorted(self.record.live.items()):
            resource = next(k for k in (*_KINDS, r.NAMESPACES) if k.kind == kind)
            try:
                obj = await self.client.get(resource, name, namespace or None)
            except NotFound:
                found.append(f"lost: virtual {kind} {namespace}/{name}")
                continue
            if kind != "Service" and obj["metadata"]["uid"] != uid:
                found.append(f"re-created: virtual {kind} {namespace}/{name}")
        return found

    async def unsettled(self) -> list[str]:
        """Deployments of live apps whose pods are not all updated and available."""
        found: list[str] = []
        for app in self._apps:
            d = await self.client.get(r.DEPLOYMENTS, app.name, app.namespace)
            spec, status = d.get("spec") or {}, d.get("status") or {}
            want = spec.get("replicas", 1)
            done = (status.get("observedGeneration") == d["metadata"].get("generation")
                    and status.get("updatedReplicas") == want
                    and status.get("availableReplicas") == want
                    and status.get("replicas") == want)
            if not done:
                shown = {k: status.get(k) for k in ("replicas", "updatedReplicas",
                                                     "availableReplicas")}
                found.append(f"{app.namespace}/{app.name}: want {want}, status {shown}")
        return found


# -- manifests -----------------------------------------------------------------------------


def _name(app: _App, resource: Resource) -> str:
    suffix = {"ConfigMap": "-cfg", "Secret": "-sec"}.get(resource.kind, "")
    return app.name + suffix


def _config_data(app: _App) -> dict[str, str]:
    return {"version": str(app.version), "app.conf": f"name={app.name}\nversion={app.version}\n"}


def _secret_data(app: _App) -> dict[str, str]:
    return {"token": base64.b64encode(f"{app.name}-{app.version}".encode()).decode()}


def _manifests(app: _App) -> list[Obj]:
    """ConfigMap, Secret, Deployment, Service of one app (the order of :data:`_KINDS`)."""
    labels = {"app": app.name, "churn": "yes"}
    cfg, sec = f"{app.name}-cfg", f"{app.name}-sec"
    container = {
        "name": "app", "image": _IMAGES[app.image],
        "env": [
            {"name": "VERSION", "valueFrom": {"configMapKeyRef": {"name": cfg, "key": "version"}}},
            {"name": "TOKEN", "valueFrom": {"secretKeyRef": {"name": sec, "key": "token"}}},
        ],
        "envFrom": [{"configMapRef": {"name": cfg}}],
        "volumeMounts": [{"name": "cfg", "mountPath": "/etc/app"},
                         {"name": "sec", "mountPath": "/etc/secret"}],
    }
    pod_spec = {
        "containers": [container],
        "volumes": [{"name": "cfg", "configMap": {"name": cfg}},
                    {"name": "sec", "secret": {"secretName": sec}}],
        "terminationGracePeriodSeconds": 1,
    }
    return [
        {"metadata": {"name": cfg, "labels": labels}, "data": _config_data(app)},
        {"metadata": {"name": sec, "labels": labels}, "data": _secret_data(app)},
        {"apiVersion": "apps/v1", "kind": "Deployment",
         "metadata": {"name": app.name, "labels": labels},
         "spec": {"replicas": app.replicas, "selector": {"matchLabels": {"app": app.name}},
                  "template": {"metadata": {"labels": labels}, "spec": pod_spec}}},
        {"metadata": {"name": app.name, "labels": labels},
         "spec": {"selector": {"app": app.name}, "ports": [{"port": 80, "targetPort": 8080}]}},
    ]
