"""Exec credential plugins (``users[].user.exec``), run the way client-go runs them.

EKS (``aws eks get-token``), GKE (``gke-gcloud-auth-plugin``), AKS
(``kubelogin``) and OIDC logins (``kubectl oidc-login``) put no credential in
the kubeconfig: a command prints an ``ExecCredential``
(``client.authentication.k8s.io/v1`` or ``v1beta1``) with a bearer token or a
client certificate, valid until its ``expirationTimestamp``.

As client-go:

- the command gets the kubeconfig's ``args`` and ``env`` on top of ours, and
  ``KUBERNETES_EXEC_INFO`` (an ExecCredential with ``spec.interactive``, and
  ``spec.cluster`` when ``provideClusterInfo`` is set);
- it is interactive (our stdin is passed on) only when stdin is a terminal and
  ``interactiveMode`` is not ``Never``; ``Always`` without a terminal is an error;
- the answer must carry the same ``apiVersion``; it is cached, process-wide and
  per configuration, until it expires (forever without an expiry), and run again
  when the server answers 401 (:meth:`ExecPlugin.invalidate`);
- a command that is not found is reported with the kubeconfig's ``installHint``.
"""

from __future__ import annotations

import datetime
import os
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from typing import Any

import orjson

API_VERSIONS = ("client.authentication.k8s.io/v1", "client.authentication.k8s.io/v1beta1")
TIMEOUT = 120.0
"""Seconds a plugin may take (an interactive login takes a while)."""


class ExecError(RuntimeError):
    """The plugin could not be run or gave no usable credential; the message says why."""


@dataclass(frozen=True)
class Credential:
    token: str = ""
    client_certificate: bytes = b""
    """PEM."""
    client_key: bytes = b""
    expires: float | None = None
    """Epoch seconds; None: valid until the server refuses it."""

    def expired(self, now: float) -> bool:
        return self.expires is not None and now >= self.expires


_cache: dict[bytes, Credential] = {}
_lock = threading.Lock()


