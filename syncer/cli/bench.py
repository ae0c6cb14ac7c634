"""``vcsync bench load|hotpath|kubelet|density|conformance``: the bundled benchmarks (logic
in ``benchmarks``).

``load`` starts its own local control planes and syncer (nothing of the
user's is touched) and writes ``load.json``, ``load.md`` and ``load.png``;
``hotpath`` needs no cluster and writes ``hotpath.json`` and ``hotpath.md``;
``kubelet`` and ``density`` start their own control planes too and write
``kubelet.json``/``.md`` and ``density.json``/``.md``/``.png``; ``conformance``
runs the Kubernetes conformance suite against a host of its own and virtual
clusters on it, and writes its results to ``benchmarks/results/conformance/``.
"""

from __future__ import annotations

import argparse
import importlib.util
import shlex
import sys
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, TypeVar

from syncer.cli.errors import CliError

T = TypeVar("T")

_LOAD_COMPONENTS = ("kube-apiserver", "kube-controller-manager", "kube-scheduler", "etcd",
                    "kwok", "kine", "metrics-server")


def register(commands: Any) -> None:
    p: argparse.ArgumentParser = commands.add_parser(
        "bench", help="load and hot-path benchmarks",
        description="Benchmark the syncer against local control planes, or its hot path.")
    sub = p.add_subparsers(dest="bench_command", required=True, metavar="COMMAND")
    load = sub.add_parser(
        "load", help="syncer vs. direct host writes against real local control planes",
        description="Arms alternate A-B-B-A: N pods straight onto the host (same client "
        "limits, same objects) vs. N pods through the virtual cluster and the syncer.")
    size = load.add_mutually_exclusive_group()
    size.add_argument("--quick", action="store_true",
                      help="small sizes (N=100), under 3 minutes: a smoke test")
    size.add_argument("--large", action="store_true", help="N=10,000 pods per arm")
    load.add_argument("--pods", type=int, help="N, pods per arm of the burst phase (2,000)")
    load.add_argument("--shape", choices=["pods", "deployment"], default="pods",
                      help="create pods one by one, or one Deployment of N replicas (then "
                      "the virtual controller-manager's ReplicaSet pacing is part of the arm)")
    load.add_argument("--rate", type=float, action="append",
                      help="pods/s of a steady phase; repeat for several (default 10 and 50; "
                      "0 alone: no steady phase)")
    load.add_argument("--steady-seconds", type=float, help="length of each steady arm (30)")
    load.add_argument("--churn", type=int,
                      help="pods (each with a ConfigMap and a Secret) of the churn phase (200)")
    load.add_argument("--restart-objects", type=int,
                      help="cached objects when the syncer is killed and restarted (10,000)")
    load.add_argument("--output", type=Path,
                      help="results directory (default vcsync-bench/<timestamp>)")
    load.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                      help="syncer configuration override for every phase, e.g. "
                      "syncer.virtual.qps=300 (the direct arm follows syncer.host.* and "
                      "syncer.shards/workersPerShard)")
    load.add_argument("--no-progress", action="store_true", help="no progress bars")
    load.add_argument("--profile", action="store_true",
                      help="record the syncer with py-spy during its arms (py-spy must be "
                      "installed); raw stacks and a summary go to the results")
    load.set_defaults(handler=_load)
    hot = sub.add_parser("hotpath", help="µs per pod of each stage of the sync hot path",
                         description="parse -> store -> key -> translate -> patch -> "
                         "serialize, against kubernetes_asyncio's V1Pod model path.")
    hot.add_argument("--pods", type=int, default=2000, help="distinct pods per round")
    hot.add_argument("--rounds", type=int, default=7, help="rounds (the median is reported)")
    hot.add_argument("--output", type=Path,
                     help="results directory (default vcsync-bench/<timestamp>)")
    hot.set_defaults(handler=_hotpath)
    kubelet = sub.add_parser(
        "kubelet", help="log streams through the virtual cluster vs. the host directly",
        description="Time to first log byte and throughput of a big log, virtual vs. host "
        "(arms A-B-B-A), and the syncer's memory with many open streams.")
    kubelet.add_argument("--rounds", type=int, default=5, help="reads per arm (5)")
    kubelet.add_argument("--size-mib", type=int, default=10, help="size of the big log (10)")
    kubelet.add_argument("--streams", type=int, default=20,
                         help="concurrent streams of the memory measurement (20)")
    kubelet.add_argument("--output", type=Path,
                         help="results directory (default vcsync-bench/<timestamp>)")
    kubelet.set_defaults(handler=_kubelet)
    density = sub.add_parser(
        "density", help="many idle virtual clusters on one local host: what each costs",
        description="K virtual clusters made one after another as `vcsync create` makes "
        "them, each checked to answer and to sync a pod; then RSS and idle CPU per tenant "
        "and per component, start times, and the host's own cost.")
    density.add_argument("--tenants", type=int, default=20, help="K (default %(default)s)")
    density.add_argument("--idle-seconds", type=float, default=60.0,
                         help="the idle window CPU is measured over (default %(default)s)")
    density.add_argument("--output", type=Path,
                         help="results directory (default vcsync-bench/<timestamp>)")
    density.set_defaults(handler=_density)
    _register_conformance(sub)


