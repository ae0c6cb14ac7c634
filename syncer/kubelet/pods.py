"""Which host pod a kubelet request for a virtual pod may reach.

Only the syncer's own caches decide, never a name in the request: the
request names a *virtual* namespace and pod, and the answer is the host pod
that this virtual cluster synced for exactly that virtual pod (same name,
namespace and uid recorded on it), or nothing. So a request can reach only
this tenant's pods: another tenant's pod, a host-only pod or a virtual name
forged to look like a host name all resolve to nothing (404).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from contract import naming
from contract.resources import Obj
from syncer.store import Store


@dataclass(frozen=True)
class HostPod:
    """The host pod behind a virtual one."""

    namespace: str
    name: str


class PodResolver(Protocol):
    """Maps a virtual pod to its host pod; None when this cluster synced no such pod."""

    def host_pod(self, namespace: str, name: str) -> HostPod | None: ...


class CachedPods:
    """:class:`PodResolver` over the engine's pod caches; with pod sync off (no caches)
    every pod resolves to nothing."""

    def __init__(self, virtual: Store | None, host: Store | None, vcluster: str,
                 host_namespace: str) -> None:
        self._virtual = virtual
        self._host = host
        self._vcluster = vcluster
        self._host_namespace = host_namespace

    def host_pod(self, namespace: str, name: str) -> HostPod | None:
        resolved = self.resolve(namespace, name)
        return None if resolved is None else resolved[1]

    def resolve(self, namespace: str, name: str) -> tuple[Obj, HostPod] | None:
        """The cached virtual pod and its host pod, or None (see the module docstring)."""
        if self._virtual is None or self._host is None:
            return None
        virtual = self._virtual.get(f"{namespace}/{name}")
        if virtual is None:
            return None
        host_name = naming.host_name(name, namespace, self._vcluster)
        host = self._host.get(f"{self._host_namespace}/{host_name}")
        if host is None or not naming.is_managed(host, self._vcluster):
            return None
        identity = naming.identity_of(host)
        uid = virtual["metadata"].get("uid")
        if identity is None or (identity.name, identity.namespace, identity.uid) != (
            name, namespace, uid
        ):
            return None
        return virtual, HostPod(self._host_namespace, host_name)
