"""The user's kubeconfig: read, merge our entries, switch contexts, extract one.

Why our own code and not ``kubectl config``: the CLI must merge without ever
clobbering the user's other entries, and must work before any binary exists.

Invariants: only entries whose names we were given are added or removed;
the file is replaced atomically with mode 0600 (it holds credentials); a
missing file reads as an empty kubeconfig.

Which file: the first path of ``$KUBECONFIG`` (where kubectl also writes new
entries), else ``~/.kube/config``.
"""

from __future__ import annotations

import base64
import os
from pathlib import Path
from typing import Any

import yaml

from syncer.cli.errors import CliError

Config = dict[str, Any]
_SECTIONS = ("clusters", "users", "contexts")
_FILE_FIELDS = {
    "certificate-authority": "certificate-authority-data",
    "client-certificate": "client-certificate-data",
    "client-key": "client-key-data",
}


def path() -> Path:
    first = os.environ.get("KUBECONFIG", "").split(os.pathsep)[0]
    return Path(first) if first else Path.home() / ".kube" / "config"


def empty() -> Config:
    return {"apiVersion": "v1", "kind": "Config", "clusters": [], "users": [], "contexts": []}


def load(file: Path | None = None) -> Config:
    file = file or path()
    try:
        data = yaml.safe_load(file.read_text()) if file.exists() else None
    except (OSError, yaml.YAMLError) as exc:
        raise CliError(f"cannot read kubeconfig {file}: {exc}") from exc
    if data is None:
        return empty()
    if not isinstance(data, dict):
        raise CliError(f"kubeconfig {file} is not a kubeconfig (expected a mapping)")
    data.setdefault("apiVersion", "v1")
    data.setdefault("kind", "Config")
    for section in _SECTIONS:
        data[section] = data.get(section) or []
    return data


def save(config: Config, file: Path | None = None) -> None:
    file = file or path()
    file.parent.mkdir(parents=True, exist_ok=True)
    tmp = file.with_name(f".{file.name}.vcsync-tmp")
    tmp.write_text(yaml.safe_dump(config, sort_keys=False))
    tmp.chmod(0o600)
    tmp.replace(file)


def current_context(config: Config) -> str | None:
    current = config.get("current-context")
    return str(current) if current else None


def has_context(config: Config, name: str) -> bool:
    return any(c.get("name") == name for c in config["contexts"])


def upsert(config: Config, name: str, cluster: dict[str, Any], user: dict[str, Any]) -> None:
    """Add (or replace) cluster, user and context entries all named ``name``."""
    remove(config, name)
    config["clusters"].append({"name": name, "cluster": cluster})
    config["users"].append({"name": name, "user": user})
    config["contexts"].append({"name": name, "context": {"cluster": name, "user": name}})


def remove(config: Config, name: str) -> None:
    """Drop the entries named ``name``; forget it as current context."""
    for section in _SECTIONS:
        config[section] = [e for e in config[section] if e.get("name") != name]
    if config.get("current-context") == name:
        config["current-context"] = ""


def extract(config: Config, context: str, base: Path) -> Config:
    """A self-contained kubeconfig holding only ``context``, with files inlined.

    Why: the syncer and the CLI's own requests must not depend on the user
    editing their kubeconfig later, or on relative paths.
    """
    ctx = _named(config, "contexts", context)["context"]
    cluster = _inline(dict(_named(config, "clusters", ctx["cluster"])["cluster"]), base)
    user = _inline(dict(_named(config, "users", ctx["user"])["user"]), base)
    if "tokenFile" in user:
        user["token"] = _read(base, user.pop("tokenFile")).decode().strip()
    names = {"cluster": context, "user": context}
    return {
        "apiVersion": "v1", "kind": "Config", "current-context": context,
        "clusters": [{"name": context, "cluster": cluster}],
        "users": [{"name": context, "user": user}],
        "contexts": [{"name": context, "context": {**ctx, **names}}],
    }


def _named(config: Config, section: str, name: str) -> dict[str, Any]:
    for entry in config.get(section) or ():
        if entry.get("name") == name:
            return dict(entry)
    raise CliError(f"kubeconfig {path()} has no {section[:-1]} named {name!r}")


def _inline(entry: dict[str, Any], base: Path) -> dict[str, Any]:
    for field, data_field in _FILE_FIELDS.items():
        if field in entry:
            entry[data_field] = base64.b64encode(_read(base, entry.pop(field))).decode()
    return entry


def _read(base: Path, name: str) -> bytes:
    file = base / Path(name).expanduser()
    try:
        return file.read_bytes()
    except OSError as exc:
        raise CliError(f"kubeconfig refers to {file}, which cannot be read: {exc}") from exc
