"""Unit tests of :mod:`syncer.kube.liveness`: the keepalive settings on real sockets."""

from __future__ import annotations

import socket

from syncer.kube import liveness


def test_tcp_sockets_give_up_a_silent_peer_within_20_seconds() -> None:
    with liveness.new_socket((socket.AF_INET, socket.SOCK_STREAM, 0, "", ())) as sock:
        assert sock.getsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE) == 1
        idle = sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPIDLE)
        interval = sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPINTVL)
        probes = sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPCNT)
        user_timeout_ms = sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_USER_TIMEOUT)
    assert idle + interval * probes == liveness.USER_TIMEOUT < 20
    assert user_timeout_ms == liveness.USER_TIMEOUT * 1000


def test_other_sockets_are_left_alone() -> None:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as unix:
        assert liveness.tune(unix) is unix
        assert unix.getsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE) == 0
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
        liveness.tune(udp)
        assert udp.getsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE) == 0
