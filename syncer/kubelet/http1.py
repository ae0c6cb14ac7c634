"""Just enough HTTP/1.1 for a byte-splicing proxy: heads, small bodies, error answers.

Why not aiohttp here: after a ``101 Switching Protocols`` the connection carries
SPDY or WebSocket frames end to end, and aiohttp's client only upgrades to
WebSocket. A proxy that reads one head, writes one head and then copies bytes
needs nothing more than this module, and every byte after the heads stays
untouched (so SPDY, WebSocket and chunked log streams all pass as they are).

Invariants: a head is at most :data:`MAX_HEAD` bytes; a body read here is at
most the ``limit`` given; header values written never contain CR or LF.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

MAX_HEAD = 32 * 1024
_REASONS = {
    200: "OK", 400: "Bad Request", 401: "Unauthorized", 403: "Forbidden", 404: "Not Found",
    405: "Method Not Allowed", 429: "Too Many Requests", 500: "Internal Server Error",
    502: "Bad Gateway", 503: "Service Unavailable", 504: "Gateway Timeout",
}

Headers = list[tuple[str, str]]


class ProtocolError(Exception):
    """The peer sent something that is not an HTTP/1.1 head we can handle."""


@dataclass(frozen=True)
class Head:
    """A request or response head: its three start-line fields and its headers in order."""

    start: tuple[str, str, str]
    """(method, target, version) of a request; (version, code, reason) of a response."""
    headers: Headers

    def get(self, name: str) -> str | None:
        """The first value of header ``name`` (case-insensitive), or None."""
        values = self.get_all(name)
        return values[0] if values else None

    def get_all(self, name: str) -> list[str]:
        lower = name.lower()
        return [value for key, value in self.headers if key.lower() == lower]

    @property
    def status(self) -> int:
        """The status code of a response head."""
        return int(self.start[1])


async def read_head(reader: asyncio.StreamReader) -> Head:
    """One head from ``reader``; :class:`ProtocolError` if malformed, too big or cut short."""
    try:
        raw = await reader.readuntil(b"\r\n\r\n")
    except asyncio.LimitOverrunError as exc:
        raise ProtocolError(f"head larger than {MAX_HEAD} bytes") from exc
    except asyncio.IncompleteReadError as exc:
        raise ProtocolError("connection closed before a complete head") from exc
    if len(raw) > MAX_HEAD:
        raise ProtocolError(f"head larger than {MAX_HEAD} bytes")
    lines = raw.decode("latin-1").split("\r\n")[:-2]
    parts = lines[0].split(" ", 2)
    if len(parts) != 3 or not (parts[0].startswith("HTTP/1.") or parts[2].startswith("HTTP/1.")):
        raise ProtocolError(f"not an HTTP/1.x start line: {lines[0][:80]!r}")
    headers: Headers = []
    for line in lines[1:]:
        name, sep, value = line.partition(":")
        if not sep or not name or name != name.strip():
            raise ProtocolError(f"malformed header line {line[:80]!r}")
        headers.append((name, value.strip()))
    return Head((parts[0], parts[1], parts[2]), headers)


def _head_bytes(start: str, headers: Iterable[tuple[str, str]]) -> bytes:
    lines = [start]
    for name, value in headers:
        if any(c in name + value for c in "\r\n\0"):
            raise ProtocolError(f"header {name!r} carries a line break")
        lines.append(f"{name}: {value}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def request_head(method: str, target: str, headers: Iterable[tuple[str, str]]) -> bytes:
    return _head_bytes(f"{method} {target} HTTP/1.1", headers)


def response_head(status: int, reason: str, headers: Iterable[tuple[str, str]]) -> bytes:
    return _head_bytes(f"HTTP/1.1 {status} {reason}", headers)


def error_response(status: int, message: str) -> bytes:
    """A complete plain-text answer that closes the connection.

    kube-apiserver turns a kubelet's 400/404/500 into BadRequest/NotFound/
    InternalError with this text as the message, so the text is what the tenant
    reads: it must name only virtual objects.
    """
    body = message.encode()
    head = response_head(status, _REASONS.get(status, "Error"), [
        ("Content-Type", "text/plain; charset=utf-8"),
        ("Content-Length", str(len(body))),
        ("Connection", "close"),
    ])
    return head + body


def pick(headers: Sequence[tuple[str, str]], names: Iterable[str]) -> Headers:
    """The headers named in ``names`` (case-insensitive), in their original order."""
    wanted = {name.lower() for name in names}
    return [(key, value) for key, value in headers if key.lower() in wanted]


async def read_body(reader: asyncio.StreamReader, head: Head, limit: int) -> bytes:
    """The body of a (small) response: by Content-Length, chunked, or until close.

    At most ``limit`` bytes are returned; a longer body is cut there (it is only
    ever an error message).
    """
    length = head.get("Content-Length")
    try:
        if length is not None and length.isdigit():
            return await reader.readexactly(min(int(length), limit))
        if (head.get("Transfer-Encoding") or "").lower() == "chunked":
            return await _read_chunked(reader, limit)
        return await reader.read(limit)
    except asyncio.IncompleteReadError as exc:
        return exc.partial


async def _read_chunked(reader: asyncio.StreamReader, limit: int) -> bytes:
    body = bytearray()
    while len(body) < limit:
        size_line = await reader.readline()
        try:
            size = int(size_line.split(b";")[0].strip() or b"0", 16)
        except ValueError as exc:
            raise ProtocolError(f"bad chunk size line {size_line[:40]!r}") from exc
        if size == 0:
            break
        body += await reader.readexactly(min(size, limit - len(body)))
        if len(body) >= limit:
            break
        await reader.readexactly(2)
    return bytes(body)
