"""The user's kubeconfig, read and written by client-go's rules (what kubectl does).

Why our own code and not ``kubectl config``: the CLI must merge without ever
clobbering the user's other entries, and must work before any binary exists.

Which files (client-go's loading rules): ``--kubeconfig FILE`` alone, else
every path of ``$KUBECONFIG`` (``:``-separated; empty and repeated entries
skipped), else ``~/.kube/config``.

Reading merges them: of clusters, users and contexts with the same name the
first file's wins; ``current-context`` (and every other top-level key) comes
from the first file that sets it. Relative file references
(``certificate-authority``, ``client-certificate``, ``client-key``,
``tokenFile``, an exec plugin's command with a ``/``) are resolved against
the directory of the file that holds them. ``--context`` overrides the
current context for this command only (nothing is written for it).

Writing (client-go's ``ModifyConfig``): a changed or removed entry is written
into the file that defined it; a new entry goes to the first file of the list
that exists, else the last; ``current-context`` goes to the first file that
sets one, else that same destination. Only files where something changed are
written.

Invariants:
- only entries whose names we were given are added, changed or removed;
- :func:`edit` reads afresh and writes while it holds ``<file>.lock`` of every
  file it may write (created exclusively, as client-go does, so kubectl waits
  for us and we for it): two ``vcsync create`` at once keep both entries;
- a file is replaced atomically; a symlinked kubeconfig stays a symlink (its
  target is replaced) with mode 0600 (it holds credentials, ours among them);
  a missing file reads as an empty kubeconfig.
"""

from __future__ import annotations

import base64
import contextlib
import copy
import os
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from syncer.cli.errors import CliError

Config = dict[str, Any]
_SECTIONS = ("clusters", "users", "contexts")
_ENTRY_KEY = {"clusters": "cluster", "users": "user", "contexts": "context"}
_FILE_FIELDS = {
    "certificate-authority": "certificate-authority-data",
    "client-certificate": "client-certificate-data",
    "client-key": "client-key-data",
}
_PATH_FIELDS = {"clusters": ("certificate-authority",),
                "users": ("client-certificate", "client-key", "tokenFile")}
LOCK_TIMEOUT = 30.0
"""Seconds :func:`edit` waits for another writer's lock before it gives up."""


@dataclass
class _Overrides:
    kubeconfig: str | None = None
    context: str | None = None


_overrides = _Overrides()


def configure(kubeconfig: str | None = None, context: str | None = None) -> None:
    """The global ``--kubeconfig`` and ``--context`` flags of this command."""
    _overrides.kubeconfig = kubeconfig or None
    _overrides.context = context or None


def paths() -> list[Path]:
    """The files the kubeconfig is merged from, first one first."""
    if _overrides.kubeconfig:
        return [Path(_overrides.kubeconfig)]
    seen: list[Path] = []
    for part in os.environ.get("KUBECONFIG", "").split(os.pathsep):
        if part and Path(part) not in seen:
            seen.append(Path(part))
    return seen or [Path.home() / ".kube" / "config"]


def path() -> Path:
    """The file new entries are written to: the first of :func:`paths` that exists, else the
    last (one explicit or single file: that one)."""
    files = paths()
    return next((f for f in files if f.exists()), files[-1])


def describe() -> str:
    """The kubeconfig for messages: one file, or the list."""
    files = paths()
    return str(files[0]) if len(files) == 1 else os.pathsep.join(map(str, files))


def empty() -> Config:
    return {"apiVersion": "v1", "kind": "Config", "clusters": [], "users": [], "contexts": []}


# -- reading -------------------------------------------------------------------------


def read_file(file: Path) -> Config:
    """One kubeconfig file as it is (sections normalized to lists); empty if missing."""
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
        entries = data.get(section) or []
        if not isinstance(entries, list):
            raise CliError(f"kubeconfig {file}: {section} must be a list")
        data[section] = entries
    return data


@dataclass
class _Files:
    """Every file of the list with its content, and the merged view of them."""

    files: list[Path]
    docs: dict[Path, Config]
    merged: Config = field(default_factory=empty)
    origin: dict[tuple[str, str], Path] = field(default_factory=dict)
    """(section, name) -> the file whose entry the merged view shows."""

    @classmethod
    def read(cls) -> _Files:
        files = paths()
        loaded = cls(files, {f: read_file(f) for f in files})
        loaded._merge()
        return loaded

    def _merge(self) -> None:
        merged = self.merged
        for file in self.files:
            doc = self.docs[file]
            for key, value in doc.items():
                if key in _SECTIONS:
                    for entry in value:
                        if not isinstance(entry, dict):
                            continue
                        name = str(entry.get("name", ""))
                        if (key, name) not in self.origin:
                            self.origin[(key, name)] = file
                            merged[key].append(_resolved(key, entry, file.parent))
                elif key == "current-context":
                    if value and not merged.get(key):
                        merged[key] = value
                elif key not in merged:
                    merged[key] = copy.deepcopy(value)

    def write(self, new: Config) -> None:
        """Write what changed between the merged view and ``new`` into the right files."""
        dirty: set[Path] = set()
        destination = path()
        for section in _SECTIONS:
            old = {str(e.get("name")): e for e in self.merged[section]}
            now = {str(e.get("name")): e for e in new.get(section) or ()}
            for name, entry in now.items():
                if old.get(name) == entry:
                    continue
                file = self.origin.get((section, name), destination)
                _put(self.docs[file], section, name, entry)
                dirty.add(file)
            for name in old.keys() - now.keys():
                file = self.origin[(section, name)]
                self.docs[file][section] = [e for e in self.docs[file][section]
                                            if str(e.get("name")) != name]
                dirty.add(file)
        current = new.get("current-context") or ""
        if current != (self.merged.get("current-context") or ""):
            file = next((f for f in self.files
                         if f.exists() and self.docs[f].get("current-context")), destination)
            self.docs[file]["current-context"] = current
            dirty.add(file)
        for file in self.files:  # in list order: deterministic for readers
            if file in dirty:
                write_file(self.docs[file], file)