def _register_conformance(sub: Any) -> None:
    from benchmarks.conformance_report import FOCUS, SKIP, TARGETS

    p: argparse.ArgumentParser = sub.add_parser(
        "conformance", help="the [Conformance] e2e tests: host vs. virtual clusters",
        description="Runs e2e.test's conformance tests (same selection and flags) against a "
        "local host, a virtual cluster on it and a virtual cluster of the skew version, and "
        "lists every test that passes on the host but not on a virtual cluster.")
    p.add_argument("--focus", default=FOCUS, help=f"Ginkgo focus regexp ({FOCUS})")
    p.add_argument("--skip", default=SKIP, help=f"Ginkgo skip regexp ({SKIP})")
    p.add_argument("--procs", type=int, default=6, help="parallel Ginkgo processes (6)")
    p.add_argument("--nodes", type=int, default=2, help="kwok nodes of the host (2)")
    p.add_argument("--timeout", default="4h", help="limit of each target's suite (4h)")
    p.add_argument("--target", action="append", choices=TARGETS,
                   help="run only these targets (repeatable; default: all three)")
    p.add_argument("--output", type=Path, default=Path("benchmarks/results/conformance"),
                   help="results directory (benchmarks/results/conformance)")
    p.set_defaults(handler=_conformance)


def _output(args: argparse.Namespace) -> Path:
    out: Path = args.output or Path("vcsync-bench") / time.strftime("%Y%m%d-%H%M%S")
    return out


def _command() -> str:
    return "vcsync " + shlex.join(sys.argv[1:]) if sys.argv[1:2] == ["bench"] else "vcsync bench"


def _private_network() -> None:
    """Benchmarks start their own control planes, in a network namespace of their own
    (as the tests do; syncer.local.network)."""
    from syncer.local import network

    network.enter_private()


def _extra(*modules: str) -> None:
    """Refuse to start, before anything is run or written, when the ``bench`` extra's
    modules are missing (the plot and the progress bars come at the end and during)."""
    missing = [m for m in modules if importlib.util.find_spec(m) is None]
    if missing:
        raise CliError(f"this benchmark needs {', '.join(missing)}, which come with the bench "
                       "extra: pip install 'vcsync[bench]'")


def _load(args: argparse.Namespace) -> int:
    _extra("matplotlib", *(() if args.no_progress else ("tqdm",)))
    # Imported here: the benchmarks pull in matplotlib and the engine.
    from benchmarks import load, report
    from syncer.cli import checks
    from syncer.local import binaries

    checks.built(_LOAD_COMPONENTS, binaries.KUBERNETES_VERSION)
    for flag in ("pods", "churn", "restart_objects"):
        value = getattr(args, flag)
        if value is not None and value < (1 if flag == "pods" else 0):
            raise CliError(f"--{flag.replace('_', '-')} must not be {value}")
    if any(rate < 0 for rate in args.rate or ()):
        raise CliError("--rate must not be negative")
    size = "quick" if args.quick else "large" if args.large else "default"
    output = _output(args)
    _private_network()
    options = load.options_for(
        size, pods=args.pods, shape=args.shape,
        rates=tuple(r for r in args.rate if r > 0) if args.rate else None,
        steady_seconds=args.steady_seconds, churn=args.churn,
        restart_objects=args.restart_objects, output=output, progress=not args.no_progress,
        profile=args.profile, set_values=tuple(args.set))
    try:
        load.base_config(options.set_values)
    except ValueError as exc:
        raise CliError(f"--set: {exc}") from exc
    say = _printer(options.progress)
    try:
        result = load.run(options, say)
    except load.BenchError as exc:
        first, *details = str(exc).splitlines() or ["(no message)"]
        if details:  # e.g. the last log lines of a component that died
            print("\n".join(details), file=sys.stderr)
        raise CliError(f"load benchmark failed: {first}") from exc
    for path in report.write_load(result, output, _command()):
        print(f"wrote {path}")
    return 0


