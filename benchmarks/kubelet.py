"""``vcsync bench kubelet``: log streams through the virtual cluster vs. the host directly.

What a tenant pays for reading a pod's log through its virtual cluster: the
bytes pass the virtual kube-apiserver, the syncer's kubelet endpoint and the
host kube-apiserver before kwok's file reader, where a host user's pass the
host kube-apiserver only. One run, arms alternating A-B-B-A (A: the host pod's
log from the host API; B: the virtual pod's log from the virtual API), each arm
``rounds`` reads of the whole log, measured in this process with a raw HTTPS
client (no kubectl start-up in the figures):

- time to the first body byte (a small log: request latency, not transfer);
- throughput of the big log (``size_mib``, default 10 MiB);
- the syncer's RSS at rest, with ``streams`` idle follow streams open, and at the
  peak while ``streams`` concurrent readers each read the big log.

Figures are ratios or side-by-side arms of one run: the machine is shared.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import datetime
import http.client
import ssl
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path

import orjson

from benchmarks.common import VC, local_stack, percentile, process_sample, statistics
from contract import naming
from contract.resources import Obj
from syncer.local.cluster import ControlPlane
from syncer.local.process import wait_for

NAMESPACE = "bench"
POD = "logger"
SMALL = "small"


@dataclass(frozen=True)
class KubeletOptions:
    rounds: int = 5
    size_mib: int = 10
    streams: int = 20
    output: Path = Path("vcsync-bench")


@dataclass
class Arm:
    name: str
    side: str
    first_byte_ms: list[float] = field(default_factory=list)
    mib_per_s: list[float] = field(default_factory=list)


@dataclass
class KubeletResult:
    options: Obj
    arms: list[Arm]
    rss_kib: dict[str, int]
    log_bytes: int

    def median(self, side: str, attr: str) -> float:
        values = [v for arm in self.arms if arm.side == side for v in getattr(arm, attr)]
        return percentile(values, 50)


class LogReader:
    """GET a pod's log from one API server as its admin, on a fresh connection."""

    def __init__(self, plane: ControlPlane, namespace: str) -> None:
        if plane.pki is None:
            raise RuntimeError(f"{plane.kind} {plane.name} is not started")
        self._port = plane.ports["apiserver"]
        self._token = plane.admin_token()
        self._namespace = namespace
        self._tls = ssl.create_default_context(cafile=str(plane.pki.ca_cert))

    @contextmanager
    def open(self, pod: str, follow: bool = False) -> Iterator[http.client.HTTPResponse]:
        conn = http.client.HTTPSConnection("127.0.0.1", self._port, context=self._tls,
                                           timeout=120)
        query = "?follow=true" if follow else ""
        conn.request("GET", f"/api/v1/namespaces/{self._namespace}/pods/{pod}/log{query}",
                     headers={"Authorization": f"Bearer {self._token}"})
        response = conn.getresponse()
        try:
            if response.status != 200:
                raise RuntimeError(f"log of {pod}: {response.status} {response.read()[:200]!r}")
            yield response
        finally:
            conn.close()

    def first_byte_ms(self, pod: str) -> float:
        start = time.perf_counter()
        with self.open(pod) as response:
            response.read(1)
            return (time.perf_counter() - start) * 1000

    def read_all(self, pod: str) -> tuple[int, float]:
        """(bytes, seconds) of reading the whole log."""
        start, total = time.perf_counter(), 0
        with self.open(pod) as response:
            while chunk := response.read(1 << 20):
                total += len(chunk)
        return total, time.perf_counter() - start


