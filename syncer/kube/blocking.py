"""A tiny blocking client for code that runs before any event loop exists.

Why not kubernetes_asyncio here: the local launcher waits for ``/readyz`` and
creates a few fake Node objects from plain synchronous code (CLI commands,
pytest fixtures). A dozen requests do not justify an event loop, and keeping
them here keeps all HTTP inside ``syncer/kube/``.

Credentials from a kubeconfig: a bearer token, a client certificate, or an
exec plugin (:mod:`syncer.kube.execcred`: EKS, GKE, AKS, OIDC logins), whose
credential is cached until it expires and fetched again after a 401.
"""

from __future__ import annotations

import base64
import ssl
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson

from syncer.kube.credentials import load_pem
from syncer.kube.execcred import Credential, ExecError, ExecPlugin, pem_pair


class BlockingError(RuntimeError):
    """A request got an unexpected answer (or none); the message says which."""


class CredentialError(BlockingError):
    """The kubeconfig's exec plugin gave no credential; the message says why."""


def probe(url: str, timeout: float = 2.0) -> int | None:
    """GET ``url`` without verifying TLS; return the status code, or None if unreachable.

    Only for health endpoints of loopback components that serve a self-signed
    certificate (controller-manager, scheduler); never for data.
    """
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    try:
        with urllib.request.urlopen(url, timeout=timeout, context=ctx) as resp:
            return int(resp.status)
    except urllib.error.HTTPError as exc:
        return exc.code
    except (OSError, ssl.SSLError):
        return None


class BlockingClient:
    """JSON requests against one API server, verified by its CA.

    ``ca`` is the CA file, or a ready TLS context (one built from a kubeconfig
    that authenticates with a client certificate). ``token`` may be empty.
    ``plugin`` supplies credentials instead (with ``tls``, which makes the TLS
    context for a client certificate it returns).
    """

    def __init__(
        self, server: str, ca: Path | ssl.SSLContext, token: str, timeout: float = 10.0,
        plugin: ExecPlugin | None = None,
        tls: Callable[[Credential], ssl.SSLContext] | None = None,
    ) -> None:
        self._server = server.rstrip("/")
        self._ctx = ca if isinstance(ca, ssl.SSLContext) else ssl.create_default_context(
            cafile=str(ca))
        self._token = token
        self._timeout = timeout
        self._plugin = plugin
        self._tls = tls
        self._contexts: dict[Credential, ssl.SSLContext] = {}

    @classmethod
    def from_kubeconfig(cls, config: dict[str, Any], timeout: float = 10.0) -> BlockingClient:
        """A client for the current context of a self-contained (flattened) kubeconfig.

        Raises :class:`BlockingError` naming what the kubeconfig lacks.
        """
        try:
            current = config["current-context"]
            context = _entry(config, "contexts", current)["context"]
            cluster = _entry(config, "clusters", context["cluster"])["cluster"]
            user = _entry(config, "users", context["user"])["user"]
            server = cluster["server"]
        except (KeyError, TypeError) as exc:
            raise BlockingError(f"incomplete kubeconfig: missing {exc}") from exc

        def tls(pem: bytes = b"") -> ssl.SSLContext:
            # The cluster's CA only, when it names one (client-go's rule).
            ca = cluster.get("certificate-authority-data")
            ctx = ssl.create_default_context(cadata=base64.b64decode(ca).decode()) if ca \
                else ssl.create_default_context()
            if cluster.get("insecure-skip-tls-verify"):
                ctx.check_hostname = False
                ctx.verify_mode = ssl.CERT_NONE
            if pem:
                load_pem(ctx, pem)
            return ctx

        own = b""
        if user.get("client-certificate-data"):
            own = base64.b64decode(user["client-certificate-data"]) + b"\n" + base64.b64decode(
                user["client-key-data"])
        try:
            plugin = ExecPlugin.of(user, cluster)
        except ExecError as exc:
            raise CredentialError(str(exc)) from exc
        return cls(server, tls(own), str(user.get("token", "")), timeout, plugin=plugin,
                   tls=lambda cred: tls(pem_pair(cred)))

    def _credential(self) -> Credential | None:
        if self._plugin is None:
            return None
        try:
            return self._plugin.get()
        except ExecError as exc:
            raise CredentialError(str(exc)) from exc

    def _context_for(self, credential: Credential | None) -> ssl.SSLContext:
        if credential is None or not credential.client_certificate or self._tls is None:
            return self._ctx
        if credential not in self._contexts:
            self._contexts = {credential: self._tls(credential)}
        return self._contexts[credential]

    def request(
        self, method: str, path: str, body: dict[str, Any] | None = None
    ) -> tuple[int, bytes]:
        """Send one request; return (status, body). Connection failures give status 0.

        With an exec plugin, a 401 runs it again and sends the request once more.
        Raises :class:`CredentialError` when the plugin gives no credential.
        """
        credential = self._credential()
        status, payload = self._send(method, path, body, credential)
        if status == 401 and credential is not None and self._plugin is not None:
            self._plugin.invalidate(credential)
            status, payload = self._send(method, path, body, self._credential())
        return status, payload

    def _send(self, method: str, path: str, body: dict[str, Any] | None,
              credential: Credential | None) -> tuple[int, bytes]:
        data = orjson.dumps(body) if body is not None else None
        req = urllib.request.Request(self._server + path, data=data, method=method)
        token = credential.token if credential is not None else self._token
        if token:
            req.add_header("Authorization", f"Bearer {token}")
        req.add_header("Accept", "application/json")
        if data is not None:
            req.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(req, timeout=self._timeout,
                                        context=self._context_for(credential)) as resp:
                return int(resp.status), bytes(resp.read())
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read()
        except (OSError, ssl.SSLError):
            return 0, b""

    def json(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        """Like :meth:`request`, but any status outside 2xx raises :class:`BlockingError`."""
        status, payload = self.request(method, path, body)
        if not 200 <= status < 300:
            raise BlockingError(f"{method} {path} -> {status}: {payload[:300]!r}")
        return orjson.loads(payload) if payload else None


def _entry(config: dict[str, Any], section: str, name: str) -> dict[str, Any]:
    for item in config.get(section) or ():
        if item.get("name") == name:
            return dict(item)
    raise KeyError(f"{section[:-1]} {name!r}")
