"""The syncer's snapshot endpoint: how a snapshot leaves a Helm-installed control-plane pod.

``vcsync run --snapshot-address 127.0.0.1:8081 --snapshot-store /data/state.db
--snapshot-pki /pki`` serves ``GET /snapshot``: the whole archive
(:mod:`syncer.snapshot.archive`), built in the pod from a consistent copy of
kine's store, the PKI and the rendered syncer config.

Why here and like this: the syncer is the one container of the pod that is
ours (Python, this package), it already runs next to kine and sees the data
volume and the PKI. The listener binds to the pod's loopback only, so the
archive never crosses the pod network in clear: the CLI reaches it through
``kubectl port-forward`` (the host API server's authenticated, TLS-tunnelled
pods/portforward, which needs host RBAC on the namespace). It also asks for
the virtual cluster's admin token (the ``vcsync-admin`` row of the PKI's
token file), because the archive holds the CA key and every Secret of the
tenant: only who may already read everything may take it.

The copy is staged beside the store (the data volume has room for the store;
the pod's /tmp is small) and removed after the response.
"""

from __future__ import annotations

import asyncio
import csv
import hmac
import importlib.metadata
import logging
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from aiohttp import web

from syncer.snapshot import archive, kine
from syncer.snapshot.archive import Manifest

log = logging.getLogger("vcsync.snapshot")
ADMIN = "vcsync-admin"
_CHUNK = 1 << 20


@dataclass(frozen=True)
class Source:
    """What one virtual cluster's snapshot is made of, in the pod."""

    name: str
    namespace: str
    store: Path
    pki: Path
    config: Path | None
    kubernetes_version: str

    def admin_token(self) -> str:
        with (self.pki / "tokens.csv").open(newline="") as rows:
            for row in csv.reader(rows):
                if len(row) > 1 and row[1] == ADMIN:
                    return row[0]
        raise ValueError(f"{self.pki / 'tokens.csv'} has no {ADMIN} token")

    def build(self, staging: Path) -> Path:
        """Stage the parts under ``staging`` and archive them to ``staging/snapshot.tgz``."""
        parts = staging / "parts"
        info = kine.backup(self.store, parts / kine.STORE_FILE)
        archive.copy_tree(self.pki, parts / "pki")
        (parts / "config").mkdir(parents=True)
        if self.config is not None:
            shutil.copyfile(self.config, parts / "config" / "syncer.yaml")
        manifest = Manifest(
            kubernetes_version=self.kubernetes_version, store_type=kine.STORE_TYPE,
            store_file=kine.STORE_FILE, revision=info.revision, objects=info.objects,
            source={"name": self.name, "namespace": self.namespace, "driver": "helm"},
            vcsync_version=importlib.metadata.version("vcsync"))
        out = staging / "snapshot.tgz"
        archive.write(parts, manifest, out)
        shutil.rmtree(parts)
        return out


class SnapshotEndpoint:
    """``GET /snapshot`` on its own loopback listener; one snapshot at a time."""

    def __init__(self, source: Source) -> None:
        self.source = source
        self._lock = asyncio.Lock()
        self._runner: web.AppRunner | None = None

    async def start(self, address: str) -> None:
        app = web.Application()
        app.router.add_get("/snapshot", self.snapshot)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        host, _, port = address.rpartition(":")
        await web.TCPSite(self._runner, host or "127.0.0.1", int(port)).start()

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    def _authorized(self, request: web.Request) -> bool:
        scheme, _, token = request.headers.get("Authorization", "").partition(" ")
        return scheme.lower() == "bearer" and hmac.compare_digest(
            token.encode(), self.source.admin_token().encode())

    async def snapshot(self, request: web.Request) -> web.StreamResponse:
        if not self._authorized(request):
            return web.Response(status=401, text="a snapshot needs the virtual cluster's "
                                "admin token (Authorization: Bearer ...)\n")
        async with self._lock:
            staging = Path(tempfile.mkdtemp(prefix=".vcsync-snapshot-",
                                            dir=self.source.store.parent))
            try:
                return await self._send(request, staging)
            except kine.StoreError as exc:
                log.error("snapshot failed: %s", exc)
                return web.Response(status=500, text=f"snapshot failed: {exc}\n")
            finally:
                shutil.rmtree(staging, ignore_errors=True)

    async def _send(self, request: web.Request, staging: Path) -> web.StreamResponse:
        file = await asyncio.to_thread(self.source.build, staging)
        response = web.StreamResponse(headers={
            "Content-Type": "application/gzip",
            "Content-Length": str(file.stat().st_size),
            "Content-Disposition": f'attachment; filename="{self.source.name}.tgz"'})
        await response.prepare(request)
        with file.open("rb") as handle:
            while chunk := await asyncio.to_thread(handle.read, _CHUNK):
                await response.write(chunk)
        await response.write_eof()
        log.info("snapshot sent", extra={"bytes": file.stat().st_size})
        return response
