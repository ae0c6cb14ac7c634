"""A consistent copy of a kine SQLite store, taken while kine keeps writing.

Why SQLite's online backup: it copies the database inside one read
transaction, so the copy is the store exactly as of one committed revision,
and in WAL mode (kine's) a reader never blocks the writer: the tenant's
API server goes on serving writes while the copy is made. Copying the file
(plus its WAL) by hand could catch a checkpoint half-way.

What kine stores: one row per revision of a key (``id`` is the revision;
``deleted`` marks a tombstone), so the store's revision is the largest id and
the live objects are the keys whose newest row is not a tombstone.
"""

from __future__ import annotations

import sqlite3
from collections import Counter
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path

STORE_TYPE = "kine-sqlite"
STORE_FILE = "store/state.db"
_BUSY_MS = 30_000
_LIVE = """SELECT name FROM kine WHERE id IN (SELECT MAX(id) FROM kine GROUP BY name)
           AND deleted = 0 AND name LIKE '/registry/%'"""


class StoreError(Exception):
    """The store cannot be read or is not a kine database; the message says which."""


@dataclass(frozen=True)
class StoreInfo:
    revision: int
    objects: dict[str, int]


def backup(database: Path, out: Path) -> StoreInfo:
    """Copy ``database`` (kine's SQLite file, possibly in use) to ``out``; describe the copy."""
    if not database.is_file():
        raise StoreError(f"no kine database at {database}")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.unlink(missing_ok=True)
    try:
        with closing(sqlite3.connect(f"file:{database}?mode=ro", uri=True,
                                     timeout=_BUSY_MS / 1000)) as source, \
                closing(sqlite3.connect(out)) as copy:
            source.backup(copy)  # every page in one step: one read transaction
            # One self-contained file: kine switches it back to WAL when it opens it.
            copy.execute("PRAGMA journal_mode=DELETE")
    except sqlite3.Error as exc:
        raise StoreError(f"copying {database}: {exc}") from exc
    return describe(out)


def describe(database: Path) -> StoreInfo:
    """Revision and live objects per storage prefix of a kine database (not in use)."""
    try:
        with closing(sqlite3.connect(f"file:{database}?mode=ro", uri=True)) as db:
            revision = db.execute("SELECT COALESCE(MAX(id), 0) FROM kine").fetchone()[0]
            names = [row[0] for row in db.execute(_LIVE)]
    except sqlite3.Error as exc:
        raise StoreError(f"{database} is not a kine database ({exc})") from exc
    return StoreInfo(int(revision), dict(sorted(Counter(map(prefix, names)).items())))


def prefix(key: str) -> str:
    """The storage prefix of a key: ``/registry/pods/ns/x`` -> ``pods``; a group's
    resources keep the group (``apiextensions.k8s.io/customresourcedefinitions``).

    Services and their Endpoints share ``services`` (``/registry/services/specs``,
    ``/registry/services/endpoints``), as kube-apiserver stores them.
    """
    parts = key.split("/")[2:]
    return "/".join(parts[:2]) if parts and "." in parts[0] else (parts[0] if parts else "")
