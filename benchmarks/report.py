"""Results of ``vcsync bench``: JSON (clusterloader2-style), Markdown and a PNG plot.

JSON: ``dataItems`` as clusterloader2 writes them (``{"data": {"Perc50": ..,
"Perc90": .., "Perc99": ..}, "unit": "ms", "labels": {"Metric": ..}}``), plus
``summary`` (scalar figures), ``targets`` (each target, its measured value and
whether it is met), ``arms`` (every arm's raw figures), ``options`` and
``machine``. Markdown: the same figures for people. PNG: host-pod arrival
curves of every arm and the latency distributions of both arms, per phase.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import orjson

from benchmarks.common import percentiles
from benchmarks.hotpath import STAGES, HotpathResult
from benchmarks.load import ArmResult, LoadResult, PhaseResult
from contract.resources import Obj

TARGET_EFFICIENCY = 0.95
TARGET_ADDED_P99_MS = 50.0
TARGET_STEADY_RATE = 50.0
TARGET_KIB_PER_POD = 10.0
TARGET_RESTART_OBJECTS = 10_000
TARGET_RESTART_S = 5.0
TARGET_HOTPATH_US = 30.0
TARGET_SPEEDUP = 30.0


@dataclass(frozen=True)
class Target:
    name: str
    target: str
    measured: str
    met: bool | None
    """None: not measured in this run (or not under the target's conditions)."""
    note: str = ""


# -- figures derived from a load run ------------------------------------------------------


def _pooled(arms: Sequence[ArmResult], attr: str) -> list[float]:
    return [x for arm in arms for x in getattr(arm, attr)]


def _mean(values: Sequence[float]) -> float:
    return sum(values) / len(values) if values else math.nan


def added_percentiles(phase: PhaseResult, attr: str = "create_ms") -> dict[str, float]:
    """Syncer-arm percentile minus direct-arm percentile, per key (what the syncer adds)."""
    syncer = percentiles(_pooled(phase.of("syncer"), attr))
    direct = percentiles(_pooled(phase.of("direct"), attr))
    return {k: syncer[k] - direct[k] for k in ("Perc50", "Perc90", "Perc99", "Max")}


def _stack(arms: Sequence[ArmResult]) -> dict[str, float]:
    """CPU milliseconds per pod of each process of the stack, over ``arms``."""
    pods = sum(a.pods for a in arms)
    total: dict[str, float] = {}
    for arm in arms:
        for name, seconds in arm.stack_cpu.items():
            total[name] = total.get(name, 0.0) + seconds
    return {k: v / pods * 1000 for k, v in sorted(total.items(), key=lambda kv: -kv[1])}


def _stack_ms(arms: Sequence[ArmResult]) -> float:
    return sum(_stack(arms).values())


def _codes(arms: Sequence[ArmResult]) -> dict[str, float]:
    total: dict[str, float] = {}
    for arm in arms:
        for code, count in arm.codes.items():
            total[code] = total.get(code, 0.0) + count
    return total


def _errors(codes: dict[str, float]) -> dict[str, float]:
    return {"429": codes.get("429", 0.0),
            "5xx": sum(v for k, v in codes.items() if k.startswith("5")),
            "connection_lost": codes.get("0", 0.0)}


def summary(result: LoadResult) -> Obj:
    """Every scalar figure of a load run, by name."""
    out: Obj = {"runtime_s": result.seconds, "rss_at_rest_kib": result.rest.rss_kib,
                "rss_peak_kib": result.peak_hwm_kib}
    for phase in result.phases:
        syncer, direct = phase.of("syncer"), phase.of("direct")
        pods = sum(a.pods for a in syncer)
        out[phase.name] = {
            "pods_per_arm": syncer[0].pods if syncer else 0,
            "rate": phase.rate,
            "client_limits": phase.limits,
            "efficiency": phase.efficiency,
            "efficiency_running_ready": phase.ready_efficiency,
            "throughput_direct": _mean([a.throughput for a in direct]),
            "throughput_syncer": _mean([a.throughput for a in syncer]),
            "running_s_direct": _mean([a.running_s for a in direct]),
            "running_s_syncer": _mean([a.running_s for a in syncer]),
            "host_requests_per_pod_syncer": sum(a.host_requests for a in syncer) / pods,
            "host_requests_per_pod_direct": sum(a.host_requests for a in direct) / pods,
            "virtual_requests_per_pod_syncer": sum(a.virtual_requests for a in syncer) / pods,
            "host_writes_per_pod_syncer": sum(a.host_writes for a in syncer) / pods,
            "syncer_cpu_s_per_1000_pods": sum(a.cpu_s for a in syncer) / pods * 1000,
            "stack_cpu_ms_per_pod_direct": _stack_ms(direct),
            "stack_cpu_ms_per_pod_syncer": _stack_ms(syncer),
            "machine_busy_direct": _mean([a.machine_busy for a in direct]),
            "machine_busy_syncer": _mean([a.machine_busy for a in syncer]),
            "errors_syncer": _errors(_codes(syncer)),
            "errors_direct": _errors(_codes(direct)),
            "added_create_latency_ms": added_percentiles(phase),
        }
    if result.churn is not None:
        c = result.churn
        out["churn"] = {"objects": c.objects, "rounds": c.rounds, "seconds": c.seconds,
                        "host_writes": c.host_writes}
    if result.restart is not None:
        rs = result.restart
        rss_per_pod = (rs.rss_after_kib - result.rest.rss_kib) / rs.pods
        out["restart"] = {
            "pods": rs.pods, "cached_objects": rs.cached_objects, "ready_s": rs.ready_s,
            "resynced_s": rs.resynced_s, "host_writes": rs.host_writes,
            "all_writes": rs.all_writes, "writes": rs.writes, "host_requests": rs.host_requests,
            "rss_before_kill_kib": rs.rss_before_kib, "rss_after_restart_kib": rs.rss_after_kib,
        }
        out["memory"] = {
            "rss_per_synced_pod_kib": rss_per_pod,
            "rss_per_1000_cached_objects_kib":
                (rs.rss_after_kib - result.rest.rss_kib) / rs.cached_objects * 1000,
            "object_sizes": {what: {"json_bytes": j, "python_bytes": p}
                             for what, (j, p) in rs.object_sizes.items()},
        }
    return out


def load_targets(result: LoadResult) -> list[Target]:
    targets = []
    burst = next((p for p in result.phases if p.name == "burst"), None)
    if burst is not None:
        n = burst.arms[0].pods
        direct_rate = _mean([a.pods / a.running_s for a in burst.of("direct")])
        cores = _stack_ms(burst.of("syncer")) * direct_rate / 1000
        note = (f"whole-stack CPU per pod: syncer arm {_stack_ms(burst.of('syncer')):.0f} ms, "
                f"direct {_stack_ms(burst.of('direct')):.0f} ms; at the direct arm's "
                f"{direct_rate:.0f} complete pods/s the syncer arm needs {cores:.1f} cores, "
                f"the machine has {result.machine['cores']}")
        targets.append(Target(
            "efficiency (burst)", f">= {TARGET_EFFICIENCY} at N=2,000",
            f"{burst.efficiency:.3f} at N={n:,} (to all Running/Ready: "
            f"{burst.ready_efficiency:.3f})",
            burst.efficiency >= TARGET_EFFICIENCY if n >= 2000 else None,
            note if n >= 2000 else "N below the target's 2,000; " + note))
    steady = [p for p in result.phases if p.rate]
    target_rate = [p for p in steady if p.rate and p.rate >= TARGET_STEADY_RATE]
    for phase in steady:
        assert phase.rate is not None
        added = added_percentiles(phase)["Perc99"]
        raw = percentiles(_pooled(phase.of("syncer"), "create_ms"))["Perc99"]
        counts = phase in target_rate[:1]
        cores = _stack_ms(phase.of("syncer")) * phase.rate / 1000
        note = (f"the syncer arm's stack needs {cores:.1f} cores at this rate "
                f"({_stack_ms(phase.of('syncer')):.0f} ms CPU per pod), the machine has "
                f"{result.machine['cores']}")
        targets.append(Target(
            "added p99 latency virtual-create -> host-create",
            f"<= {TARGET_ADDED_P99_MS:g} ms at {TARGET_STEADY_RATE:g} pods/s",
            f"{added:.1f} ms at {phase.rate:g} pods/s (syncer p99 {raw:.1f} ms, direct "
            f"{percentiles(_pooled(phase.of('direct'), 'create_ms'))['Perc99']:.1f} ms)",
            added <= TARGET_ADDED_P99_MS if counts else None,
            note if counts else "not the target's rate; " + note))
    if result.restart is not None:
        rs = result.restart
        per_pod = (rs.rss_after_kib - result.rest.rss_kib) / rs.pods
        sizes = {what: {"python_bytes": p} for what, (_, p) in rs.object_sizes.items()}
        targets.append(Target(
            "memory per synced pod (both caches)", f"<= {TARGET_KIB_PER_POD:g} KiB",
            f"{per_pod:.1f} KiB of RSS", per_pod <= TARGET_KIB_PER_POD,
            f"the pod's own cached objects (virtual pod, host pod, token Secret) are "
            f"{_objects_kib(sizes):.1f} KiB as Python dicts" if sizes else ""))
        enough = rs.cached_objects >= TARGET_RESTART_OBJECTS
        targets.append(Target(
            "restart: ready, host writes", f"<= {TARGET_RESTART_S:g} s, 0 writes at "
            f"{TARGET_RESTART_OBJECTS:,} objects",
            f"ready {rs.ready_s:.2f} s (resync done {rs.resynced_s:.2f} s), "
            f"{rs.host_writes:.0f} writes at {rs.cached_objects:,.0f} objects",
            (rs.resynced_s <= TARGET_RESTART_S and rs.host_writes == 0) if enough else None,
            "" if enough else "fewer objects than the target's"))
    return targets


def hotpath_targets(result: HotpathResult) -> list[Target]:
    return [
        Target("hot path per pod", f"<= {TARGET_HOTPATH_US:g} µs", f"{result.total_us:.1f} µs",
               result.total_us <= TARGET_HOTPATH_US),
        Target("hot path vs model path", f">= {TARGET_SPEEDUP:g}x",
               f"{result.speedup:.1f}x", result.speedup >= TARGET_SPEEDUP),
    ]


# -- JSON ---------------------------------------------------------------------------------


def _item(metric: str, values: Sequence[float] | dict[str, float], unit: str = "ms",
          **labels: str) -> Obj:
    data = values if isinstance(values, dict) else percentiles(values)
    return {"data": {k: _finite(v) for k, v in data.items()}, "unit": unit,
            "labels": {"Metric": metric, **labels}}


def _finite(value: float) -> float | None:
    return value if math.isfinite(value) else None


def load_json(result: LoadResult) -> Obj:
    items: list[Obj] = []
    for phase in result.phases:
        for kind in ("direct", "syncer"):
            arms = phase.of(kind)
            items.append(_item("HostCreateLatency", _pooled(arms, "create_ms"),
                               Phase=phase.name, Arm=kind))
            items.append(_item("RunningLatency" if kind == "direct" else "VirtualReadyLatency",
                               _pooled(arms, "ready_ms"), Phase=phase.name, Arm=kind))
        items.append(_item("AddedHostCreateLatency", added_percentiles(phase),
                           Phase=phase.name))
    if result.churn is not None:
        c = result.churn
        items.append(_item("ReferencedObjectCreateLatency", c.reference_ms, Phase="churn"))
        items.append(_item("ReferencedObjectUpdateLatency", c.update_ms, Phase="churn"))
        items.append(_item("ReleasedObjectDeleteLatency", c.release_ms, Phase="churn"))
    return {
        "version": "v1",
        "dataItems": items,
        "summary": summary(result),
        "targets": [dataclasses.asdict(t) for t in load_targets(result)],
        "arms": [a.as_dict() for p in result.phases for a in p.arms],
        "options": {k: str(v) if isinstance(v, Path) else v
                    for k, v in dataclasses.asdict(result.options).items()},
        "started": result.started,
        "machine": result.machine,
    }


def hotpath_json(result: HotpathResult) -> Obj:
    items = [_item("HotPathStage", {"Perc50": us}, "us", Stage=stage)
             for stage, us in result.stages_us.items()]
    items.append(_item("HotPathTotal", {"Perc50": result.total_us}, "us"))
    items.append(_item("ModelPathV1Pod", {"Perc50": result.model_us}, "us"))
    return {"version": "v1", "dataItems": items, "summary": result.as_dict(),
            "targets": [dataclasses.asdict(t) for t in hotpath_targets(result)]}


# -- Markdown ----------------------------------------------------------------------------------


def _met(target: Target) -> str:
    return "n/a" if target.met is None else ("met" if target.met else "**missed**")


def _targets_table(targets: Sequence[Target]) -> list[str]:
    lines = ["| target | wanted | measured | |", "|---|---|---|---|"]
    for t in targets:
        note = f" ({t.note})" if t.note else ""
        lines.append(f"| {t.name} | {t.target} | {t.measured}{note} | {_met(t)} |")
    return lines


def _perc(values: Sequence[float]) -> str:
    p = percentiles(values)
    return (f"{p['Perc50']:.0f} / {p['Perc90']:.0f} / {p['Perc99']:.0f} / {p['Max']:.0f}"
            if values else "-")


def load_markdown(result: LoadResult, command: str) -> str:
    s = summary(result)
    o = result.options
    lines = [
        f"# vcsync load benchmark ({o.label})", "",
        f"Started {result.started}; ran {result.seconds / 60:.1f} min on {result.machine['cpu']}"
        f" ({result.machine['cores']} cores, load average at the end "
        f"{result.machine['load_average']}), Python {result.machine['python']}.", "",
        f"Command: `{command}`", "",
        "The machine is shared: figures are noisy; compare arms of the same run (A-B-B-A).", "",
        *([f"Syncer configuration overrides: `{' '.join(o.set_values)}`.", ""]
          if o.set_values else []),
        "## Targets", "", *_targets_table(load_targets(result)), "",
    ]
    for phase in result.phases:
        ps = s[phase.name]
        limits = phase.limits
        rate = f"steady {phase.rate:g} pods/s" if phase.rate else "burst (all at once)"
        lines += [
            f"## Phase `{phase.name}`: {ps['pods_per_arm']:,} pods per arm, {rate}", "",
            f"Client limits (both arms): host {limits['host_qps']:g} QPS / burst "
            f"{limits['host_burst']:g}, virtual {limits['virtual_qps']:g} / "
            f"{limits['virtual_burst']:g}; {limits['concurrency']:g} concurrent writers.", "",
            "| arm | kind | to exist (s) | pods/s | to Running/Ready (s) | host req | "
            "syncer CPU (s) | RSS (MiB) |",
            "|---|---|---|---|---|---|---|---|",
        ]
        for a in phase.arms:
            cpu = f"{a.cpu_s:.1f}" if a.kind == "syncer" else "-"
            rss = f"{a.rss_kib / 1024:.0f}" if a.kind == "syncer" else "-"
            lines.append(f"| {a.arm} | {a.kind} | {a.exist_s:.1f} | {a.throughput:.1f} | "
                         f"{a.running_s:.1f} | {a.host_requests:.0f} | {cpu} | {rss} |")
        added = ps["added_create_latency_ms"]
        lines += [
            "",
            f"- **efficiency** (syncer pods/s / direct pods/s, to all host pods exist): "
            f"**{ps['efficiency']:.3f}**; to all Running (direct, Secrets written) / all virtual "
            f"pods Ready (syncer): **{ps['efficiency_running_ready']:.3f}**",
            "- create -> host pod exists, ms (p50 / p90 / p99 / max): direct "
            f"{_perc(_pooled(phase.of('direct'), 'create_ms'))}; syncer "
            f"{_perc(_pooled(phase.of('syncer'), 'create_ms'))}; added by the syncer "
            f"{added['Perc50']:.0f} / {added['Perc90']:.0f} / {added['Perc99']:.0f} / "
            f"{added['Max']:.0f}",
            "- virtual create -> virtual pod Ready, ms (p50 / p90 / p99 / max): "
            f"{_perc(_pooled(phase.of('syncer'), 'ready_ms'))}; direct create -> Running "
            f"{_perc(_pooled(phase.of('direct'), 'ready_ms'))}",
            f"- per synced pod: {ps['host_requests_per_pod_syncer']:.2f} host requests "
            f"({ps['host_writes_per_pod_syncer']:.2f} writes; direct arm "
            f"{ps['host_requests_per_pod_direct']:.2f}), "
            f"{ps['virtual_requests_per_pod_syncer']:.2f} virtual requests",
            f"- requests per synced pod by verb: {_per_pod(phase.of('syncer'))}",
            f"- syncer CPU: {ps['syncer_cpu_s_per_1000_pods']:.1f} s per 1,000 pods",
            f"- CPU of the whole stack per pod: direct **{ps['stack_cpu_ms_per_pod_direct']:.1f} "
            f"ms**, syncer **{ps['stack_cpu_ms_per_pod_syncer']:.1f} ms** ("
            + ", ".join(f"{k} {v:.1f}" for k, v in list(_stack(phase.of("syncer")).items())[:6])
            + f"); machine busy (all processes, other users too): direct "
            f"{ps['machine_busy_direct']:.0%}, syncer {ps['machine_busy_syncer']:.0%} of "
            f"{result.machine['cores']} cores",
            f"- 429 / 5xx / lost connections: syncer {_err(ps['errors_syncer'])}, direct "
            f"{_err(ps['errors_direct'])}", "",
        ]
    if result.churn is not None:
        c = result.churn
        writes = ", ".join(f"{k} {v:.0f}" for k, v in sorted(c.host_writes.items())) or "none"
        lines += [
            f"## ConfigMap/Secret churn: {c.objects} pods, each with its own ConfigMap and "
            f"Secret, {c.rounds} update rounds ({c.seconds:.0f} s)", "",
            "| what | p50 / p90 / p99 / max (ms) |", "|---|---|",
            f"| pod created -> its ConfigMap and Secret on the host | {_perc(c.reference_ms)} |",
            f"| virtual object updated -> host copy updated | {_perc(c.update_ms)} |",
            f"| last referencing pod deleted -> host copy deleted | {_perc(c.release_ms)} |",
            "", f"Host writes: {writes}.", "",
        ]
    if result.restart is not None:
        rs, mem = s["restart"], s.get("memory", {})
        requests = ", ".join(f"{k} {v:.0f}" for k, v in sorted(rs["host_requests"].items()))
        lines += [
            "## Restart", "",
            f"SIGKILL with {rs['cached_objects']:,.0f} cached objects ({rs['pods']:,} pods "
            "synced in the restart namespace, plus what earlier phases left), then start again:",
            "",
            f"- ready (`/readyz`: every cache listed): **{rs['ready_s']:.2f} s**; start-up "
            f"resync of every key done: **{rs['resynced_s']:.2f} s**",
            f"- host writes during the resync: **{rs['host_writes']:.0f}** (all writes "
            f"{rs['all_writes']:.0f}: {_writes(rs['writes'])}); host requests: {requests}", "",
        ]
        if mem:
            lines += [
                "## Memory", "",
                f"- syncer RSS at rest {s['rss_at_rest_kib'] / 1024:.1f} MiB, peak (VmHWM over "
                f"the run) {s['rss_peak_kib'] / 1024:.1f} MiB",
                f"- after the restart: {rs['rss_after_restart_kib'] / 1024:.1f} MiB -> "
                f"**{mem['rss_per_synced_pod_kib']:.1f} KiB per synced pod**, "
                f"{mem['rss_per_1000_cached_objects_kib'] / 1024:.2f} MiB per 1,000 cached "
                "objects (a fresh process, so no fragmentation from earlier phases)",
                *(f"- one synced pod's {what}: {size['json_bytes']:,} bytes of JSON, "
                  f"{size['python_bytes'] / 1024:.1f} KiB as Python objects (tracemalloc)"
                  for what, size in mem["object_sizes"].items()),
                f"- together {_objects_kib(mem['object_sizes']):.1f} KiB of cached objects per "
                "pod (plus its host event and the event's virtual copy); the rest of the RSS "
                "per pod is indexes, queues, per-object engine state and the allocator's "
                "arenas, which keep the peak of the start-up LIST", "",
            ]
    profiles = sorted(result.options.output.glob("profile-*.txt")) if result.options.profile \
        else []
    if profiles:
        lines += ["## Profile of the syncer (py-spy, all syncer arms)", "",
                  "| self | cumulative | function |", "|---|---|---|"]
        lines += [f"| {own:.1f}% | {cum:.1f}% | `{frame}` |"
                  for own, cum, frame in profile_top(profiles)]
        lines += ["", "Raw stacks: " + ", ".join(f"`{p.name}`" for p in profiles), ""]
    lines += ["![arrival curves and latency](load.png)", ""]
    return "\n".join(lines)


def profile_top(paths: Sequence[Path], count: int = 20) -> list[tuple[float, float, str]]:
    """(self %, cumulative %, function) of py-spy's raw (collapsed) stacks, by cumulative share,
    for the syncer's own code, its HTTP stack and worker threads (process-wide frames such as
    the event loop's ``run`` are left out: they are in every sample)."""
    cumulative: dict[str, int] = {}
    own: dict[str, int] = {}
    samples = 0
    for path in paths:
        for line in path.read_text().splitlines():
            stack, _, number = line.rpartition(" ")
            if not stack or not number.isdigit():
                continue
            frames, n = stack.split(";"), int(number)
            samples += n
            own[frames[-1]] = own.get(frames[-1], 0) + n
            for frame in set(frames):
                cumulative[frame] = cumulative.get(frame, 0) + n
    if not samples:
        return []
    wanted = ("syncer/", "translators/", "aiohttp", "concurrent/futures", "netrc", "ssl.py",
              "orjson", "json")
    ranked = [(f, n) for f, n in sorted(cumulative.items(), key=lambda item: -item[1])
              if any(w in f for w in wanted) and n < 0.5 * samples]
    return [(own.get(f, 0) / samples * 100, n / samples * 100, f) for f, n in ranked[:count]]


def _objects_kib(sizes: dict[str, dict[str, int]]) -> float:
    return sum(size["python_bytes"] for size in sizes.values()) / 1024


def _per_pod(arms: Sequence[ArmResult]) -> str:
    pods = sum(a.pods for a in arms)
    total: dict[str, float] = {}
    for arm in arms:
        for verb, count in arm.verbs.items():
            total[verb] = total.get(verb, 0.0) + count
    return ", ".join(f"{k} {v / pods:.2f}" for k, v in sorted(total.items())) or "-"


def _writes(writes: dict[str, float]) -> str:
    return ", ".join(f"{k} {v:.0f}" for k, v in sorted(writes.items())) or "none"


def _err(errors: dict[str, float]) -> str:
    return f"{errors['429']:.0f} / {errors['5xx']:.0f} / {errors['connection_lost']:.0f}"


def hotpath_markdown(result: HotpathResult, command: str) -> str:
    m = result.machine
    lines = [
        "# vcsync hot-path micro benchmark", "",
        f"{result.pods:,} distinct pods per round, the least disturbed of {result.rounds} rounds "
        f"(median total {result.median_total_us:.1f} µs), thread CPU time, on "
        f"{m['cpu']} ({m['cores']} cores, load average {m['load_average']}), Python "
        f"{m['python']}. Event {result.event_bytes:,} bytes, host pod {result.host_pod_bytes:,}"
        " bytes.", "", f"Command: `{command}`", "",
        "## Targets", "", *_targets_table(hotpath_targets(result)), "",
        "| stage | µs per pod |", "|---|---|",
        *(f"| {stage} | {result.stages_us[stage]:.1f} |" for stage in (*STAGES, "gc")),
        f"| **total** | **{result.total_us:.1f}** |", "",
        f"kubernetes_asyncio model path (`ApiClient.deserialize(..., \"V1Pod\")` of the same "
        f"pod): {result.model_us:.1f} µs, of which stdlib `json.loads` "
        f"{result.model_parse_only_us:.1f} µs -> the whole hot path is "
        f"**{result.speedup:.1f}x** faster than the model path's parsing alone; orjson "
        f"parsing alone is {result.model_us / max(result.stages_us['parse'], 1e-9):.0f}x "
        "faster.", "",
        "`gc`: time in CPython's cyclic collector while the pods went through (it grows with "
        "the objects held, as in a syncer's caches); the stage rows exclude it.", "",
    ]
    return "\n".join(lines)


# -- plot -----------------------------------------------------------------------------------


def load_plot(result: LoadResult, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    phases = result.phases
    fig, axes = plt.subplots(len(phases), 2, figsize=(12, 4.2 * len(phases)), squeeze=False)
    colors = {"direct": "tab:blue", "syncer": "tab:orange"}
    for row, phase in zip(axes, phases, strict=True):
        curve, dist = row
        for arm in phase.arms:
            style = "-" if arm.arm.endswith("1") else "--"
            curve.plot(arm.arrivals_s, range(1, len(arm.arrivals_s) + 1), style,
                       color=colors[arm.kind], label=f"{arm.arm} {arm.kind}")
        title = f"{phase.name}: host pods arriving" + (
            f" ({phase.rate:g} pods/s)" if phase.rate else " (all created at once)")
        curve.set_title(title)
        curve.set_xlabel("seconds since the arm's first create")
        curve.set_ylabel("host pods")
        curve.legend()
        curve.grid(alpha=0.3)
        for kind in ("direct", "syncer"):
            values = sorted(_pooled(phase.of(kind), "create_ms"))
            if values:
                share = [(i + 1) / len(values) for i in range(len(values))]
                dist.plot(values, share, color=colors[kind], label=kind)
        dist.set_xscale("log")
        dist.set_title(f"{phase.name}: create -> host pod exists (CDF)")
        dist.set_xlabel("ms")
        dist.set_ylabel("share of pods")
        dist.legend()
        dist.grid(alpha=0.3, which="both")
    fig.suptitle(f"vcsync load benchmark ({result.options.label}, {result.started})")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


# -- writing ----------------------------------------------------------------------------------


def write_load(result: LoadResult, output: Path, command: str) -> list[Path]:
    output.mkdir(parents=True, exist_ok=True)
    paths = [output / "load.json", output / "load.md", output / "load.png"]
    paths[0].write_bytes(orjson.dumps(load_json(result), option=orjson.OPT_INDENT_2))
    paths[1].write_text(load_markdown(result, command))
    load_plot(result, paths[2])
    return paths


def write_hotpath(result: HotpathResult, output: Path, command: str) -> list[Path]:
    output.mkdir(parents=True, exist_ok=True)
    paths = [output / "hotpath.json", output / "hotpath.md"]
    paths[0].write_bytes(orjson.dumps(hotpath_json(result), option=orjson.OPT_INDENT_2))
    paths[1].write_text(hotpath_markdown(result, command))
    return paths
