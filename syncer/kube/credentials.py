"""Where an API server is and how to prove who we are: from a kubeconfig or a pod's
service account, by client-go's rules.

Why our own and not kubernetes_asyncio's loader: importing any part of
kubernetes_asyncio imports its whole generated client (every API class and
model), about 60 MiB of RSS in each syncer for a few dozen lines of kubeconfig
reading; the requests themselves never went through it (``syncer.kube.client``).
One syncer per tenant makes that the largest share of an idle syncer's memory
(``vcsync bench density``).

What a kubeconfig user may hold, as client-go reads it: ``token`` or
``tokenFile`` (re-read every minute, as a projected token rotates), a client
certificate (``client-certificate[-data]`` and ``client-key[-data]``), ``username``
and ``password`` (basic auth), or an ``exec`` plugin (:mod:`syncer.kube.execcred`;
bearer tokens only here). ``auth-provider`` (removed from client-go except OIDC)
is refused with a pointer to its exec replacement. Relative file paths start
at the kubeconfig's directory. In a pod: the service account's token (re-read
every minute) and CA, and the API server from ``KUBERNETES_SERVICE_HOST``/``PORT``.
"""

from __future__ import annotations

import asyncio
import base64
import functools
import os
import ssl
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import yaml

from syncer.kube.execcred import Credential, ExecError, ExecPlugin

SERVICE_ACCOUNT = Path("/var/run/secrets/kubernetes.io/serviceaccount")
TOKEN_REREAD = 60.0
"""Seconds a token file's content is used before it is read again (client-go: 1 min)."""


class CredentialsError(ValueError):
    """The kubeconfig (or the pod's service account) cannot be used; the message says why."""


class Auth(Protocol):
    """The ``Authorization`` header of the next request, and what a 401 means for it."""

    async def header(self) -> str | None: ...

    def unauthorized(self) -> None:
        """The server refused the last credential: get a fresh one next time."""


@dataclass(frozen=True)
class Endpoint:
    """One API server: its URL, the TLS settings to reach it and how to authenticate.

    ``new_tls`` makes a fresh context each call: the request pool and the upgraded
    streams need separate ones (the latter pins ALPN to HTTP/1.1).
    """

    server: str
    new_tls: Callable[[], ssl.SSLContext]
    tls_server_name: str | None
    auth: Auth


class NoAuth:
    """Anonymous, or authenticated by the client certificate in the TLS context."""

    async def header(self) -> str | None:
        return None

    def unauthorized(self) -> None:
        return None


@dataclass(frozen=True)
class StaticAuth:
    """A bearer token or basic-auth pair written in the kubeconfig."""

    value: str

    async def header(self) -> str | None:
        return self.value

    def unauthorized(self) -> None:
        return None


class TokenFileAuth:
    """A bearer token read from a file, again after :data:`TOKEN_REREAD` seconds or a 401."""

    def __init__(self, path: Path) -> None:
        self._path = path
        self._token = ""
        self._read_at = -TOKEN_REREAD

    async def header(self) -> str | None:
        if time.monotonic() - self._read_at >= TOKEN_REREAD:
            try:
                self._token = self._path.read_text().strip()
            except OSError as exc:
                if not self._token:
                    raise CredentialsError(f"token file {self._path}: {exc}") from exc
            self._read_at = time.monotonic()
        return f"Bearer {self._token}"

    def unauthorized(self) -> None:
        self._read_at = -TOKEN_REREAD


class ExecAuth:
    """The bearer token of an exec plugin, fetched again when it expires or after a 401.
    The plugin runs in a worker thread (it may take seconds); requests read the cache."""

    def __init__(self, plugin: ExecPlugin) -> None:
        self._plugin = plugin
        self._credential: Credential | None = None

    async def header(self) -> str | None:
        credential = self._credential
        if credential is None or credential.expired(time.time()):
            credential = await self.fetch()
        return f"Bearer {credential.token}"

    async def fetch(self) -> Credential:
        try:
            credential = await asyncio.to_thread(self._plugin.get)
        except ExecError as exc:
            raise CredentialsError(str(exc)) from exc
        if not credential.token:
            raise CredentialsError(
                f"exec plugin {self._plugin.config['command']}: gave a client certificate; "
                "the syncer takes bearer tokens from exec plugins only")
        self._credential = credential
        return credential

    def unauthorized(self) -> None:
        if self._credential is not None:
            self._plugin.invalidate(self._credential)
            self._credential = None


async def from_kubeconfig(path: str, context: str | None = None) -> Endpoint:
    """The endpoint of ``context`` (default: the current one) in the kubeconfig ``path``.

    An exec plugin runs once here, so a plugin that cannot give a token fails at
    start-up rather than at the first request. Raises :class:`CredentialsError`.
    """
    endpoint = await asyncio.to_thread(_read_kubeconfig, path, context)
    if isinstance(endpoint.auth, ExecAuth):
        await endpoint.auth.fetch()
    return endpoint


