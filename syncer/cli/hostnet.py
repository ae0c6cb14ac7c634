"""Which network namespace a local host's processes run in, and its forwarder.

Shared by ``vcsync host`` (which makes both) and the virtual-cluster commands
(which start processes inside and forward their API servers' ports).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass

from syncer.cli import kubeconfig
from syncer.cli.state import HostRecord
from syncer.local import network
from syncer.local.forward import Forwarder
from syncer.local.process import LaunchError


@dataclass(frozen=True)
class HostNetwork:
    """Where a local host's processes run, and how its ports reach the user."""

    netns: str
    forwarder: Forwarder

    def forward(self, port: int) -> None:
        self.forwarder.tell("add", port)

    def unforward(self, port: int) -> None:
        with contextlib.suppress(LaunchError):  # the host (and its forwarder) may be gone
            self.forwarder.tell("del", port)


def network_of(host_context: str) -> HostNetwork | None:
    """The namespace of the local host behind ``host_context`` (its own context, or any
    other context of the kubeconfig naming its API server, e.g. one with another user);
    None for other hosts and for local ones in the loopback layout."""
    server = _server_of(host_context)
    for record in HostRecord.all():
        if record.netns is None:
            continue
        ours = f"https://127.0.0.1:{record.plane.get('ports', {}).get('apiserver')}"
        if host_context == record.context or server == ours:
            return HostNetwork(record.netns,
                               Forwarder(record.netns, HostRecord.directory(record.name)))
    return None


def _server_of(context: str) -> str:
    config = kubeconfig.load()
    ctx = next((c.get("context") or {} for c in config["contexts"]
                if c.get("name") == context), {})
    cluster = next((c.get("cluster") or {} for c in config["clusters"]
                    if c.get("name") == ctx.get("cluster")), {})
    return str(cluster.get("server") or "")


@contextlib.contextmanager
def inside(host: HostNetwork | None) -> Iterator[None]:
    """This thread (and what it starts) in ``host``'s namespace for the block."""
    with network.entered(host.netns if host is not None else None):
        yield
