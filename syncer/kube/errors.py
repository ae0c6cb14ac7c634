"""The exceptions the API layer raises, as one documented hierarchy.

::

    KubeError                      anything that went wrong talking to an API server
    +-- ConnectionLost             no HTTP answer (refused, reset, timed out)
    +-- ApiError                   an HTTP answer outside 2xx; .status, .reason, .body
        +-- BadRequest             400
        +-- Unauthorized           401
        +-- Forbidden              403  (RBAC, or a namespace being terminated)
        +-- NotFound               404
        +-- Conflict               409  stale resourceVersion / precondition
        |   +-- AlreadyExists      409  with reason AlreadyExists
        +-- Gone                   410  resourceVersion too old: re-list
        +-- Invalid                422  the object fails validation or admission
        +-- TooManyRequests        429  .retry_after seconds (from Retry-After)
        +-- ServerError            5xx

Why a hierarchy and not status codes: callers decide by meaning (a controller
re-queues a Conflict, turns Invalid/Forbidden into a Warning event, lets the
transport retry TooManyRequests/ServerError/ConnectionLost).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import orjson


class KubeError(Exception):
    """Base of every error raised by ``syncer.kube``."""


class ConnectionLost(KubeError):
    """The request got no HTTP answer: connection refused, reset or timed out."""


class ApiError(KubeError):
    """The API server answered outside 2xx. ``body`` is its Status object (or {})."""

    status: int = 0

    def __init__(self, status: int, body: Mapping[str, Any], method: str, path: str) -> None:
        self.status = status
        self.body = dict(body)
        self.reason = str(body.get("reason", ""))
        self.message = str(body.get("message", ""))
        super().__init__(f"{method} {path}: {status} {self.reason}: {self.message}".rstrip(": "))


class BadRequest(ApiError):
    """400: malformed request (a bug on our side, never retried)."""


class Unauthorized(ApiError):
    """401: credentials rejected."""


class Forbidden(ApiError):
    """403: RBAC denied it, or the namespace is terminating."""


class NotFound(ApiError):
    """404: the object (or its namespace) does not exist."""


class Conflict(ApiError):
    """409: optimistic-concurrency or precondition failure; re-read and retry."""


class AlreadyExists(Conflict):
    """409 with reason AlreadyExists: a create raced with another writer."""


class Gone(ApiError):
    """410: the resourceVersion is too old; the informer must re-list."""


class Invalid(ApiError):
    """422: the object was rejected by validation or admission."""


class TooManyRequests(ApiError):
    """429: throttled by the server; ``retry_after`` is what it asked us to wait."""

    def __init__(
        self, status: int, body: Mapping[str, Any], method: str, path: str, retry_after: float
    ) -> None:
        super().__init__(status, body, method, path)
        self.retry_after = retry_after


class ServerError(ApiError):
    """5xx: the server failed; retried with backoff."""


_BY_STATUS: dict[int, type[ApiError]] = {
    400: BadRequest,
    401: Unauthorized,
    403: Forbidden,
    404: NotFound,
    409: Conflict,
    410: Gone,
    422: Invalid,
}


MAX_RETRY_AFTER = 300.0


def parse_retry_after(value: str | None, default: float = 1.0) -> float:
    """Seconds from a Retry-After header (only the delta-seconds form is used by k8s).

    Always finite and at most :data:`MAX_RETRY_AFTER`: a broken or hostile
    header must not park a worker forever.
    """
    try:
        seconds = float(value) if value else default
    except ValueError:
        return default
    if not math.isfinite(seconds):
        return default
    return min(MAX_RETRY_AFTER, max(0.0, seconds))


def error_for(
    status: int, payload: bytes, method: str, path: str, retry_after: str | None = None
) -> ApiError:
    """Build the exception that matches an HTTP answer outside 2xx."""
    try:
        body = orjson.loads(payload) if payload else {}
    except orjson.JSONDecodeError:
        body = {"message": payload[:200].decode(errors="replace")}
    if not isinstance(body, dict):
        body = {}
    if status == 429:
        return TooManyRequests(status, body, method, path, parse_retry_after(retry_after))
    if status >= 500:
        return ServerError(status, body, method, path)
    if status == 409 and body.get("reason") == "AlreadyExists":
        return AlreadyExists(status, body, method, path)
    return _BY_STATUS.get(status, ApiError)(status, body, method, path)