def _cri_file(path: Path, size: int) -> int:
    line = "x" * 200
    stamp = (datetime.datetime.now(datetime.UTC) - datetime.timedelta(minutes=1)).strftime(
        "%Y-%m-%dT%H:%M:%S.%f000Z")
    record = f"{stamp} stdout F {line}\n"
    count = max(1, size // (len(line) + 1))  # the API serves ``size`` bytes
    path.write_text(record * count)
    return count * (len(line) + 1)  # what the API returns: the message and a newline


def run(options: KubeletOptions, say: Callable[[str], None]) -> KubeletResult:
    with tempfile.TemporaryDirectory(prefix="vcsync-bench-kubelet-") as tmp:
        return _run(options, Path(tmp), say)


def _run(options: KubeletOptions, root: Path, say: Callable[[str], None]) -> KubeletResult:
    with local_stack(root, nodes=1, say=say) as stack:
        syncer = stack.start_syncer()
        virtual, host = stack.virtual.client(), stack.host.client()
        virtual.json("POST", "/api/v1/namespaces", {"metadata": {"name": NAMESPACE}})
        wait_for(lambda: virtual.request(
            "GET", f"/api/v1/namespaces/{NAMESPACE}/serviceaccounts/default")[0] == 200, 60)
        for pod in (POD, SMALL):
            virtual.json("POST", f"/api/v1/namespaces/{NAMESPACE}/pods", {
                "metadata": {"name": pod},
                "spec": {"containers": [{"name": "app", "image": "busybox"}]}})
        host_pods = {pod: naming.host_name(pod, NAMESPACE, VC) for pod in (POD, SMALL)}
        log_bytes = _cri_file(root / "big.log", options.size_mib * 1024 * 1024)
        _cri_file(root / "small.log", 300)
        for pod, file in ((POD, "big.log"), (SMALL, "small.log")):
            host.json("POST", f"/apis/kwok.x-k8s.io/v1alpha1/namespaces/{stack.host_namespace}"
                              "/logs", {"apiVersion": "kwok.x-k8s.io/v1alpha1", "kind": "Logs",
                                        "metadata": {"name": host_pods[pod]},
                                        "spec": {"logs": [{"logsFile": str(root / file)}]}})
        readers = {"virtual": LogReader(stack.virtual, NAMESPACE),
                   "host": LogReader(stack.host, stack.host_namespace)}
        names = {"virtual": {POD: POD, SMALL: SMALL}, "host": host_pods}
        say("waiting until both sides serve the logs")
        if not wait_for(lambda: _serves(readers, names, log_bytes), 180, interval=1.0):
            raise RuntimeError("the logs were not served within 180 s")
        arms = []
        for i, side in enumerate(("host", "virtual", "virtual", "host")):
            arm = Arm(f"{'A' if side == 'host' else 'B'}{1 + (i in (2, 3))}", side)
            for _ in range(options.rounds):
                arm.first_byte_ms.append(readers[side].first_byte_ms(names[side][SMALL]))
                size, seconds = readers[side].read_all(names[side][POD])
                if size != log_bytes:
                    raise RuntimeError(f"{side}: read {size} of {log_bytes} bytes")
                arm.mib_per_s.append(size / seconds / 2**20)
            say(f"arm {arm.name} ({side}): first byte {percentile(arm.first_byte_ms, 50):.1f} "
                f"ms, {percentile(arm.mib_per_s, 50):.1f} MiB/s")
            arms.append(arm)
        pid = syncer.component.pid if syncer.component is not None else None
        if pid is None:
            raise RuntimeError("the syncer process has no pid")
        rss = _stream_memory(pid, syncer.url, readers["virtual"], options.streams, say)
    return KubeletResult(asdict(options) | {"output": str(options.output)}, arms, rss, log_bytes)


def _serves(readers: dict[str, LogReader], names: dict[str, dict[str, str]],
            size: int) -> bool:
    try:
        return all(readers[side].read_all(names[side][POD])[0] == size for side in readers)
    except (RuntimeError, OSError):
        return False


def _open_streams(url: str) -> int:
    return int(statistics(url).get("kubelet", {}).get("open_streams", -1))


def _stream_memory(pid: int, url: str, reader: LogReader, streams: int,
                   say: Callable[[str], None]) -> dict[str, int]:
    """The syncer's RSS at rest, with ``streams`` idle follows open, and at its peak while
    ``streams`` readers each read the big log at once."""
    rest = process_sample(pid).rss_kib
    with contextlib.ExitStack() as stack:
        for _ in range(streams):
            response = stack.enter_context(reader.open(SMALL, follow=True))
            response.read(1)
        if not wait_for(lambda: _open_streams(url) == streams, 30):
            raise RuntimeError(f"the syncer does not show {streams} open streams")
        idle = process_sample(pid).rss_kib
    peak = idle
    with concurrent.futures.ThreadPoolExecutor(streams) as pool:
        futures = [pool.submit(reader.read_all, POD) for _ in range(streams)]
        while not all(f.done() for f in futures):
            peak = max(peak, process_sample(pid).rss_kib)
            time.sleep(0.05)
        for future in futures:
            future.result()
    say(f"syncer RSS: {rest / 1024:.1f} MiB at rest, {idle / 1024:.1f} MiB with {streams} "
        f"open follows, {peak / 1024:.1f} MiB peak with {streams} big reads")
    return {"rest": rest, "idle_streams": idle, "peak_reading": peak}


def to_json(result: KubeletResult) -> Obj:
    return {
        "options": result.options,
        "log_bytes": result.log_bytes,
        "arms": [asdict(arm) for arm in result.arms],
        "summary": summary(result),
    }


def summary(result: KubeletResult) -> Obj:
    first = {side: result.median(side, "first_byte_ms") for side in ("host", "virtual")}
    speed = {side: result.median(side, "mib_per_s") for side in ("host", "virtual")}
    return {
        "first_byte_ms": first,
        "first_byte_ratio": first["virtual"] / first["host"],
        "mib_per_s": speed,
        "throughput_ratio": speed["virtual"] / speed["host"],
        "syncer_rss_mib": {k: round(v / 1024, 1) for k, v in result.rss_kib.items()},
    }


def to_markdown(result: KubeletResult, command: str) -> str:
    s = summary(result)
    rss = s["syncer_rss_mib"]
    streams = result.options["streams"]
    lines = [
        "# Log streams: virtual cluster vs. host", "",
        f"`{command}`: arms A-B-B-A, {result.options['rounds']} reads per arm, "
        f"big log {result.log_bytes / 2**20:.1f} MiB.", "",
        "| | host (A) | virtual (B) | virtual / host |", "|---|---|---|---|",
        f"| time to first byte, median | {s['first_byte_ms']['host']:.1f} ms | "
        f"{s['first_byte_ms']['virtual']:.1f} ms | {s['first_byte_ratio']:.2f} |",
        f"| throughput of the big log, median | {s['mib_per_s']['host']:.1f} MiB/s | "
        f"{s['mib_per_s']['virtual']:.1f} MiB/s | {s['throughput_ratio']:.2f} |", "",
        f"Syncer RSS: {rss['rest']} MiB at rest, {rss['idle_streams']} MiB with {streams} open "
        f"follow streams, {rss['peak_reading']} MiB at the peak of {streams} concurrent reads "
        "of the big log.", "",
        "| arm | side | first byte ms (each) | MiB/s (each) |", "|---|---|---|---|",
    ]
    for arm in result.arms:
        lines.append(f"| {arm.name} | {arm.side} | "
                     f"{', '.join(f'{v:.1f}' for v in arm.first_byte_ms)} | "
                     f"{', '.join(f'{v:.1f}' for v in arm.mib_per_s)} |")
    return "\n".join(lines) + "\n"


def write(result: KubeletResult, output: Path, command: str) -> list[Path]:
    output.mkdir(parents=True, exist_ok=True)
    json_path, md_path = output / "kubelet.json", output / "kubelet.md"
    json_path.write_bytes(orjson.dumps(to_json(result), option=orjson.OPT_INDENT_2))
    md_path.write_text(to_markdown(result, command))
    return [json_path, md_path]
