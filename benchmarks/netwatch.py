"""Watch this network namespace's non-loopback interfaces for the local hosts' addresses.

The evidence for "every packet stays inside the project's namespaces": run this in
the machine's own namespace while ``make test`` (or anything else) runs, and it
counts every frame on every interface but ``lo`` whose IPv4 source or destination
lies in the ranges the local hosts use inside their namespaces (node 172.18.0.0/16,
pod 10.244.0.0/16, Service 10.96.0.0/16) or in 127.0.0.0/8, next to all other
frames (package installs, other users of the machine). A leak shows as a non-zero
``project`` count.

Run as root: ``.venv/bin/python -m benchmarks.netwatch --seconds 3600 --output FILE``
(stops early on SIGINT/SIGTERM, and writes JSON either way).
"""

from __future__ import annotations

import argparse
import ipaddress
import select
import signal
import socket
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import orjson

from syncer.local import network

_ETH_P_ALL = 0x0003
_ETH_P_IP = 0x0800
WATCHED = [ipaddress.ip_network(c) for c in (network.NODE_CIDR, network.POD_CIDR,
                                               network.SERVICE_CIDR, "127.0.0.0/8")]


@dataclass
class Counts:
    interfaces: list[str]
    seconds: float = 0.0
    frames: int = 0
    ipv4: int = 0
    project: int = 0
    samples: list[str] = field(default_factory=list)
    """src -> dst of the first frames that touched a watched range (what leaked)."""


def _watched(address: bytes) -> bool:
    ip = ipaddress.ip_address(address)
    return any(ip in net for net in WATCHED)


def classify(frame: bytes, counts: Counts) -> None:
    """Count one Ethernet frame (IPv4 header right after a 14-byte Ethernet header)."""
    counts.frames += 1
    if len(frame) < 34 or int.from_bytes(frame[12:14], "big") != _ETH_P_IP:
        return
    counts.ipv4 += 1
    src, dst = frame[26:30], frame[30:34]
    if _watched(src) or _watched(dst):
        counts.project += 1
        if len(counts.samples) < 20:
            counts.samples.append(f"{ipaddress.ip_address(src)} -> {ipaddress.ip_address(dst)}")


def watch(seconds: float) -> Counts:
    names = [name for _, name in socket.if_nameindex() if name != "lo"]
    sockets = []
    for name in names:
        sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(_ETH_P_ALL))
        sock.bind((name, 0))
        sockets.append(sock)
    counts = Counts(names)
    stop = False

    def finish(*_: object) -> None:
        nonlocal stop
        stop = True

    signal.signal(signal.SIGINT, finish)
    signal.signal(signal.SIGTERM, finish)
    start = time.monotonic()
    while not stop and time.monotonic() - start < seconds:
        ready, _, _ = select.select(sockets, [], [], 1.0)
        for sock in ready:
            try:
                classify(sock.recv(65535), counts)
            except OSError:  # an interface that is down (ifb devices, say) has nothing
                sockets.remove(sock)
                sock.close()
    counts.seconds = round(time.monotonic() - start, 1)
    return counts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0] if __doc__ else None)
    parser.add_argument("--seconds", type=float, default=3600.0)
    parser.add_argument("--output", type=Path, required=True)
    args = parser.parse_args()
    counts = watch(args.seconds)
    args.output.write_bytes(orjson.dumps(asdict(counts), option=orjson.OPT_INDENT_2))
    print(f"{counts.frames} frames on {', '.join(counts.interfaces)} in {counts.seconds}s; "
          f"{counts.project} touched the local hosts' ranges or 127.0.0.0/8")


if __name__ == "__main__":
    main()
