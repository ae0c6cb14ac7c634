"""Ingresses: virtual -> host, load-balancer status back (docs/acceptance.md, scenario 31).

The host's ingress controller serves the host copy, so every name in the spec
must be the host name of the tenant object it means: backend Services and
TLS Secrets become ``<name>-x-<ns>-x-<vc>``, and the Secrets are synced before
the Ingress that names them (``EnsureSynced``; the Secret translator must
also count :func:`tls_secret_keys` as references, or it removes them again).
Resource backends (``apiGroup/kind/name``) point at objects of the virtual
cluster the host knows nothing of: they are left out, with a Warning.
``ingressClassName`` names a host class and is kept; with IngressClasses
synced from the host (``sync.fromHost.ingressClasses``), an Ingress naming
a class that is not synced is refused with a Warning.

Not handled here: controller-specific annotations that name Secrets or
Services (e.g. ingress-nginx ``auth-secret``) are copied verbatim, and
hostnames are first come, first served among all tenants of the host's
ingress controller (an admission policy on the host is the place for that).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

from contract.resources import INGRESSCLASSES, INGRESSES, NAMESPACES, Obj, Resource
from contract.translator import (
    Action,
    Context,
    Create,
    EnsureSynced,
    Patch,
    Side,
    Translator,
    Warn,
)
from translators import references
from translators.classes import IngressClassTranslator, ingress_class_synced, unsynced_class
from translators.objects import host_metadata, merge_patch, update_patch
from translators.referenced import ambiguous_names, name_conflict
from translators.secrets import SecretTranslator


def _spec(ingress: Obj) -> Obj:
    spec: Obj = ingress.get("spec") or {}
    return spec



def _backends(spec: Obj) -> Iterator[Obj]:
    if spec.get("defaultBackend"):
        yield spec["defaultBackend"]
    for rule in spec.get("rules") or ():
        for path in (rule.get("http") or {}).get("paths") or ():
            yield path.get("backend") or {}


def _named(spec: Obj) -> set[str]:
    """Names of the backend Services and TLS Secrets an Ingress spec refers to."""
    services = {b["service"]["name"] for b in _backends(spec)
                if (b.get("service") or {}).get("name")}
    return services | {t["secretName"] for t in spec.get("tls") or () if t.get("secretName")}


def _resource_backends(spec: Obj) -> list[str]:
    """``kind/name`` of every resource backend (left out on the host)."""
    refs = (b["resource"] for b in _backends(spec) if b.get("resource"))
    return sorted({f"{ref.get('kind', '')}/{ref.get('name', '')}" for ref in refs})


def _host_backend(backend: Obj, namespace: str, ctx: Context) -> Obj | None:
    """The backend with the Service's host name (port kept); None for a resource backend."""
    service = backend.get("service")
    if not service:
        return None
    return {**backend, "service": {**service, "name": ctx.host_name(service["name"], namespace)}}


def _host_rule(rule: Obj, namespace: str, ctx: Context) -> Obj:
    """A rule with its paths' backends translated; a rule left without paths loses ``http``."""
    host_rule = {k: v for k, v in rule.items() if k != "http"}
    http = rule.get("http")
    if http is None:
        return host_rule
    paths = []
    for path in http.get("paths") or ():
        backend = _host_backend(path.get("backend") or {}, namespace, ctx)
        if backend is not None:
            paths.append({**path, "backend": backend})
    if paths:
        host_rule["http"] = {**http, "paths": paths}
    return host_rule


def _host_tls(tls: Obj, namespace: str, ctx: Context) -> Obj:
    if not tls.get("secretName"):
        return tls
    return {**tls, "secretName": ctx.host_name(tls["secretName"], namespace)}


def host_ingress(virtual: Obj, ctx: Context) -> Obj:
    """The host Ingress: translated metadata, the spec with host names (see module doc)."""
    namespace = virtual["metadata"]["namespace"]
    spec = dict(_spec(virtual))
    spec.pop("defaultBackend", None)
    default = _host_backend(_spec(virtual).get("defaultBackend") or {}, namespace, ctx)
    if default is not None:
        spec["defaultBackend"] = default
    if "rules" in spec:
        spec["rules"] = [_host_rule(rule, namespace, ctx) for rule in spec["rules"] or ()]
    if "tls" in spec:
        spec["tls"] = [_host_tls(tls, namespace, ctx) for tls in spec["tls"] or ()]
    return {
        "apiVersion": INGRESSES.api_version,
        "kind": INGRESSES.kind,
        "metadata": host_metadata(virtual, ctx, INGRESSES.kind),
        "spec": spec,
    }


def status_patch(virtual: Obj, host: Obj) -> Obj:
    """``{"status": {"loadBalancer": ...}}`` mirroring the host's addresses, or {}."""
    def load_balancer(ingress: Obj) -> Obj:
        return {"loadBalancer": (ingress.get("status") or {}).get("loadBalancer") or {}}

    patch = merge_patch(load_balancer(virtual), load_balancer(host))
    return {"status": patch} if patch else {}


class IngressTranslator(Translator):
    kind = "ingresses"
    summary = "Sync Ingresses (backends and TLS Secrets renamed)."
    resource = INGRESSES

    @classmethod
    def ensures(cls) -> tuple[type[Translator], ...]:
        return (SecretTranslator,)

    def reads(self) -> Sequence[tuple[Side, Resource]]:
        return ((Side.VIRTUAL, INGRESSCLASSES), (Side.VIRTUAL, NAMESPACES))

    def to_host(self, virtual: Obj, ctx: Context) -> list[Action]:
        class_name = _spec(virtual).get("ingressClassName")
        refused = unsynced_class(IngressClassTranslator, class_name, ctx, ingress_class_synced)
        if refused:
            return refused
        ambiguous = ambiguous_names(_named(_spec(virtual)), virtual["metadata"]["namespace"], ctx)
        if ambiguous:  # the host controller would route to / serve another namespace's
            return [name_conflict("objects", ambiguous)]
        return self._write(virtual, Create(Side.HOST, self.host, host_ingress(virtual, ctx)))

    def sync(self, virtual: Obj, host: Obj, ctx: Context) -> list[Action]:
        actions: list[Action] = []
        patch = update_patch(host, host_ingress(virtual, ctx), ("spec",))
        if patch:
            meta = host["metadata"]
            actions = self._write(
                virtual, Patch(Side.HOST, self.host, meta["name"], meta["namespace"], patch)
            )
        status = status_patch(virtual, host)
        if status:
            meta = virtual["metadata"]
            actions.append(
                Patch(Side.VIRTUAL, self.resource, meta["name"], meta["namespace"], status,
                      "status")
            )
        return actions

    def _write(self, virtual: Obj, write: Create | Patch) -> list[Action]:
        """``write``, preceded by a Warning for left-out backends and the TLS Secrets' sync."""
        actions: list[Action] = []
        dropped = _resource_backends(_spec(virtual))
        if dropped:
            actions.append(Warn("ResourceBackendNotSynced", (
                "resource backends are not synced to the host cluster and were left out: "
                + ", ".join(dropped)
            )))
        tls = references.ingress_tls_secret_keys(virtual)
        actions += [EnsureSynced(SecretTranslator, key) for key in tls]
        actions.append(write)
        return actions
