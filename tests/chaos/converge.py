"""The convergence oracle: what the syncer would still have to write, judged from scratch.

Why not ask the syncer: after a fault the syncer's caches are exactly what is
in doubt. The oracle lists both API servers fresh (no cache, no watch), runs
the *real* enabled translators over those lists through the engine's own
decision (:func:`syncer.planning.plan`, its actions dispatched by
:func:`syncer.planning.execute` to a recording executor, as ``vcsync
translate`` does offline over :class:`syncer.offline.ManifestLookup`), and
reports every action that would still be a write on either side, plus what no
action shows:

- two host objects claiming one virtual object (a duplicate);
- a managed host object (our ``managed-by`` label) that no translator claims
  and that is not the token Secret of a live pod (an orphan nobody would
  collect);
- a pod or Service whose virtual status is not the host's (phase, conditions,
  container statuses, IPs, node; ClusterIP, LoadBalancer ingress), checked
  independently of the translators, so a translator bug cannot hide itself.

Legitimate no-ops are not differences: ``Warn`` and ``Requeue`` actions (no
object is missing for them), token Secrets that are present and fresh (the
writer only re-issues due ones), and node status differences that are only
heartbeat times (the syncer copies those at most once a minute, by design).

:func:`compare` is the pure core (plain dicts in, text out; unit-tested in
``tests/unit/test_chaos_converge.py``); :func:`differences` feeds it from a
:class:`tests.cluster.conftest.Stack`; :func:`wait_converged` polls it.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import orjson

from contract import naming
from contract import resources as r
from contract.facts import Facts
from contract.resources import Obj, Resource
from contract.translator import (
    Context,
    Create,
    Delete,
    IssueTokens,
    Patch,
    Side,
    Translator,
)
from syncer import config as config_mod
from syncer.app import select_translators, translator_facts
from syncer.kube.errors import KubeError
from syncer.local.hostns import managed_kinds
from syncer.offline import ManifestLookup
from syncer.planning import ensure_actions, plan, record
from syncer.store import object_key
from syncer.writer import TOKEN_REFRESH_AT
from tests.cluster.conftest import Stack
from translators import nodes

Listed = tuple[Side, Resource]
_PATCH_TEXT = 240
_SHOWN_ON_TIMEOUT = 40


@dataclass
class World:
    """Both sides as listed, and what the syncer is configured with."""

    vcluster: str
    host_namespace: str
    translators: Sequence[Translator]
    facts: Facts
    objects: dict[Listed, list[Obj]] = field(default_factory=dict)
    now: float = field(default_factory=time.time)

    def items(self, side: Side, resource: Resource) -> list[Obj]:
        return self.objects.get((side, resource), [])


# -- what to list ---------------------------------------------------------------------


def watched(translators: Iterable[Translator], vcluster: str) -> dict[Listed, str]:
    """(side, resource) -> host label selector, as the engine's informers are made.

    Mirrors ``Controller.__init__``/``_wire`` and ``InformerSet.informer``: a
    translator's own host kind uses its ``host_label_selector``, every other
    host cache the ownership selector, and the first registration wins. The
    managed host kinds are added so that orphans of disabled kinds show too.
    """
    owned = f"{naming.LABEL_MANAGED_BY}={vcluster}"
    ctx = Context(vcluster, "", ManifestLookup())
    found: dict[Listed, str] = {}
    for t in translators:
        found.setdefault((Side.VIRTUAL, t.resource), "")
        found.setdefault((Side.HOST, t.host), t.host_label_selector(ctx))
        needs = [(i.side, i.resource) for i in t.indexes()]
        needs += [*t.reads(), *((tr.side, tr.resource) for tr in t.triggers())]
        for side, resource in needs:
            found.setdefault((side, resource), owned if side == Side.HOST else "")
    for resource in managed_kinds():
        found.setdefault((Side.HOST, resource), owned)
    return found


# -- the pure core ------------------------------------------------------------------


def compare(world: World) -> list[str]:
    """Every difference between the host and what the translators make of the virtual state."""
    lookup = ManifestLookup(i for t in world.translators for i in t.indexes())
    for (side, resource), items in world.objects.items():
        for item in items:
            lookup.add(side, _typed(item, resource))
    ctx = Context(world.vcluster, world.host_namespace, lookup, facts=world.facts)
    found: list[str] = []
    for t in world.translators:
        found += _translator_differences(t, ctx, world)
    found += _unclaimed(world, ctx)
    found += _status_differences(world)
    return found


def _typed(item: Obj, resource: Resource) -> Obj:
    """LIST items carry no apiVersion/kind; the lookup files objects by them."""
    return {**item, "apiVersion": resource.api_version, "kind": resource.kind}


def _owners(t: Translator, ctx: Context, hosts: Iterable[Obj]) -> dict[str, list[Obj]]:
    owners: dict[str, list[Obj]] = {}
    for host in hosts:
        key = t.virtual_key(host, ctx)
        if key is not None:
            owners.setdefault(key, []).append(host)
    return owners


def _translator_differences(t: Translator, ctx: Context, world: World) -> list[str]:
    virtuals = {object_key(v): v for v in world.items(Side.VIRTUAL, t.resource)}
    owners = _owners(t, ctx, world.items(Side.HOST, t.host))
    found: list[str] = []
    for key in sorted(virtuals.keys() | owners.keys()):
        hosts = owners.get(key, [])
        if len(hosts) > 1:
            names = ", ".join(sorted(h["metadata"]["name"] for h in hosts))
            found.append(f"duplicate: {len(hosts)} host {t.host.kind}s for virtual {key}: {names}")
        virtual, host = virtuals.get(key), (hosts[0] if hosts else None)
        pending = _Pending(t, ctx, world, virtual, host)
        record(plan(t, ctx, virtual, host), pending)
        found += [f"{t.kind} {key}: {text}" for text in pending.found]
    return found


class _Pending:
    """The judge's executor (:class:`syncer.planning.Executor`) for one key: what each
    action would still write, as text; legitimate no-ops add nothing."""

    def __init__(self, t: Translator, ctx: Context, world: World, virtual: Obj | None,
                 host: Obj | None) -> None:
        self.t, self.ctx, self.world = t, ctx, world
        self.virtual, self.host = virtual, host
        self.found: list[str] = []

    async def create(self, action: Create) -> None:
        self.found.append(f"missing: would create {_target(action)}")

    async def patch(self, action: Patch) -> None:
        if not _heartbeat_only(self.t, action, self.ctx, self.virtual, self.host):
            self.found.append(f"stale: would patch {_target(action)}: {_short(action.patch)}")

    async def delete(self, action: Delete) -> None:
        self.found.append(f"extra: would delete {_target(action)}")

    async def ensure(self, kind: type[Translator], key: str) -> None:
        self._add(_ensure_pending(self.world, self.ctx, kind, key))

    async def issue_tokens(self, action: IssueTokens) -> float | None:
        self._add(_tokens_pending(action, self.ctx, self.world))
        return None

    async def warn(self, reason: str, message: str) -> None:
        """A Warning writes no object: nothing is missing for it."""

    async def requeue(self, after: float) -> None:
        """Nor does a requeue."""

    def _add(self, text: str | None) -> None:
        if text:
            self.found.append(text)


def _target(action: Create | Patch | Delete) -> str:
    if isinstance(action, Create):
        meta = action.obj.get("metadata") or {}
        name, namespace = action.name or meta.get("name", ""), meta.get("namespace")
        sub = action.subresource
    else:
        name, namespace = action.name, action.namespace
        sub = None if isinstance(action, Delete) else action.subresource
    where = f"{namespace}/{name}" if namespace else name
    return f"{action.side} {action.resource.kind} {where}" + (f" ({sub})" if sub else "")


def _short(patch: Obj) -> str:
    text = orjson.dumps(patch, option=orjson.OPT_SORT_KEYS).decode()
    return text if len(text) <= _PATCH_TEXT else text[:_PATCH_TEXT] + "..."


def _without_heartbeats(node: Obj) -> Obj:
    status = node.get("status") or {}
    conditions = [
        {k: v for k, v in c.items() if k != "lastHeartbeatTime"}
        for c in status.get("conditions") or []
    ]
    return {**node, "status": {**status, "conditions": conditions}}


def _heartbeat_only(t: Translator, action: Patch, ctx: Context, virtual: Obj | None,
                    host: Obj | None) -> bool:
    """A virtual node status patch that only moves heartbeat times (copied once a minute)."""
    if t.kind != "nodes" or action.subresource != "status" or virtual is None or host is None:
        return False
    return not nodes.status_patch(_without_heartbeats(virtual), _without_heartbeats(host),
                                  ctx.facts.kubelet_endpoint)


def _ensure_pending(world: World, ctx: Context, kind: type[Translator], key: str) -> str | None:
    """An ``EnsureSynced`` is pending when the referenced copy would be created now."""
    peer = next((t for t in world.translators if t.kind == kind.kind), None)
    if peer is None:
        return None  # a disabled kind has nothing to ensure (as in the engine)
    virtual = ctx.lookup.get(Side.VIRTUAL, peer.resource, key)
    hosts = _owners(peer, ctx, world.items(Side.HOST, peer.host)).get(key, [])
    actions = ensure_actions(peer, ctx, virtual, hosts[0] if hosts else None)
    writes = [a for a in actions if isinstance(a, Create | Patch | Delete)]
    return f"missing referenced {kind.kind} {key}: would {_target(writes[0])}" if writes else None


def _tokens_pending(action: IssueTokens, ctx: Context, world: World) -> str | None:
    """The pod's token Secret must exist, belong to this host pod, and not be due."""
    meta = action.secret_meta
    secret = ctx.lookup.get(Side.HOST, r.SECRETS, f"{meta['namespace']}/{meta['name']}")
    if secret is None:
        return f"missing: token Secret {meta['name']}"
    owners = [o.get("uid") for o in secret["metadata"].get("ownerReferences") or []]
    if action.owner.get("uid") not in owners:
        return f"stale: token Secret {meta['name']} is owned by another host pod"
    due = float((secret["metadata"].get("annotations") or {}).get(TOKEN_REFRESH_AT, 0))
    return None if due > world.now else f"stale: token Secret {meta['name']} is due"


