"""The local host's network layout (syncer.local.network): address plan, the session's
namespace, and the fallback without privileges."""

from __future__ import annotations

import ipaddress
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from benchmarks import netwatch
from syncer.local import network

ROOT = Path(__file__).resolve().parents[2]


def test_realistic_layout_gives_each_node_its_address_and_pod_range() -> None:
    layout = network.ISOLATED
    nodes = [layout.node_ip(i) for i in range(3)]
    assert nodes == ["172.18.0.10", "172.18.0.11", "172.18.0.12"]
    assert all(ipaddress.ip_address(ip).is_private for ip in nodes)
    ranges = [ipaddress.IPv4Network(layout.node_pod_cidr(i)) for i in range(3)]
    assert [str(r) for r in ranges] == ["10.244.0.0/24", "10.244.1.0/24", "10.244.2.0/24"]
    assert all(r.subnet_of(ipaddress.IPv4Network(network.POD_CIDR)) for r in ranges)
    assert layout.kubelet_bind == "0.0.0.0"


def test_loopback_layout_is_todays() -> None:
    layout = network.LOOPBACK
    assert layout.node_ip(5) == "127.0.0.1"
    assert layout.node_pod_cidr(0) is None
    assert layout.pod_cidr == "127.128.0.0/16"
    assert layout.kubelet_bind == "127.0.0.1"


@pytest.mark.skipif(os.geteuid() != 0, reason="the session namespace needs root")
def test_the_session_runs_in_its_own_namespace() -> None:
    """tests/conftest.py entered it: only lo and the veth pair, no route out."""
    assert network.current().isolated
    assert {name for _, name in socket.if_nameindex()} == {"lo", network.INTERFACE,
                                                            network.PEER}
    with socket.socket() as probe, pytest.raises(OSError, match="unreachable"):
        probe.connect(("10.96.0.1", 443))  # a ClusterIP: no route, nothing sent


def _without_privileges(code: str) -> subprocess.CompletedProcess[str]:
    """``code`` in a child that may not create namespaces (CAP_SYS_ADMIN dropped if root)."""
    prefix: list[str] = []
    if os.geteuid() == 0:
        setpriv = shutil.which("setpriv")
        assert setpriv is not None, "setpriv (util-linux) drops the capability"
        prefix = [setpriv, "--bounding-set", "-sys_admin", "--inh-caps", "-sys_admin"]
    return subprocess.run([*prefix, sys.executable, "-c", code], capture_output=True,
                          text=True, timeout=60, cwd=ROOT, check=False,
                          preexec_fn=network.outside())


def test_without_privileges_the_loopback_layout_is_kept_and_said_once() -> None:
    proc = _without_privileges("from syncer.local import network\n"
                               "print(network.enter_private().isolated)\n"
                               "print(network.create_named('vcsync-test-unprivileged'))")
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    said = [line for line in lines if line.startswith("vcsync: no network namespace")]
    assert [line for line in lines if line not in said] == ["False", "False"]
    assert len(said) == 2
    assert all(network.LOST in line for line in said)
    assert not network.named_path("vcsync-test-unprivileged").exists()


def test_namespace_names_are_per_owner() -> None:
    mine, theirs = network.name_for("vcsync", "pytest-a"), network.name_for("vcsync", "b")
    assert mine != theirs
    assert mine.startswith(network.name_for("", "pytest-a"))
    assert mine.endswith("-vcsync")


def _frame(src: str, dst: str) -> bytes:
    ip = bytes(12) + ipaddress.IPv4Address(src).packed + ipaddress.IPv4Address(dst).packed
    return bytes(12) + (0x0800).to_bytes(2, "big") + ip


def test_the_watch_counts_frames_of_the_local_hosts_ranges() -> None:
    """benchmarks.netwatch: what would show a leak out of the hosts' namespaces."""
    counts = netwatch.Counts(["eth0"])
    for src, dst in (("192.168.1.5", "151.101.0.223"), ("192.168.1.5", "10.96.0.1"),
                     ("10.244.3.7", "8.8.8.8"), ("192.168.1.5", "172.18.0.12"),
                     ("127.0.0.1", "192.168.1.5"), ("192.168.1.5", "10.0.0.1")):
        netwatch.classify(_frame(src, dst), counts)
    netwatch.classify(bytes(60), counts)  # not IPv4
    assert (counts.frames, counts.ipv4, counts.project) == (7, 6, 4)
    assert counts.samples[0] == "192.168.1.5 -> 10.96.0.1"