def _hotpath(args: argparse.Namespace) -> int:
    from benchmarks import hotpath, report

    if args.pods < 1 or args.rounds < 1:
        raise CliError("--pods and --rounds must be at least 1")
    result = hotpath.run(args.pods, args.rounds)
    print(f"hot path: {result.total_us:.1f} µs per pod "
          f"({', '.join(f'{k} {v:.1f}' for k, v in result.stages_us.items())}); "
          f"model path {result.model_us:.1f} µs ({result.speedup:.1f}x)")
    for path in report.write_hotpath(result, _output(args), _command()):
        print(f"wrote {path}")
    return 0


def _kubelet(args: argparse.Namespace) -> int:
    from benchmarks import kubelet
    from syncer.cli import checks
    from syncer.local import binaries

    checks.built(_LOAD_COMPONENTS, binaries.KUBERNETES_VERSION)
    if min(args.rounds, args.size_mib, args.streams) < 1:
        raise CliError("--rounds, --size-mib and --streams must be at least 1")
    output = _output(args)
    _private_network()
    options = kubelet.KubeletOptions(args.rounds, args.size_mib, args.streams, output)
    return _run_and_write("kubelet benchmark", lambda: kubelet.run(options, _printer(False)),
                          lambda result: kubelet.write(result, output, _command()))


def _conformance(args: argparse.Namespace) -> int:
    from benchmarks import conformance, conformance_report
    from syncer.cli import checks, vclusters
    from syncer.local import binaries

    if args.procs < 1 or args.nodes < 1:
        raise CliError("--procs and --nodes must be at least 1")
    checks.built(_LOAD_COMPONENTS, binaries.KUBERNETES_VERSION)
    if "skew" in (args.target or conformance.TARGETS):
        checks.built(("kube-apiserver", "kube-controller-manager"),
                     binaries.SKEW_KUBERNETES_VERSION)
    try:
        for tool in ("e2e.test", "ginkgo"):
            binaries.binary_path(tool)
    except binaries.BinaryMissing as exc:
        raise CliError(f"{exc.args[0].split(';')[0]}; build it with "
                       "`make binaries-conformance`") from exc
    _private_network()
    selection = conformance.Selection(args.focus, args.skip, args.timeout)
    options = conformance.ConformanceOptions(args.output, vclusters.render, selection,
                                             args.procs, args.nodes,
                                             tuple(args.target or conformance.TARGETS))
    return _run_and_write(
        "conformance run", lambda: conformance.run(options, _printer(False)),
        lambda summary: conformance_report.write(summary, args.output, _command()))


def _density(args: argparse.Namespace) -> int:
    _extra("matplotlib")
    from benchmarks import density
    from syncer.cli import checks
    from syncer.local import binaries

    checks.built((*_LOAD_COMPONENTS, "metrics-server"), binaries.KUBERNETES_VERSION)
    if args.tenants < 1 or args.idle_seconds <= 0:
        raise CliError("--tenants must be at least 1 and --idle-seconds positive")
    output = _output(args)
    _private_network()
    options = density.DensityOptions(args.tenants, args.idle_seconds, output)
    return _run_and_write("density benchmark", lambda: density.run(options, _printer(False)),
                          lambda result: density.write(result, output, _command()))


def _run_and_write(what: str, run: Callable[[], T], write: Callable[[T], Iterable[Path]]
                   ) -> int:
    """Run a benchmark, write its results and name each file; a RuntimeError (something
    the benchmark could not start or check) is one error line."""
    try:
        result = run()
    except RuntimeError as exc:
        raise CliError(f"{what} failed: {exc}") from exc
    for path in write(result):
        print(f"wrote {path}")
    return 0


def _printer(progress: bool) -> Any:
    start = time.monotonic()

    def say(message: str) -> None:
        line = f"[{time.monotonic() - start:7.1f}s] {message}"
        if progress:
            from tqdm import tqdm  # type: ignore[import-untyped]

            tqdm.write(line)
        else:
            print(line, flush=True)

    return say
