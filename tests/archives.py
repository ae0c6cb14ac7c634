"""Broken snapshot archives made from good ones, for the tests that must see them refused.

Shared by the format's unit tests and the CLI's end-to-end ones, so both break
archives the same way.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import tarfile
from pathlib import Path

import orjson

from syncer.snapshot import archive

Members = list[tuple[str, bytes]]


def members(file: Path) -> Members:
    """(name, content) of every member, in order."""
    found = []
    with tarfile.open(file, "r:gz") as tar:
        for member in tar.getmembers():
            handle = tar.extractfile(member)
            assert handle is not None, member.name
            found.append((member.name, handle.read()))
    return found


def repack(items: Members, out: Path) -> Path:
    """A gzipped tar of ``items`` at ``out``."""
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w") as tar:
        for name, data in items:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    out.write_bytes(gzip.compress(raw.getvalue()))
    return out


def remanifested(items: Members, **changes: object) -> Members:
    """``items`` with manifest fields changed and the manifest's own digest made to match
    again (what a careless editor of the manifest would do)."""
    body = orjson.loads(dict(items)[archive.MANIFEST])
    body.update(changes)
    text = orjson.dumps(body)
    rest = [(n, d) for n, d in items if n not in (archive.MANIFEST, archive.MANIFEST_DIGEST)]
    return [(archive.MANIFEST, text),
            (archive.MANIFEST_DIGEST, hashlib.sha256(text).hexdigest().encode()), *rest]