# -- host objects nobody claims -------------------------------------------------------


def _unclaimed(world: World, ctx: Context) -> list[str]:
    """Managed host objects with no virtual source that the translators would not collect.

    A pod's token Secret is claimed by its virtual pod (same uid); the host's
    garbage collector removes it with the host pod, which the oracle would
    already report as extra if its virtual pod were gone.
    """
    pods_by_uid = {p["metadata"].get("uid") for p in world.items(Side.VIRTUAL, r.PODS)}
    found: list[str] = []
    for resource in managed_kinds():
        claimers = [t for t in world.translators if t.host == resource]
        for host in world.items(Side.HOST, resource):
            if not naming.is_managed(host, world.vcluster):
                continue
            identity = naming.identity_of(host)
            name = f"host {resource.kind} {host['metadata']['name']}"
            if identity is None and _host_made(host, resource, world):
                continue
            if identity is None:
                found.append(f"unclaimed: {name} has our label but no virtual identity")
            elif identity.kind == "Pod" and resource == r.SECRETS:
                if identity.uid not in pods_by_uid:
                    found.append(f"extra: {name} is the token Secret of a pod that is gone "
                                 f"({identity.namespace}/{identity.name})")
            elif not any(t.virtual_key(host, ctx) for t in claimers):
                found.append(f"unclaimed: {name} (of virtual {identity.kind} "
                             f"{identity.namespace}/{identity.name}) has no enabled translator")
    return found