class ExecPlugin:
    """One ``exec`` section (with its cluster, for ``provideClusterInfo``)."""

    def __init__(self, config: dict[str, Any], cluster: dict[str, Any] | None = None) -> None:
        if not config.get("command"):
            raise ExecError("exec plugin: the kubeconfig's user.exec has no command")
        self.config = config
        self.cluster = cluster or {}
        self.api_version = str(config.get("apiVersion") or "")
        if self.api_version not in API_VERSIONS:
            raise ExecError(f"exec plugin: apiVersion {self.api_version!r} is not supported "
                            f"(use {' or '.join(API_VERSIONS)})")
        self._key = orjson.dumps([config, self.cluster if self._cluster_info() else None],
                                 option=orjson.OPT_SORT_KEYS)

    @classmethod
    def of(cls, user: dict[str, Any], cluster: dict[str, Any] | None = None
           ) -> ExecPlugin | None:
        """The plugin of a kubeconfig user entry, None when it has no ``exec``."""
        config = user.get("exec")
        return cls(dict(config), cluster) if isinstance(config, dict) else None

    def get(self) -> Credential:
        """The cached credential, or a new one when there is none or it expired."""
        with _lock:
            cached = _cache.get(self._key)
            if cached is not None and not cached.expired(time.time()):
                return cached
            fresh = self._run()
            _cache[self._key] = fresh
            return fresh

    def invalidate(self, used: Credential) -> None:
        """The server refused ``used`` (401): the next :meth:`get` runs the plugin again."""
        with _lock:
            if _cache.get(self._key) == used:
                del _cache[self._key]

    # -- running it -----------------------------------------------------------------------

    def _cluster_info(self) -> bool:
        return bool(self.config.get("provideClusterInfo"))

    def _interactive(self) -> bool:
        mode = self.config.get("interactiveMode") or "IfAvailable"
        tty = sys.stdin is not None and sys.stdin.isatty()
        if mode == "Always" and not tty:
            raise ExecError(f"exec plugin {self.config['command']!r} is configured to be "
                            "interactive (interactiveMode Always), but standard input is not "
                            "a terminal")
        return tty and mode != "Never"

    def _exec_info(self, interactive: bool) -> bytes:
        spec: dict[str, Any] = {"interactive": interactive}
        if self._cluster_info():
            cluster = self.cluster
            info: dict[str, Any] = {"server": cluster.get("server", "")}
            for key in ("tls-server-name", "insecure-skip-tls-verify",
                        "certificate-authority-data", "proxy-url", "disable-compression"):
                if cluster.get(key):
                    info[key] = cluster[key]
            extension = next((e.get("extension") for e in cluster.get("extensions") or ()
                              if e.get("name") == "client.authentication.k8s.io/exec"), None)
            if extension is not None:
                info["config"] = extension
            spec["cluster"] = info
        return orjson.dumps({"apiVersion": self.api_version, "kind": "ExecCredential",
                             "spec": spec})

    def _run(self) -> Credential:
        command = str(self.config["command"])
        argv = [command, *(str(a) for a in self.config.get("args") or ())]
        env = dict(os.environ)
        for item in self.config.get("env") or ():
            env[str(item.get("name"))] = str(item.get("value", ""))
        interactive = self._interactive()
        env["KUBERNETES_EXEC_INFO"] = self._exec_info(interactive).decode()
        try:
            proc = subprocess.run(argv, env=env, stdout=subprocess.PIPE,
                                  stderr=None if interactive else subprocess.PIPE,
                                  stdin=None if interactive else subprocess.DEVNULL,
                                  timeout=TIMEOUT, check=False)
        except FileNotFoundError as exc:
            hint = str(self.config.get("installHint") or "").strip()
            raise ExecError(f"exec plugin: executable {command} not found"
                            + (f"; {hint}" if hint else "")) from exc
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise ExecError(f"exec plugin {command}: {exc}") from exc
        if proc.returncode != 0:
            detail = (proc.stderr or b"").decode(errors="replace").strip().replace("\n", " ")
            raise ExecError(f"exec plugin {command} exited with {proc.returncode}"
                            + (f": {detail[-500:]}" if detail else ""))
        return self._parse(proc.stdout, command)

    def _parse(self, out: bytes, command: str) -> Credential:
        try:
            answer = orjson.loads(out)
        except orjson.JSONDecodeError as exc:
            raise ExecError(f"exec plugin {command} printed no ExecCredential: {exc}") from exc
        if not isinstance(answer, dict) or answer.get("kind") != "ExecCredential":
            raise ExecError(f"exec plugin {command} printed no ExecCredential")
        if answer.get("apiVersion") != self.api_version:
            raise ExecError(f"exec plugin {command} is configured to use API version "
                            f"{self.api_version}, but it returned {answer.get('apiVersion')}")
        status = answer.get("status") or {}
        token = str(status.get("token") or "")
        cert = str(status.get("clientCertificateData") or "").encode()
        key = str(status.get("clientKeyData") or "").encode()
        if bool(cert) != bool(key):
            raise ExecError(f"exec plugin {command}: clientCertificateData and clientKeyData "
                            "must both be present")
        if not token and not cert:
            raise ExecError(f"exec plugin {command}: its ExecCredential has neither a token "
                            "nor a client certificate")
        return Credential(token, cert, key, _expiry(status.get("expirationTimestamp"), command))


def _expiry(text: Any, command: str) -> float | None:
    if not text:
        return None
    try:
        return datetime.datetime.fromisoformat(str(text).replace("Z", "+00:00")).timestamp()
    except ValueError as exc:
        raise ExecError(f"exec plugin {command}: expirationTimestamp {text!r} is not an "
                        "RFC 3339 time") from exc


def pem_pair(credential: Credential) -> bytes:
    """Certificate and key as one PEM bundle (what ``ssl`` loads)."""
    return credential.client_certificate.rstrip(b"\n") + b"\n" + credential.client_key
