"""Snapshot and restore of a virtual cluster holding N objects (default 10,000), timed.

Run: ``.venv/bin/python -m benchmarks.snapshot [--objects 10000] [--output DIR]``
(opt-in: about 5 minutes here; not part of ``make test``).

Everything goes through the CLI as a user runs it, in a private home (its own
kubeconfig and state directory, removed at the end): ``vcsync host create``,
``vcsync create``, then N objects written into the virtual cluster (ConfigMaps
with 512 random hex characters of data and Secrets, spread over namespaces of 1,000), then

- ``vcsync snapshot create`` while a writer keeps creating ConfigMaps at
  ``--write-rate`` per second: wall time, archive and store size, and the
  writer's request latencies during the snapshot against those before it
  (the tenant is never paused, so they should not differ much);
- ``vcsync snapshot restore NEW FILE``: a new cluster from it, to Running;
- ``vcsync snapshot restore NAME FILE --yes``: the same cluster replaced;

and checks that both restored clusters hold the snapshot's object counts.
Results go to ``--output/snapshot.json`` and ``snapshot.md``.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
import yaml

from benchmarks.common import percentiles
from contract import resources as r
from syncer.kube.client import KubeClient
from syncer.snapshot import archive

_PER_NAMESPACE = 1000
_CONCURRENCY = 16


@dataclass
class Home:
    """A private CLI home: ``vcsync`` with its own kubeconfig and state directory."""

    root: Path
    steps: dict[str, list[str]] = field(default_factory=dict)
    """The step lines (``...: done in 1.2s``) each command printed, by command."""

    def env(self) -> dict[str, str]:
        return {**os.environ, "KUBECONFIG": str(self.root / "kube" / "config"),
                "XDG_STATE_HOME": str(self.root / "state")}

    def run(self, *args: str) -> float:
        """Run ``vcsync ARGS``; its wall time in seconds (any failure ends the benchmark)."""
        start = time.monotonic()
        proc = subprocess.run([sys.executable, "-m", "syncer.cli.main", *args], env=self.env(),
                              capture_output=True, text=True, stdin=subprocess.DEVNULL,
                              check=False)
        if proc.returncode != 0:
            raise SystemExit(f"vcsync {' '.join(args)} failed:\n{proc.stderr}")
        self.steps[" ".join(args[:3])] = [
            line.strip() for line in proc.stderr.splitlines() if ": done in " in line]
        return time.monotonic() - start

    def kubeconfig(self, name: str) -> Path:
        proc = subprocess.run([sys.executable, "-m", "syncer.cli.main", "connect", name,
                               "--print"], env=self.env(), capture_output=True, text=True,
                              check=True)
        path = self.root / f"{name}.kubeconfig"
        path.write_text(proc.stdout)
        return path


@contextmanager
def home() -> Iterator[Home]:
    with tempfile.TemporaryDirectory(prefix="vcsync-bench-snapshot-") as tmp:
        h = Home(Path(tmp))
        h.run("host", "create", "bench", "--nodes", "1")
        try:
            yield h
        finally:
            h.run("host", "delete", "bench")


# -- the workload ------------------------------------------------------------------------


def _objects(n: int) -> list[tuple[r.Resource, str, dict[str, Any]]]:
    """N objects: 2 ConfigMaps for every Secret, 512 random hex characters of data each
    (as incompressible as keys and tokens; repeated text would flatter the archive size)."""
    rng = random.Random(0)
    made = []
    for i in range(n):
        namespace = f"bench-{i // _PER_NAMESPACE}"
        data = {"v": rng.randbytes(256).hex()}
        if i % 3 == 2:
            made.append((r.SECRETS, namespace, {"metadata": {"name": f"s-{i}"},
                                               "stringData": data}))
        else:
            made.append((r.CONFIGMAPS, namespace, {"metadata": {"name": f"c-{i}"},
                                                  "data": data}))
    return made


async def fill(client: KubeClient, n: int) -> float:
    """Create the N objects (16 at a time); the seconds it took."""
    start = time.monotonic()
    for i in range((n + _PER_NAMESPACE - 1) // _PER_NAMESPACE):
        await client.create(r.NAMESPACES, {"metadata": {"name": f"bench-{i}"}})
    queue = _objects(n)

    async def worker() -> None:
        while queue:
            resource, namespace, obj = queue.pop()
            await client.create(resource, obj, namespace)

    await asyncio.gather(*(worker() for _ in range(_CONCURRENCY)))
    return time.monotonic() - start


@dataclass
class Writer:
    """Creates ConfigMaps at ``rate``/s and records each request's latency and its time."""

    client: KubeClient
    rate: float
    samples: list[tuple[float, float]] = field(default_factory=list)
    """(started at, seconds)"""
    stop: asyncio.Event = field(default_factory=asyncio.Event)

    async def run(self) -> None:
        n = 0
        start = time.monotonic()
        while not self.stop.is_set():
            began = time.monotonic()
            await self.client.create(r.CONFIGMAPS, {"metadata": {"name": f"w-{n}"},
                                                    "data": {"v": "w"}}, "bench-0")
            self.samples.append((began, time.monotonic() - began))
            n += 1
            await asyncio.sleep(max(0.0, start + n / self.rate - time.monotonic()))

    def between(self, start: float, end: float) -> list[float]:
        return [s * 1000 for t, s in self.samples if start <= t <= end]


