"""The translator contract: the actions translators return, what they get from the world,
and how a kind declares itself.

A translator knows one kind and nothing about HTTP, queues or clocks. The
engine calls exactly one of three pure functions per reconcile, depending on
which side's object exists (both read from the caches, never from events):

- :meth:`Translator.to_host` — the virtual object exists, the host one does not
  (fromHost kinds: the host source is gone or filtered out, delete the copy);
- :meth:`Translator.sync` — both exist: minimal patches, or nothing;
- :meth:`Translator.to_virtual` — only the host object exists (toHost kinds:
  an orphan to delete; fromHost kinds: create the virtual copy).

``wants(source)`` filters the *source* side: the virtual object for toHost
kinds, the host object for fromHost kinds; a source not wanted is treated as
absent.

They return :data:`Action` values; the engine executes them in order and stops
at the first failure, so an :class:`EnsureSynced` placed before a
:class:`Create` guarantees the referenced object exists on the host before the
object that references it.

Invariants every translator keeps: it never mutates its inputs (cached
objects are shared), it builds new dicts; it never names a host namespace
other than ``ctx.host_namespace``; ``sync`` returns no write action when the
host object already matches (idle restarts must write nothing).

A kind declares itself once, on its class: the resource, the direction, the
configuration key and default, the shape of its options, the host
permissions it needs beyond its own resource, whether its host objects are
ours. The engine, the configuration reader, the chart generator and the
local host-namespace cleanup all read those declarations
(:mod:`contract.discovery` finds the classes; docs/plugins.md shows a plugin).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal, Protocol

from contract import naming
from contract.facts import Facts
from contract.options import Toggle
from contract.resources import Direction, Obj, Resource, Side

__all__ = [
    "ALL_IN_NAMESPACE", "Action", "Context", "Create", "Delete", "Direction", "EnsureSynced",
    "Facts", "HostRule", "Index", "IndexFunc", "IssueTokens", "Lookup", "Obj", "Patch",
    "Requeue", "Side", "TokenSpec", "Translator", "Trigger", "Warn", "dependency_ref",
]


# -- actions ----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Create:
    """POST ``obj`` (or, with ``subresource``, POST to ``name``'s subresource, e.g. binding)."""

    side: Side
    resource: Resource
    obj: Obj
    subresource: str | None = None
    name: str | None = None


@dataclass(frozen=True, slots=True)
class Patch:
    """A patch (JSON merge patch by default; ``"strategic"`` merges lists by key, e.g.
    containers by name). Virtual ``status`` patches go through the batched status writer."""

    side: Side
    resource: Resource
    name: str
    namespace: str | None
    patch: Obj
    subresource: str | None = None
    patch_type: Literal["merge", "strategic"] = "merge"


@dataclass(frozen=True, slots=True)
class Delete:
    """DELETE with a uid precondition (never delete a newer object of the same name)."""

    side: Side
    resource: Resource
    name: str
    namespace: str | None
    uid: str | None
    grace_period: int | None = None


@dataclass(frozen=True, slots=True)
class EnsureSynced:
    """Make sure the object ``key`` of ``kind`` exists on its target side now.

    ``kind`` is the translator class, so a typo cannot name nothing; a kind
    not declared in the referrer's :attr:`Translator.ensures` stops the
    engine at start-up, and one that is declared but switched off has nothing
    to ensure.
    """

    kind: type[Translator]
    key: str


@dataclass(frozen=True, slots=True)
class Warn:
    """A Warning event on the virtual object being reconciled (never names host objects)."""

    reason: str
    message: str


DEFAULT_TOKEN_EXPIRATION = 3600
"""What the API defaults a projected serviceAccountToken's expirationSeconds to."""


@dataclass(frozen=True, slots=True)
class TokenSpec:
    """One service-account token a pod mounts: issue it and store it under ``key``."""

    key: str
    audience: str | None
    expiration_seconds: int = DEFAULT_TOKEN_EXPIRATION


@dataclass(frozen=True, slots=True)
class IssueTokens:
    """Issue tokens for a virtual pod and keep them in a host Secret.

    Each token comes from a TokenRequest against the *virtual* API server for
    ``service_account``, bound to the virtual pod (so the virtual API server
    accepts it, and stops accepting it when the pod goes). ``secret`` is the
    host Secret's metadata; the engine adds the data (tokens plus ``ca.crt``
    of the virtual API server), re-issues before expiry, and makes ``owner``
    (the host pod) its owner so the host's garbage collector removes the
    Secret with the pod. Time decisions stay in the engine.
    """

    secret_meta: Obj
    namespace: str
    service_account: str
    pod_name: str
    pod_uid: str
    tokens: tuple[TokenSpec, ...]
    owner: Obj


@dataclass(frozen=True, slots=True)
class Requeue:
    """Reconcile this key again after ``after`` seconds (e.g. a grace period runs out)."""

    after: float


Action = Create | Patch | Delete | EnsureSynced | IssueTokens | Warn | Requeue


# -- what translators get from the world -------------------------------------


class Lookup(Protocol):
    """Read-only access to the engine's caches (no I/O: these are in-memory stores)."""

    def get(self, side: Side, resource: Resource, key: str) -> Obj | None: ...

    def by_index(self, side: Side, resource: Resource, index: str, value: str) -> list[Obj]: ...

    def in_namespace(self, side: Side, resource: Resource, namespace: str) -> list[Obj]: ...


@dataclass(frozen=True)
class Context:
    """Everything a translator may know about the world besides its inputs."""

    vcluster: str
    host_namespace: str
    lookup: Lookup
    facts: Facts = field(default_factory=Facts)
    """Computed by the engine before the first reconcile (API Service IP, policies, ...)."""

    def host_name(self, name: str, namespace: str) -> str:
        return naming.host_name(name, namespace, self.vcluster)

    def syncs(self, kind: type[Translator]) -> bool:
        """Whether ``kind`` is enabled in this virtual cluster."""
        return kind.kind in self.facts.synced


IndexFunc = Callable[[Obj], Iterable[str]]
ALL_IN_NAMESPACE = "*"


@dataclass(frozen=True)
class Index:
    """An index a translator needs on some cache, e.g. pods by referenced ConfigMap."""

    side: Side
    resource: Resource
    name: str
    func: IndexFunc


@dataclass(frozen=True)
class Trigger:
    """Events of another kind that must re-reconcile keys of this one.

    ``keys`` maps an object of ``resource`` on ``side`` to keys of this
    translator (e.g. a pod to the ConfigMaps it references); the key
    ``<namespace>/*`` stands for every virtual object of this kind in that
    namespace (e.g. a namespace's labels changed: relabel its pods).
    """

    side: Side
    resource: Resource
    keys: IndexFunc


def dependency_ref(kind: str, namespace: str, name: str) -> str:
    """How :meth:`Translator.host_dependencies` names a host object."""
    return f"{kind}/{namespace}/{name}"


READ = ("get", "list", "watch")
WRITE = ("create", "delete", "get", "list", "patch", "watch")


@dataclass(frozen=True)
class HostRule:
    """Host permissions a kind needs besides its own resource and the caches it reads
    (e.g. pods: their ``log`` subresource for the kubelet endpoint)."""

    resource: Resource
    verbs: tuple[str, ...]
    subresource: str = ""


# -- the contract -------------------------------------------------------------


class Translator(ABC):
    """One kind's translation. Subclasses set the class attributes and the three methods.

    ``options`` is the kind's section of the configuration, e.g.
    ``{"enabled": True, "all": False}`` for ``sync.toHost.configMaps``.

    The class attributes are the kind's declaration (see the module docstring).
    """

    kind: ClassVar[str]
    """Unique name; the configuration key (``sync.<direction>.<kind>``, or
    ``plugins.<kind>`` for a third-party kind) unless :attr:`section` says otherwise."""
    direction: ClassVar[Direction] = Direction.TO_HOST
    section: ClassVar[str | None] = None
    """The key of a built-in kind's section under ``sync.<direction>`` (default: ``kind``);
    for a kind whose name is taken in the other direction (``sync.fromHost.priorityClasses``
    next to ``sync.toHost.priorityClasses``)."""
    summary: ClassVar[str] = ""
    """One line for the chart's schema and README: what ``enabled`` turns on."""
    enabled_by_default: ClassVar[bool] = False
    options_type: ClassVar[type[Toggle]] = Toggle
    """The shape of the kind's configuration section (:mod:`contract.options`)."""
    resource: ClassVar[Resource]
    host_resource: ClassVar[Resource | None] = None
    host_rules: ClassVar[tuple[HostRule, ...]] = ()
    """Host permissions beyond the kind's own resource (written for toHost kinds, read for
    fromHost kinds) and the host caches it reads; the chart's Role grants them."""
    manages_host_objects: ClassVar[bool] = True
    """Its host objects carry this cluster's managed-by label (deleted with the cluster);
    False for kinds that only read the host."""
    recreate_on_new_uid: ClassVar[bool] = True
    """A virtual object re-created under the same name gets a fresh host copy."""

    def __init__(self, options: Mapping[str, Any] | None = None) -> None:
        self.options: Mapping[str, Any] = options or {}

    @classmethod
    def config_key(cls) -> str:
        """The key of the kind's section under ``sync.<direction>``."""
        return cls.section or cls.kind

    @classmethod
    def ensures(cls) -> tuple[type[Translator], ...]:
        """Kinds this one may name in :class:`EnsureSynced` (a method, not an attribute:
        kinds that ensure each other's objects import each other's modules)."""
        return ()

    @property
    def host(self) -> Resource:
        return self.host_resource or self.resource

    def indexes(self) -> Sequence[Index]:
        return ()

    def host_permissions(self) -> tuple[HostRule, ...]:
        """Everything the kind needs on the host: its own resource (written for toHost
        kinds, read for fromHost kinds), the host caches it reads or indexes or is
        triggered by, and :attr:`host_rules`. The chart's Role grants exactly these
        (``helm/generate.py`` writes them to ``files/host-rules.yaml``)."""
        own = HostRule(self.host, WRITE if self.direction is Direction.TO_HOST else READ)
        cached = [*self.reads(), *((i.side, i.resource) for i in self.indexes()),
                  *((t.side, t.resource) for t in self.triggers())]
        return (own, *(HostRule(resource, READ) for side, resource in cached
                       if side is Side.HOST), *self.host_rules)

    def reads(self) -> Sequence[tuple[Side, Resource]]:
        """Caches the translator reads through ``ctx.lookup`` (the engine watches them)."""
        return ()

    def triggers(self) -> Sequence[Trigger]:
        return ()

    def host_label_selector(self, ctx: Context) -> str:
        """Which host objects to watch: by default only ours."""
        return f"{naming.LABEL_MANAGED_BY}={ctx.vcluster}"

    def virtual_key(self, host: Obj, ctx: Context) -> str | None:
        """The virtual key a host object belongs to (from its identity annotations).

        Host objects of our kind made for *another* virtual kind (e.g. a pod's
        token Secret) are not this translator's: their identity kind differs.
        """
        identity = naming.identity_of(host)
        if identity is None or identity.kind != self.resource.kind:
            return None
        return f"{identity.namespace}/{identity.name}" if identity.namespace else identity.name

    def host_dependencies(self, host: Obj) -> Iterable[str]:
        """Host objects (``Kind/namespace/name``, of kinds in :meth:`reads`) whose cached
        state decides :meth:`virtual_key` of ``host`` (an Event: its involved object).

        The engine files ``host`` again, and reconciles its key, when one of them
        is added, removed or changes identity: an object seen before what it
        depends on must not stay ownerless. Pure function of ``host``.
        """
        return ()

    def wants(self, source: Obj, ctx: Context) -> bool:
        """Whether the source object (virtual for toHost, host for fromHost) is synced."""
        return True

    @abstractmethod
    def to_host(self, virtual: Obj, ctx: Context) -> list[Action]: ...

    @abstractmethod
    def sync(self, virtual: Obj, host: Obj, ctx: Context) -> list[Action]: ...

    def to_virtual(self, host: Obj, ctx: Context) -> list[Action]:
        """Only the host copy exists: for toHost kinds it is an orphan, delete it."""
        meta = host["metadata"]
        return [Delete(Side.HOST, self.host, meta["name"], meta.get("namespace"), meta.get("uid"))]