def _put(doc: Config, section: str, name: str, entry: dict[str, Any]) -> None:
    entries = doc[section]
    for i, existing in enumerate(entries):
        if str(existing.get("name")) == name:
            entries[i] = entry
            return
    entries.append(entry)


def _resolved(section: str, entry: dict[str, Any], base: Path) -> dict[str, Any]:
    """A copy of ``entry`` with relative file references made absolute (against ``base``,
    the directory of the file that holds it), as client-go resolves them on load."""
    entry = copy.deepcopy(entry)
    body = entry.get(_ENTRY_KEY[section])
    if not isinstance(body, dict):
        return entry
    for name in _PATH_FIELDS.get(section, ()):
        value = body.get(name)
        if isinstance(value, str) and value and not os.path.isabs(value):
            body[name] = str(base / value)
    command = (body.get("exec") or {}).get("command") if section == "users" else None
    if isinstance(command, str) and "/" in command and not os.path.isabs(command):
        body["exec"]["command"] = str(base / command)
    return entry


def load() -> Config:
    """The merged kubeconfig (read-only use; to change it, use :func:`edit`)."""
    return _Files.read().merged


@contextlib.contextmanager
def edit(timeout: float = LOCK_TIMEOUT) -> Iterator[Config]:
    """The merged kubeconfig, read under the lock of every file that may be written; what
    the block changes is written (by client-go's rules) before the locks are released."""
    files = paths()
    destination = path()
    destination.parent.mkdir(parents=True, exist_ok=True)
    lockable = [f for f in files if f.exists() or f == destination]
    with contextlib.ExitStack() as stack:
        for file in lockable:
            stack.enter_context(_locked(file, timeout))
        loaded = _Files.read()
        config = copy.deepcopy(loaded.merged)
        yield config
        loaded.write(config)


# -- locking and writing ------------------------------------------------------------------


def lock_path(file: Path) -> Path:
    return file.with_name(f"{file.name}.lock")


@contextlib.contextmanager
def _locked(file: Path, timeout: float) -> Iterator[None]:
    """Hold ``<file>.lock`` (created exclusively, holding our pid) for the block.

    A lock whose recorded pid is dead is stale and removed; kubectl's (empty) locks are
    waited for until ``timeout``.
    """
    lock = lock_path(file)
    deadline = time.monotonic() + timeout
    delay = 0.01
    while True:
        try:
            fd = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
        except FileExistsError:
            if _stale(lock):
                with contextlib.suppress(FileNotFoundError):
                    lock.unlink()
                continue
            if time.monotonic() >= deadline:
                raise CliError(
                    f"kubeconfig {file} is locked: {lock} exists (kubectl or vcsync is writing "
                    f"it); if neither is running, remove {lock}") from None
            time.sleep(delay)
            delay = min(delay * 2, 0.2)
            continue
        except OSError as exc:
            raise CliError(f"cannot lock kubeconfig {file}: {exc}") from exc
        with os.fdopen(fd, "w") as handle:
            handle.write(f"{os.getpid()}\n")
        break
    try:
        yield
    finally:
        with contextlib.suppress(FileNotFoundError):
            lock.unlink()


def _stale(lock: Path) -> bool:
    """The lock names a process (ours do) that is gone."""
    try:
        text = lock.read_text().strip()
    except OSError:
        return False
    if not text.isdigit():
        return False
    try:
        os.kill(int(text), 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


def write_file(config: Config, file: Path) -> None:
    """Replace ``file`` atomically with ``config``; through a symlink, its target is replaced
    (the link stays); mode 0600, as it holds credentials."""
    target = Path(os.path.realpath(file))
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.",
                               suffix=".vcsync-tmp")
    try:
        with os.fdopen(fd, "w") as handle:
            handle.write(yaml.safe_dump(config, sort_keys=False))
        os.chmod(tmp, 0o600)
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def save(config: Config, file: Path) -> None:
    """Write a kubeconfig of our own (a single file nobody else edits)."""
    write_file(config, file)


# -- entries --------------------------------------------------------------------------------


def current_context(config: Config) -> str | None:
    """``--context`` if given, else the kubeconfig's current context."""
    current = _overrides.context or config.get("current-context")
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


def extract(config: Config, context: str, base: Path | None = None) -> Config:
    """A self-contained kubeconfig holding only ``context``, with files inlined.

    Why: the syncer and the CLI's own requests must not depend on the user
    editing their kubeconfig later, or on relative paths. (Paths of a loaded
    kubeconfig are already absolute; ``base`` resolves those of a hand-made one.)
    """
    base = base or Path.cwd()
    ctx = _named(config, "contexts", context)["context"]
    cluster = _inline(dict(_named(config, "clusters", ctx["cluster"])["cluster"]), base)
    user = _inline(copy.deepcopy(dict(_named(config, "users", ctx["user"])["user"])), base)
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
    raise CliError(f"kubeconfig {describe()} has no {section[:-1]} named {name!r}")


def _inline(entry: dict[str, Any], base: Path) -> dict[str, Any]:
    for name, data_field in _FILE_FIELDS.items():
        if name in entry:
            entry[data_field] = base64.b64encode(_read(base, entry.pop(name))).decode()
    return entry


def _read(base: Path, name: str) -> bytes:
    file = base / Path(name).expanduser()
    try:
        return file.read_bytes()
    except OSError as exc:
        raise CliError(f"kubeconfig refers to {file}, which cannot be read: {exc}") from exc
