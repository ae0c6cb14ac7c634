"""Which network namespace a local host's processes run in, and its forwarder.

Shared by ``vcsync host`` (which makes both) and the virtual-cluster commands
(which start processes inside and forward their API servers' ports).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass

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
    """The namespace of the local host behind ``host_context``; None for other hosts and
    for local ones in the loopback layout."""
    for record in HostRecord.all():
        if record.context == host_context and record.netns is not None:
            return HostNetwork(record.netns,
                               Forwarder(record.netns, HostRecord.directory(record.name)))
    return None


@contextlib.contextmanager
def inside(host: HostNetwork | None) -> Iterator[None]:
    """This thread (and what it starts) in ``host``'s namespace for the block."""
    with network.entered(host.netns if host is not None else None):
        yield