async def count_objects(kubeconfig: Path) -> dict[str, int]:
    client = await KubeClient.from_kubeconfig(str(kubeconfig), name="count")
    try:
        return {res.plural: len((await client.list(res))[0])
                for res in (r.CONFIGMAPS, r.SECRETS, r.NAMESPACES)}
    finally:
        await client.close()


# -- the run --------------------------------------------------------------------------------


async def _snapshot_under_writes(h: Home, kubeconfig: Path, file: Path,
                                 rate: float) -> dict[str, Any]:
    client = await KubeClient.from_kubeconfig(str(kubeconfig), name="writer")
    writer = Writer(client, rate)
    task = asyncio.create_task(writer.run())
    try:
        await asyncio.sleep(10.0)  # the writer's baseline: ten seconds of requests
        began = time.monotonic()
        seconds = await asyncio.to_thread(h.run, "snapshot", "create", "bench", "-o", str(file))
        ended = time.monotonic()
    finally:
        writer.stop.set()
        await task
        await client.close()
    return {"snapshot_seconds": round(seconds, 2),
            "writes_before_ms": percentiles(writer.between(0, began)),
            "writes_during_ms": percentiles(writer.between(began, ended)),
            "writes_during": len(writer.between(began, ended))}


async def run(objects: int, rate: float) -> dict[str, Any]:
    with home() as h:
        h.run("create", "bench", "--no-connect")
        kubeconfig = h.kubeconfig("bench")
        client = await KubeClient.from_kubeconfig(str(kubeconfig), name="fill")
        try:
            fill_seconds = await fill(client, objects)
        finally:
            await client.close()
        file = h.root / "bench.tgz"
        result: dict[str, Any] = {"objects": objects, "fill_seconds": round(fill_seconds, 1)}
        result |= await _snapshot_under_writes(h, kubeconfig, file, rate)
        manifest = archive.read_manifest(file)
        result |= {"archive_bytes": file.stat().st_size,
                   "store_bytes": manifest.files[manifest.store_file]["size"],
                   "store_objects": manifest.total_objects, "revision": manifest.revision}
        result["restore_new_seconds"] = round(
            h.run("snapshot", "restore", "copy", str(file), "--no-connect"), 2)
        result["restore_existing_seconds"] = round(
            h.run("snapshot", "restore", "bench", str(file), "--yes", "--no-connect"), 2)
        counts = [await count_objects(h.kubeconfig(name)) for name in ("bench", "copy")]
        result["restored_counts_equal"] = counts[0] == counts[1]
        result["restored_counts"] = counts[0]
        result["steps"] = {k: v for k, v in h.steps.items() if k.startswith("snapshot")}
    return result


def write(result: dict[str, Any], out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    (out / "snapshot.json").write_bytes(orjson.dumps(result, option=orjson.OPT_INDENT_2))
    (out / "snapshot.md").write_text(markdown(result))


def markdown(result: dict[str, Any]) -> str:
    mib = 1 << 20
    rows = [
        ("objects written (ConfigMaps, Secrets, 512 random hex characters each)",
         f"{result['objects']:,}"),
        ("live objects in the store (all kinds)", f"{result['store_objects']:,}"),
        ("`vcsync snapshot create` (while writing)", f"{result['snapshot_seconds']} s"),
        ("archive size", f"{result['archive_bytes'] / mib:.1f} MiB"),
        ("store copy size (uncompressed)", f"{result['store_bytes'] / mib:.1f} MiB"),
        ("`vcsync snapshot restore` into a new cluster (to Running)",
         f"{result['restore_new_seconds']} s"),
        ("`vcsync snapshot restore --yes` over the running cluster",
         f"{result['restore_existing_seconds']} s"),
        ("writer p50/p99 before the snapshot",
         f"{result['writes_before_ms']['Perc50']:.0f}/{result['writes_before_ms']['Perc99']:.0f}"
         " ms"),
        ("writer p50/p99 during the snapshot",
         f"{result['writes_during_ms']['Perc50']:.0f}/{result['writes_during_ms']['Perc99']:.0f}"
         f" ms ({result['writes_during']} writes)"),
        ("restored object counts equal", str(result["restored_counts_equal"])),
    ]
    lines = ["| what | figure |", "|---|---|", *(f"| {a} | {b} |" for a, b in rows)]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.snapshot",
                                     description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--objects", type=int, default=10_000)
    parser.add_argument("--write-rate", type=float, default=20.0,
                        help="ConfigMaps/s written while the snapshot is taken")
    parser.add_argument("--output", type=Path, default=Path("benchmarks/results"))
    args = parser.parse_args()
    if args.objects < 1 or args.write_rate <= 0:
        parser.error("--objects and --write-rate must be positive")
    result = asyncio.run(run(args.objects, args.write_rate))
    write(result, args.output)
    print(markdown(result), end="")
    print(yaml.safe_dump({"written": str(args.output / "snapshot.json")}), end="")


if __name__ == "__main__":
    main()
