"""What the engine computes for translators before any reconcile (``Context.facts``).

Why one frozen dataclass: ``vcsync run`` (``syncer.app.translator_facts``),
``vcsync translate`` and the tests build it the same way, a translator reads
typed attributes instead of loosely named keys, and nothing can change it
under a running reconcile.
"""

from __future__ import annotations

from dataclasses import dataclass, field

Endpoint = tuple[str, int]
"""``(address, port)``: where a virtual Node's kubelet is reached."""


@dataclass(frozen=True)
class HostPolicy:
    """The platform's choices for tenants (``policies``); the defaults are the safe ones."""

    runtime_classes: frozenset[str] = field(default_factory=frozenset)
    schedulers: frozenset[str] = field(default_factory=frozenset)
    external_names: tuple[str, ...] = ()
    """Glob patterns of ExternalName targets allowed anyway (``translators.externalnames``)."""
    max_priority: int = 0
    allow_preemption: bool = False
    runtime_class: str = ""
    """Host RuntimeClass of pods that name none (``sync.toHost.pods.runtimeClassName``)."""
    priority_class: str = ""
    """Host PriorityClass of pods that get no other (``sync.toHost.pods.priorityClassName``)."""


@dataclass(frozen=True)
class Facts:
    """Facts from the host, the flags and the configuration; defaults suit unit tests."""

    api_service_ip: str = ""
    """ClusterIP of the host Service in front of the virtual API server."""
    pod_security_standard: str = "privileged"
    """``policies.podSecurityStandard``."""
    policy: HostPolicy = field(default_factory=HostPolicy)
    kubelet_endpoint: Endpoint | None = None
    """The syncer's kubelet endpoint (virtual Nodes point at it); None when it is off."""
    synced: frozenset[str] = frozenset()
    """The enabled kinds (``Translator.kind``): a translator whose objects name another
    kind's objects asks whether that kind is synced (``Context.syncs``)."""
