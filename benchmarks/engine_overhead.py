"""Engine overhead per event, and cache memory per 10k objects (no API server).

What is measured: the syncer's own CPU from a watch event (raw JSON bytes) to
the write call: orjson parse, store update with indexes, queue dedupe and
sharding, reconcile (both stores read), a translator that returns one Create
(no-op: it copies the object), and the writer's checks. The API client is
replaced by an in-memory stream so only the engine is timed; end-to-end
figures against real API servers come from ``vcsync bench``.

Run: ``.venv/bin/python -m benchmarks.engine_overhead [--events 20000]``.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import time
from collections.abc import AsyncIterator
from typing import Any, cast

import orjson
import uvloop

from benchmarks.common import self_rss_kib
from contract.resources import CONFIGMAPS, Obj
from contract.translator import Action, Context, Create, Side, Translator
from syncer.controller import CacheLookup, Engine, Wiring
from syncer.informer import InformerSet
from syncer.kube.client import KubeClient, WatchEvent
from syncer.store import Store, strip
from syncer.writer import EventRecorder, StatusBatcher, Writer
from translators.objects import host_metadata


class NoopTranslator(Translator):
    """One Create per object; never anything else."""

    kind = "noop"
    resource = CONFIGMAPS

    def to_host(self, virtual: Obj, ctx: Context) -> list[Action]:
        obj = {"metadata": host_metadata(virtual, ctx, "ConfigMap")}
        return [Create(Side.HOST, self.host, obj)]

    def sync(self, virtual: Obj, host: Obj, ctx: Context) -> list[Action]:
        return []


class StreamClient:
    """Stands in for KubeClient: an empty LIST, then a watch stream of prepared lines."""

    def __init__(self, name: str, lines: list[bytes], expected: int = 0) -> None:
        self.name = name
        self.lines = lines
        self.expected = expected
        self.created = 0
        self.done = asyncio.Event()

    async def list(self, *args: Any, **kwargs: Any) -> tuple[list[Obj], str]:
        return [], "1"

    async def watch(self, *args: Any, **kwargs: Any) -> AsyncIterator[WatchEvent]:
        for line in self.lines:
            event = orjson.loads(line)
            yield WatchEvent(event["type"], event["object"])
        self.lines = []
        await asyncio.Event().wait()  # an idle watch

    async def create(self, res: Any, obj: Obj, namespace: str | None = None) -> Obj:
        self.created += 1
        if self.created == self.expected:
            self.done.set()
        return obj


def configmap(i: int) -> Obj:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": f"cm-{i}", "namespace": f"ns-{i % 50}", "uid": f"uid-{i:08d}",
            "resourceVersion": str(i + 2), "labels": {"app": "bench", "idx": str(i)},
            "managedFields": [{"manager": "kubectl", "operation": "Update"}],
        },
        "data": {"config.yaml": "x" * 512},
    }


async def _run(events: int) -> float:
    lines = [orjson.dumps({"type": "ADDED", "object": configmap(i)}) for i in range(events)]
    virtual, host = StreamClient("virtual", lines), StreamClient("host", [], expected=events)
    clients = cast(dict[Side, KubeClient], {Side.VIRTUAL: virtual, Side.HOST: host})
    informers = InformerSet(clients, "bench-host", "vcsync.dev/managed-by=bench")
    ctx = Context("bench", "bench-host", CacheLookup(informers))
    status = StatusBatcher(clients[Side.VIRTUAL], lambda: True)
    writer = Writer(clients, "bench", "bench-host", lambda: True, status)
    recorder = EventRecorder(clients[Side.VIRTUAL], lambda: True)
    wiring = Wiring(informers, writer, status, recorder, ctx, lambda: True,
                    shards=8, workers_per_shard=4)
    engine = Engine([NoopTranslator()], wiring)
    cpu = time.process_time()
    runner = asyncio.create_task(engine.run())
    await asyncio.wait_for(host.done.wait(), 300)
    cpu = time.process_time() - cpu
    await engine.stop()
    runner.cancel()
    return cpu


def rss_per_10k(count: int = 10_000) -> float:
    """KiB of RSS that 10k cached ConfigMaps (512 B of data each) cost in a Store."""
    payloads = [orjson.dumps(configmap(i)) for i in range(count)]
    gc.collect()
    before = self_rss_kib()
    store = Store()
    for payload in payloads:
        store.upsert(strip(orjson.loads(payload)))
    gc.collect()
    return (self_rss_kib() - before) * 10_000 / count


def main() -> None:
    parser = argparse.ArgumentParser(description="engine overhead per event")
    parser.add_argument("--events", type=int, default=20_000)
    args = parser.parse_args()
    cpu = uvloop.run(_run(args.events))
    print(f"engine CPU per event (event -> write, no-op translator): "
          f"{cpu / args.events * 1e6:.1f} us  ({args.events} events, {cpu:.2f}s CPU)")
    print(f"RSS per 10k cached ConfigMaps (512 B data each): {rss_per_10k() / 1024:.1f} MiB")


if __name__ == "__main__":
    main()
