"""TCP keepalive tuned on every socket the syncer holds (issue 22).

Why: a peer that vanishes without a FIN or RST (a node powered off, a NAT or
firewall that forgot the connection, a network split) leaves a half-open
connection; with Linux's defaults nothing notices it for two hours on an idle
socket, and for about 15 minutes of retransmissions on a busy one. Here an idle
connection is probed after :data:`KEEPALIVE_IDLE` seconds and given up after
:data:`KEEPALIVE_PROBES` unanswered probes; data left unacknowledged for
:data:`USER_TIMEOUT` seconds ends it too (``TCP_USER_TIMEOUT``). The probes are
empty segments answered by the peer's kernel: the API server process is never
woken by them, so an idle API server does no extra work.

What keepalive cannot see: a peer whose kernel still acknowledges but whose
application (or an L7 proxy in between) sends nothing; requests and watches
have deadlines for that (``syncer.kube.client``).
"""

from __future__ import annotations

import socket

from aiohappyeyeballs import AddrInfoType

KEEPALIVE_IDLE = 5
"""Seconds of silence before the first probe."""
KEEPALIVE_INTERVAL = 3
KEEPALIVE_PROBES = 3
USER_TIMEOUT = KEEPALIVE_IDLE + KEEPALIVE_INTERVAL * KEEPALIVE_PROBES
"""Seconds until a dead peer is given up: 14, whether the socket was idle or sending."""

_TCP_OPTIONS = (
    (socket.TCP_KEEPIDLE, KEEPALIVE_IDLE),
    (socket.TCP_KEEPINTVL, KEEPALIVE_INTERVAL),
    (socket.TCP_KEEPCNT, KEEPALIVE_PROBES),
    (socket.TCP_USER_TIMEOUT, USER_TIMEOUT * 1000),
)


def tune(sock: socket.socket) -> socket.socket:
    """Turn on keepalive with the timings above (TCP sockets only; others as they are)."""
    if sock.family in (socket.AF_INET, socket.AF_INET6) and sock.type == socket.SOCK_STREAM:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
        for option, value in _TCP_OPTIONS:
            sock.setsockopt(socket.IPPROTO_TCP, option, value)
    return sock


def new_socket(address: AddrInfoType) -> socket.socket:
    """A tuned socket for one resolved address (aiohttp's ``socket_factory``)."""
    family, kind, proto, _, _ = address
    return tune(socket.socket(family, kind, proto))
