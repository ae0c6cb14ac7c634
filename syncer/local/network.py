"""The local host's network: a network namespace of its own, with realistic address ranges.

Why: Kubernetes refuses loopback addresses in Endpoints and EndpointSlices, so
on a host whose pods have 127.x addresses no Service ever gets endpoints. Real
ranges need somewhere to live where no packet can leave the machine: a
network namespace the project creates itself, holding

- ``lo``, and a veth pair ``vcsync0``/``vcsync1`` whose ends both stay inside;
- the node network :data:`NODE_CIDR` on ``vcsync0`` as a *local* route (every
  address in it is this namespace's own: kube-apiserver dialing node
  ``172.18.0.12``'s kubelet port reaches kwok's server, which listens on all
  of the namespace's addresses);
- pod (:data:`POD_CIDR`, kwok assigns from each node's ``podCIDR``) and Service
  (:data:`SERVICE_CIDR`) addresses with no route at all: a dial to one fails at
  once with "network is unreachable" and sends nothing anywhere.

Two ways to be inside one:

- a process enters a private, unnamed namespace for itself and its children
  (:func:`enter_private`: the test session, the benchmarks); it disappears
  with its last process;
- ``vcsync host create`` makes a named one (:func:`create_named`), whose
  processes outlive the command; the CLI enters it while it starts or probes
  components (:func:`entered`), and a forwarder (:mod:`syncer.local.forward`)
  carries the user's ``kubectl`` from 127.0.0.1 outside to the API servers
  inside.

Without the privilege to create a namespace, the launcher keeps the loopback
layout (:data:`LOOPBACK`) and says once what is lost.

Invariant: a process that uses a :class:`Layout` with ``isolated`` true is in a
namespace this module set up; nothing here ever adds a route out of one.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import hashlib
import ipaddress
import os
import socket
import subprocess
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

NODE_CIDR = "172.18.0.0/16"
POD_CIDR = "10.244.0.0/16"
SERVICE_CIDR = "10.96.0.0/16"
INTERFACE, PEER = "vcsync0", "vcsync1"
NETNS_DIR = Path("/run/netns")
_CLONE_NEWNET = 0x40000000
_FIRST_NODE = 10
_original: int | None = None
"""A descriptor of the namespace this process left in :func:`enter_private` (kept open so
that :func:`outside` can put a child back there)."""
LOST = ("Services with selectors get no Endpoints or EndpointSlices (pod IPs are loopback "
        "addresses, which Kubernetes refuses there)")


class NetworkError(RuntimeError):
    """A namespace could not be set up or entered; the message names the command."""


@dataclass(frozen=True)
class Layout:
    """Addresses the local host cluster uses: realistic inside a namespace, else loopback."""

    isolated: bool

    def node_ip(self, index: int) -> str:
        if not self.isolated:
            return "127.0.0.1"
        return str(ipaddress.ip_network(NODE_CIDR)[_FIRST_NODE + index])

    def node_pod_cidr(self, index: int) -> str | None:
        """The node's ``spec.podCIDR`` (a /24 of :data:`POD_CIDR`, as kind gives them)."""
        if not self.isolated:
            return None
        return str(list(ipaddress.ip_network(POD_CIDR).subnets(new_prefix=24))[index])

    @property
    def pod_cidr(self) -> str:
        return POD_CIDR if self.isolated else "127.128.0.0/16"

    @property
    def kubelet_bind(self) -> str:
        """Where kwok serves the kubelet API: every address of the namespace, or loopback."""
        return "0.0.0.0" if self.isolated else "127.0.0.1"


ISOLATED = Layout(isolated=True)
LOOPBACK = Layout(isolated=False)


def current() -> Layout:
    """The layout of the namespace this thread is in (the interface tells)."""
    names = {name for _, name in socket.if_nameindex()}
    return ISOLATED if INTERFACE in names else LOOPBACK


def _libc() -> ctypes.CDLL:
    return ctypes.CDLL(None, use_errno=True)


def _check(result: int, what: str) -> None:
    if result != 0:
        code = ctypes.get_errno()
        raise OSError(code, f"{what}: {os.strerror(code)}")