def _read_kubeconfig(path: str, context: str | None = None) -> Endpoint:
    """:func:`from_kubeconfig` without running an exec plugin yet."""
    try:
        config = yaml.safe_load(Path(path).read_text()) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise CredentialsError(f"kubeconfig {path}: {exc}") from exc
    if not isinstance(config, dict):
        raise CredentialsError(f"kubeconfig {path}: not a mapping")
    name = context or config.get("current-context")
    if not name:
        raise CredentialsError(f"kubeconfig {path}: no context given and no current-context")
    ctx = _named(config, "contexts", name, path).get("context") or {}
    cluster = _named(config, "clusters", ctx.get("cluster"), path).get("cluster") or {}
    user = (_named(config, "users", ctx["user"], path).get("user") or {}) if ctx.get(
        "user") else {}
    return _endpoint(cluster, user, Path(path).resolve().parent, f"kubeconfig {path}")


def in_cluster(root: Path = SERVICE_ACCOUNT) -> Endpoint:
    """The endpoint a pod reaches its own cluster's API server by. Raises
    :class:`CredentialsError` outside a pod."""
    host, port = os.environ.get("KUBERNETES_SERVICE_HOST"), os.environ.get(
        "KUBERNETES_SERVICE_PORT")
    if not host or not port:
        raise CredentialsError("not in a pod: KUBERNETES_SERVICE_HOST/PORT are not set "
                               "(give --host-kubeconfig)")
    if ":" in host:
        host = f"[{host}]"
    cluster = {"server": f"https://{host}:{port}", "certificate-authority": str(root / "ca.crt")}
    return _endpoint(cluster, {"tokenFile": str(root / "token")}, root, "service account")


def _named(config: dict[str, Any], section: str, name: Any, path: str) -> dict[str, Any]:
    for entry in config.get(section) or ():
        if isinstance(entry, dict) and entry.get("name") == name:
            return entry
    raise CredentialsError(f"kubeconfig {path}: no {section[:-1]} named {name!r}")


def _endpoint(cluster: dict[str, Any], user: dict[str, Any], base: Path, where: str
              ) -> Endpoint:
    server = str(cluster.get("server") or "").rstrip("/")
    if not server:
        raise CredentialsError(f"{where}: the cluster has no server")
    new_tls = functools.partial(_tls, cluster, user, base)
    try:
        new_tls()  # unreadable or malformed files fail here, not at the first request
        auth = _auth(user, cluster, base)
    except (OSError, ssl.SSLError, ValueError, ExecError) as exc:
        raise CredentialsError(f"{where}: {exc}") from exc
    return Endpoint(server, new_tls, cluster.get("tls-server-name") or None, auth)


def _tls(cluster: dict[str, Any], user: dict[str, Any], base: Path) -> ssl.SSLContext:
    """The cluster's CA and nothing else when it names one (the system's roots only when
    it does not), as client-go verifies."""
    ca = _material(cluster, "certificate-authority", base)
    context = ssl.create_default_context(cadata=ca.decode()) if ca else \
        ssl.create_default_context()
    if cluster.get("insecure-skip-tls-verify"):
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    cert, key = (_material(user, "client-certificate", base),
                 _material(user, "client-key", base))
    if bool(cert) != bool(key):
        raise ValueError("the user has a client certificate without its key, or a key "
                         "without its certificate")
    if cert:
        load_pem(context, cert.rstrip(b"\n") + b"\n" + key)
    return context


def _auth(user: dict[str, Any], cluster: dict[str, Any], base: Path) -> Auth:
    if user.get("auth-provider"):
        raise ValueError(f"auth-provider {user['auth-provider'].get('name')!r} is not "
                         "supported; use an exec plugin (e.g. kubelogin / kubectl oidc-login)")
    plugin = ExecPlugin.of(user, cluster)
    if plugin is not None:
        return ExecAuth(plugin)
    if user.get("token"):
        return StaticAuth(f"Bearer {user['token']}")
    if user.get("tokenFile"):
        return TokenFileAuth(base / str(user["tokenFile"]))
    if user.get("username"):
        pair = f"{user['username']}:{user.get('password', '')}".encode()
        return StaticAuth(f"Basic {base64.b64encode(pair).decode()}")
    return NoAuth()


def _material(entry: dict[str, Any], key: str, base: Path) -> bytes:
    """``key-data`` (base64) or the file ``key`` names (relative to ``base``); empty if
    neither is set."""
    if entry.get(f"{key}-data"):
        return base64.b64decode(entry[f"{key}-data"])
    if entry.get(key):
        return (base / str(entry[key])).read_bytes()
    return b""


def load_pem(context: ssl.SSLContext, pem: bytes) -> None:
    """Load a client certificate and its key (one PEM bundle) into ``context``: ``ssl``
    reads them only from files, so through one private temporary file."""
    with tempfile.NamedTemporaryFile(suffix=".pem") as handle:
        handle.write(pem)
        handle.flush()
        context.load_cert_chain(handle.name)
