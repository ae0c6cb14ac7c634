"""What the CLI remembers between commands: host clusters and virtual clusters.

Layout under ``$XDG_STATE_HOME/vcsync/`` (else ``~/.local/state/vcsync/``)::

    hosts/<name>/host.json            a local host cluster (its control plane files beside it)
    vclusters/<id>/vcluster.json      a virtual cluster; <id> = name, namespace, host context
    connect.json                      the context that was current before ``vcsync connect``

Why JSON records and not a daemon: clusters outlive the command that made
them, like kind clusters; every later command rebuilds its handles from
these records (pids, flags, ports) and checks what is really running.

Invariant: a record exists only for a cluster whose creation finished
(creation writes it last; deletion removes it last).
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import orjson

from syncer.cli import kubeconfig
from syncer.cli.errors import CliError


def root() -> Path:
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "vcsync"


def _write_json(file: Path, data: Any) -> None:
    file.parent.mkdir(parents=True, exist_ok=True)
    tmp = file.with_name(f".{file.name}.tmp")
    tmp.write_bytes(orjson.dumps(data, option=orjson.OPT_INDENT_2))
    tmp.replace(file)


def _read_json(file: Path) -> Any:
    try:
        return orjson.loads(file.read_bytes())
    except (OSError, orjson.JSONDecodeError) as exc:
        raise CliError(f"state file {file} is unreadable ({exc}); remove it by hand") from exc


@dataclass
class HostRecord:
    name: str
    context: str
    nodes: int
    kubernetes_version: str
    plane: dict[str, Any]
    created: float = field(default_factory=time.time)
    netns: str | None = None
    """The host's network namespace (None: the loopback layout, see syncer.local.network)."""
    forwarder: dict[str, Any] | None = None
    """argv, log and pid of the forwarder carrying 127.0.0.1 ports into ``netns``."""

    @staticmethod
    def directory(name: str) -> Path:
        return root() / "hosts" / name

    def save(self) -> None:
        _write_json(self.directory(self.name) / "host.json", asdict(self))

    @classmethod
    def load(cls, name: str) -> HostRecord | None:
        file = cls.directory(name) / "host.json"
        return cls(**_read_json(file)) if file.exists() else None

    @classmethod
    def all(cls) -> list[HostRecord]:
        files = sorted((root() / "hosts").glob("*/host.json"))
        return [cls(**_read_json(f)) for f in files]

    def forget(self) -> None:
        shutil.rmtree(self.directory(self.name), ignore_errors=True)


@dataclass
class VClusterRecord:
    name: str
    namespace: str
    host_context: str
    context: str
    kubernetes_version: str
    driver: str
    plane: dict[str, Any]
    syncer: dict[str, Any]
    ttl_seconds: float | None = None
    paused: bool = False
    created: float = field(default_factory=time.time)
    server: str = ""
    """Helm driver: the virtual API server's URL given with ``connect --server`` (empty:
    reached through vcsync's port-forward)."""

    @staticmethod
    def directory_for(name: str, namespace: str, host_context: str) -> Path:
        digest = hashlib.sha256(host_context.encode()).hexdigest()[:8]
        safe = re.sub(r"[^A-Za-z0-9.-]", "_", f"{name}.{namespace}")
        return root() / "vclusters" / f"{safe}.{digest}"

    @property
    def directory(self) -> Path:
        return self.directory_for(self.name, self.namespace, self.host_context)

    def save(self) -> None:
        _write_json(self.directory / "vcluster.json", asdict(self))

    @classmethod
    def all(cls) -> list[VClusterRecord]:
        files = sorted((root() / "vclusters").glob("*/vcluster.json"))
        return [cls(**_read_json(f)) for f in files]

    def expired(self, now: float) -> bool:
        return self.ttl_seconds is not None and now >= self.created + self.ttl_seconds

    def forget(self) -> None:
        shutil.rmtree(self.directory, ignore_errors=True)


def context_name(name: str, namespace: str, host_context: str) -> str:
    """The kubeconfig context of a virtual cluster (vCluster's naming, with our prefix)."""
    return f"vcsync_{name}_{namespace}_{host_context}"


def remember_previous_context(context: str) -> None:
    _write_json(root() / "connect.json", {"previous": context})


def previous_context() -> str | None:
    file = root() / "connect.json"
    return str(_read_json(file)["previous"]) if file.exists() else None


def host_context(config: kubeconfig.Config, required: bool = True) -> str:
    """The current context, or, when that is a virtual cluster's, its host context."""
    current = kubeconfig.current_context(config)
    if current is None:
        if required:
            raise CliError("no current kubectl context: start a local host cluster with "
                           "`vcsync host create`, or pick one with `kubectl config use-context`")
        return ""
    for record in VClusterRecord.all():
        if record.context == current:
            return record.host_context
    return current


def find(name: str, namespace: str | None) -> VClusterRecord | None:
    """The record named ``name`` (on the current host context when several match)."""
    matches = [r for r in VClusterRecord.all()
               if r.name == name and namespace in (None, r.namespace)]
    if len(matches) > 1:
        host = host_context(kubeconfig.load(), required=False)
        matches = [r for r in matches if r.host_context == host] or matches
    if len(matches) > 1:
        spaces = ", ".join(sorted(r.namespace for r in matches))
        raise CliError(f"several virtual clusters are named {name!r} (namespaces {spaces}); "
                       "pick one with --namespace")
    return matches[0] if matches else None


def require(name: str, namespace: str | None) -> VClusterRecord:
    record = find(name, namespace)
    if record is None:
        where = f" in namespace {namespace!r}" if namespace else ""
        raise CliError(f"no virtual cluster named {name!r}{where}; see `vcsync list`")
    return record


_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
_DURATION = re.compile(r"(\d+)([smhd])")


def parse_duration(text: str) -> float:
    """``90s``, ``30m``, ``2h``, ``1d``, ``1h30m`` -> seconds; anything else is an error."""
    parts = _DURATION.findall(text)
    if not parts or "".join(n + u for n, u in parts) != text:
        raise CliError(f"invalid duration {text!r}: use e.g. 90s, 30m, 2h, 1d or 1h30m")
    seconds = sum(int(n) * _UNITS[u] for n, u in parts)
    if seconds <= 0:
        raise CliError(f"invalid duration {text!r}: must be longer than 0s")
    return float(seconds)


def format_age(seconds: float) -> str:
    """Like kubectl's AGE column: 45s, 12m, 3h, 2d."""
    seconds = max(0, int(seconds))
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"