def _ip(*args: str, netns: str | None = None) -> None:
    command = ["ip", *(["-n", netns] if netns else []), *args]
    proc = subprocess.run(command, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise NetworkError(f"`{' '.join(command)}` failed: {proc.stderr.strip()}")


def _set_up(netns: str | None) -> None:
    """lo up, the veth pair, the node network as local addresses (see the module doc)."""
    _ip("link", "set", "lo", "up", netns=netns)
    _ip("link", "add", INTERFACE, "type", "veth", "peer", "name", PEER, netns=netns)
    gateway = ipaddress.ip_network(NODE_CIDR)[1]
    _ip("addr", "add", f"{gateway}/{ipaddress.ip_network(NODE_CIDR).prefixlen}", "dev",
        INTERFACE, netns=netns)
    for name in (INTERFACE, PEER):
        _ip("link", "set", name, "up", netns=netns)
    _ip("route", "add", "local", NODE_CIDR, "dev", INTERFACE, "table", "local", netns=netns)


def enter_private() -> Layout:
    """Move this process into a new, unnamed namespace set up as above.

    Call it before any thread exists: only the calling thread moves, and every
    thread and child created afterwards starts where it is. Returns the layout
    now in force: :data:`LOOPBACK` (with one line on stderr naming what is lost)
    when the namespace cannot be made.
    """
    global _original
    if current().isolated:
        return ISOLATED
    original = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
    try:
        _check(_libc().unshare(_CLONE_NEWNET), "unshare(CLONE_NEWNET)")
    except OSError as exc:
        os.close(original)
        if exc.errno not in (errno.EPERM, errno.EINVAL, errno.ENOSYS):
            raise
        _say_fallback(str(exc))
        return LOOPBACK
    _original = original
    _set_up(None)
    return ISOLATED


def _say_fallback(reason: str) -> None:
    print(f"vcsync: no network namespace ({reason}); loopback layout: {LOST}", flush=True)


def named_path(name: str) -> Path:
    return NETNS_DIR / name


def name_for(host: str, owner: str) -> str:
    """The namespace of host cluster ``host`` started by ``owner`` (``VCSYNC_OWNER``):
    unique per owner, so test sessions and users side by side never share one."""
    return f"vcsync-{hashlib.sha256(owner.encode()).hexdigest()[:8]}-{host}"


def owned_named(owner: str) -> list[str]:
    """Named namespaces of ``owner`` that still exist."""
    prefix = name_for("", owner)
    if not NETNS_DIR.is_dir():
        return []
    return sorted(p.name for p in NETNS_DIR.iterdir() if p.name.startswith(prefix))


def create_named(name: str) -> bool:
    """Create and set up the named namespace; False (and one line) without the privilege."""
    proc = subprocess.run(["ip", "netns", "add", name], capture_output=True, text=True,
                          check=False)
    if proc.returncode != 0:
        _say_fallback(proc.stderr.strip() or f"`ip netns add {name}` failed")
        return False
    try:
        _set_up(name)
    except NetworkError:
        delete_named(name)
        raise
    return True


def delete_named(name: str) -> None:
    """Remove the named namespace (its interfaces go with it); nothing if it is gone."""
    if named_path(name).exists():
        subprocess.run(["ip", "netns", "delete", name], capture_output=True, check=False)


def _setns(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        _check(_libc().setns(fd, _CLONE_NEWNET), f"setns({path})")
    finally:
        os.close(fd)


@contextlib.contextmanager
def entered(name: str | None) -> Iterator[None]:
    """This thread inside the named namespace for the block (a no-op for None).

    Sockets made in the block live there for good, and so do children started
    in it; afterwards the thread is back where it was.
    """
    if name is None:
        yield
        return
    back = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
    try:
        _setns(named_path(name))
        try:
            yield
        finally:
            _check(_libc().setns(back, _CLONE_NEWNET), "setns(back)")
    finally:
        os.close(back)


def outside() -> Callable[[], None] | None:
    """A ``preexec_fn`` that puts a child back into the namespace this process left in
    :func:`enter_private` (None if it left none): for package installs, the one thing
    allowed to reach the network."""
    original = _original
    if original is None:
        return None
    return lambda: _check(_libc().setns(original, _CLONE_NEWNET), "setns(original)")