def _host_made(host: Obj, resource: Resource, world: World) -> bool:
    """Endpoints the host's endpoints controller keeps for one of our Services.

    That controller copies the Service's labels (ours included) onto the
    Endpoints it makes, but no identity annotations; it removes them with the
    Service.
    """
    if resource != r.ENDPOINTS:
        return False
    name = host["metadata"]["name"]
    return any(s["metadata"]["name"] == name for s in world.items(Side.HOST, r.SERVICES))


# -- status, checked without the translators -------------------------------------------


def pod_status_view(pod: Obj) -> Obj:
    """The parts of a pod's status (and node) that the virtual pod must show as on the host."""
    status = pod.get("status") or {}
    return {
        "nodeName": (pod.get("spec") or {}).get("nodeName"),
        "phase": status.get("phase"),
        "podIP": status.get("podIP"),
        "podIPs": status.get("podIPs"),
        "hostIP": status.get("hostIP"),
        "startTime": status.get("startTime"),
        "conditions": sorted((c.get("type"), c.get("status"))
                             for c in status.get("conditions") or []),
        "containerStatuses": [
            (c.get("name"), c.get("ready"), c.get("restartCount"), sorted(c.get("state") or {}),
             c.get("image"))
            for c in status.get("containerStatuses") or []
        ],
    }


