"""Helpers shared by tests: condition waits, kubectl, async clients."""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import ipaddress
import os
import subprocess
import time
import urllib.parse
import urllib.request
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar, overload

import orjson
import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from syncer.local import binaries
from syncer.local.cluster import ControlPlane

T = TypeVar("T")


@overload
async def wait_until(
    probe: Callable[[], Awaitable[T]], what: str, timeout: float = ..., interval: float = ...
) -> T: ...


@overload
async def wait_until(
    probe: Callable[[], T], what: str, timeout: float = ..., interval: float = ...
) -> T: ...


async def wait_until(
    probe: Callable[[], Any], what: str, timeout: float = 30.0, interval: float = 0.2
) -> Any:
    """Poll ``probe`` (sync or async) until it returns a truthy value; fail naming ``what``."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        result = probe()
        last = await result if inspect.isawaitable(result) else result
        if last:
            return last
        await asyncio.sleep(interval)
    raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}; last value: {last!r}")


def eventually(probe: Callable[[], T], what: str, timeout: float = 30.0,
               interval: float = 0.3) -> T:
    """Blocking twin of :func:`wait_until` for tests that drive subprocesses."""
    deadline = time.monotonic() + timeout
    while True:
        last = probe()
        if last:
            return last
        if time.monotonic() >= deadline:
            raise AssertionError(
                f"timed out after {timeout:.0f}s waiting for {what}; last value: {last!r}")
        time.sleep(interval)


def kubectl(cluster: ControlPlane, *args: str, check: bool = True) -> str:
    """Run the pinned kubectl against ``cluster``; return stdout (raise with stderr)."""
    proc = subprocess.run(
        [str(binaries.binary_path("kubectl")), f"--kubeconfig={cluster.kubeconfig}", *args],
        capture_output=True,
        text=True,
        timeout=60,
    )
    if check and proc.returncode != 0:
        raise AssertionError(f"kubectl {' '.join(args)} failed: {proc.stderr.strip()}")
    return proc.stdout


def http_get(url: str) -> bytes:
    """GET a loopback URL (the syncer's health/metrics server) and return the body."""
    with urllib.request.urlopen(url, timeout=5) as resp:
        body: bytes = resp.read()
        return body


def metric_samples(url: str, name: str, **labels: str) -> dict[str, float]:
    """Non-zero samples of ``name`` (label set -> value) whose labels include ``labels``."""
    text = http_get(f"{url}/metrics").decode()
    return {
        str(sorted(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == name and sample.value
        and all(sample.labels.get(k) == v for k, v in labels.items())
    }


def api_host(plane: ControlPlane) -> str:
    """client-go's ``host`` label of requests to ``plane``: its server URL's host:port."""
    return urllib.parse.urlsplit(plane.server).netloc


def metric_total(url: str, name: str, **labels: str) -> float:
    """Sum of the samples of ``name`` on a /metrics page whose labels include ``labels``."""
    return sum(metric_samples(url, name, **labels).values())


def syncer_idle(url: str) -> bool:
    """True when every queue of the syncer is empty, nothing is processing, and no status
    write is pending. Delayed re-queues (token refreshes due in an hour) are not work."""
    stats = orjson.loads(http_get(f"{url}/debug/statistics"))
    queues = stats.get("queues", {}).values()
    pending = stats.get("status_writes", {}).get("pending", 0)
    return bool(queues) and pending == 0 and all(
        q["depth"] == 0 and q["processing"] == 0 for q in queues
    )


def listening_addresses(pids: list[int]) -> list[tuple[str, int, int]]:
    """(ip, port, pid) of every TCP socket in LISTEN state that one of ``pids`` holds.

    Read from /proc (socket inodes of each process matched against
    /proc/net/tcp and tcp6), so it needs no tool and sees every address family.
    """
    found = []
    for fields, pid in _tcp_sockets(pids):
        if fields[3] == "0A":
            ip_hex, port_hex = fields[1].split(":")
            found.append((_proc_ip(ip_hex), int(port_hex, 16), pid))
    return found


@dataclass(frozen=True)
class TcpConnection:
    """One established TCP connection of a process, with the kernel timer running on it."""

    local_port: int
    remote_port: int
    timer: int
    """0 none, 1 retransmission, 2 keepalive, 4 zero-window probe (/proc/net/tcp ``tr``)."""
    seconds: float
    """Until that timer fires."""


def tcp_connections(pids: list[int], remote_port: int) -> list[TcpConnection]:
    """The established connections ``pids`` hold to ``remote_port`` (any address)."""
    found = []
    for fields, _ in _tcp_sockets(pids):
        local, remote, state, timer = fields[1], fields[2], fields[3], fields[5]
        if state == "01" and int(remote.split(":")[1], 16) == remote_port:
            kind, when = timer.split(":")
            found.append(TcpConnection(int(local.split(":")[1], 16), remote_port,
                                       int(kind, 16), int(when, 16) / _USER_HZ))
    return found


_USER_HZ = os.sysconf("SC_CLK_TCK")
"""/proc/net/tcp shows timers in clock ticks."""


def _tcp_sockets(pids: list[int]) -> Iterator[tuple[list[str], int]]:
    """(fields of the /proc/net/tcp{,6} line, owning pid) of every TCP socket of ``pids``."""
    owners: dict[str, int] = {}
    for pid in pids:
        for fd in Path(f"/proc/{pid}/fd").iterdir():
            with contextlib.suppress(OSError):
                target = os.readlink(fd)
                if target.startswith("socket:["):
                    owners[target[8:-1]] = pid
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            if fields[9] in owners:
                yield fields, owners[fields[9]]


def _proc_ip(hex_ip: str) -> str:
    """/proc/net/tcp stores addresses as host-order 32-bit words."""
    raw = bytes.fromhex(hex_ip)
    words = b"".join(raw[i:i + 4][::-1] for i in range(0, len(raw), 4))
    return str(ipaddress.ip_address(words))


def kubeconfig_for_token(cluster: ControlPlane, token: str, path: Path) -> Path:
    """A kubeconfig for ``cluster`` that authenticates with ``token`` (e.g. a ServiceAccount's)."""
    config = cluster.kubeconfig_dict()
    config["users"][0]["user"] = {"token": token}
    path.write_text(yaml.safe_dump(config))
    return path


def install_plugin(root: Path, monkeypatch: pytest.MonkeyPatch, name: str, entries: str) -> None:
    """Make ``root`` a site directory holding one distribution ``name`` with ``entries``."""
    dist = root / f"{name}-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 1.0\n")
    # the documented group name, spelled out: a renamed group must fail these tests
    (dist / "entry_points.txt").write_text(f"[vcsync.translators]\n{entries}\n")
    monkeypatch.syspath_prepend(str(root))