def service_view(service: Obj) -> Obj:
    """What a virtual Service must show as on the host: its ClusterIP and LB ingress."""
    return {
        "clusterIP": (service.get("spec") or {}).get("clusterIP"),
        "ingress": ((service.get("status") or {}).get("loadBalancer") or {}).get("ingress"),
    }


def status_difference(kind: str, virtual: Obj, host: Obj) -> str | None:
    """One line naming the fields of ``virtual`` that differ from ``host``, or None."""
    view = pod_status_view if kind == "Pod" else service_view
    have, want = view(virtual), view(host)
    fields = [k for k in want if have.get(k) != want.get(k)]
    if not fields:
        return None
    shown = ", ".join(f"{k}={have.get(k)!r} (host {want.get(k)!r})" for k in fields)
    return f"status: virtual {kind} {object_key(virtual)}: {shown}"


def _status_differences(world: World) -> list[str]:
    """Pods and Services (not being deleted) whose virtual status is not the host's."""
    found: list[str] = []
    for resource in (r.PODS, r.SERVICES):
        hosts = {
            (i.namespace, i.name): h for h in world.items(Side.HOST, resource)
            if (i := naming.identity_of(h)) is not None and i.kind == resource.kind
        }
        for virtual in world.items(Side.VIRTUAL, resource):
            meta = virtual["metadata"]
            host = hosts.get((meta.get("namespace"), meta["name"]))
            if host is None or meta.get("deletionTimestamp") or host["metadata"].get(
                "deletionTimestamp"
            ):
                continue  # a missing copy is reported by the translators' plan
            text = status_difference(resource.kind, virtual, host)
            if text:
                found.append(text)
    return found


# -- against a stack ------------------------------------------------------------------------


def world_of(stack: Stack) -> World:
    """The stack's syncer configuration (enabled translators, translator facts), no objects."""
    cfg = config_mod.parse(stack.config)
    return World(stack.name, stack.host_namespace, select_translators(cfg),
                 translator_facts(cfg, stack.api_ip, ("127.0.0.1", stack.kubelet_port)))


async def _list(stack: Stack, side: Side, resource: Resource, selector: str) -> list[Obj]:
    client = stack.host if side == Side.HOST else stack.virtual
    namespace = stack.host_namespace if side == Side.HOST and resource.namespaced else None
    items, _ = await client.list(resource, namespace, label_selector=selector or None)
    return items


async def snapshot(stack: Stack) -> World:
    """Both sides listed now, straight from the API servers."""
    world = world_of(stack)
    wanted = watched(world.translators, world.vcluster)
    lists = await asyncio.gather(*(_list(stack, side, res, sel)
                                   for (side, res), sel in wanted.items()))
    world.objects = dict(zip(wanted, lists, strict=True))
    world.now = time.time()
    return world


async def differences(stack: Stack) -> list[str]:
    """Human-readable differences between the host and the virtual state ([] = converged)."""
    return compare(await snapshot(stack))


async def wait_converged(stack: Stack, timeout: float, what: str) -> float:
    """Poll :func:`differences` until it is empty twice in a row; return the seconds taken.

    Twice, because the lists of one snapshot are taken one after another:
    one empty answer could be a lucky interleaving of an object in flight.
    An API error (a component still coming back) counts as a difference.
    """
    start = time.monotonic()
    last: list[str] = []
    converged_at: float | None = None
    while True:
        try:
            last = await differences(stack)
        except KubeError as exc:
            last = [f"cannot list: {exc}"]
        now = time.monotonic()
        if not last:
            if converged_at is not None:
                return converged_at - start
            converged_at = now
        else:
            converged_at = None
        if now - start > timeout:
            shown = "\n  ".join(last[:_SHOWN_ON_TIMEOUT])
            more = f"\n  ... and {len(last) - _SHOWN_ON_TIMEOUT} more" if len(
                last) > _SHOWN_ON_TIMEOUT else ""
            raise AssertionError(f"{what}: not converged after {timeout:.0f}s; "
                                 f"{len(last)} differences:\n  {shown}{more}")
        await asyncio.sleep(0.5 if converged_at is not None else 1.0)
