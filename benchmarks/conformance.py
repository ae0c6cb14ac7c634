"""``vcsync bench conformance``: the Kubernetes conformance suite against a host and its tenants.

What it proves: a tenant's virtual cluster is "a real Kubernetes API" in the
sense the project that defines Kubernetes uses, the ``[Conformance]`` tests
of ``e2e.test`` (built from ``k8s.io/kubernetes`` at the version the project
runs, ``make binaries-conformance``). The same selection, with the same
flags, runs against

1. ``host``: a local host cluster (kwok nodes), directly;
2. ``virtual``: a virtual cluster on it (the local driver, values
   :data:`VALUES`, the same version);
3. ``skew``: a virtual cluster one minor release older on the same host.

One after the other, on one host: the suites label, taint and fill its
nodes, so two at once would disturb each other. Everything runs in a network
namespace of this process (:mod:`syncer.local.network`), e2e.test included:
the tests that dial pod and Service IPs dial them there.

Why Ginkgo's CLI: e2e.test alone runs serially, and on kwok most failing
tests spend minutes waiting for something no fake node ever does; with
``procs`` processes those waits overlap (``[Serial]`` tests still run last,
alone, as upstream runs them).
"""

from __future__ import annotations

import contextlib
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from benchmarks import conformance_report as report
from syncer.local import binaries
from syncer.local.cluster import HostCluster
from syncer.local.vcluster import LocalVCluster

Say = Callable[[str], None]
Render = Callable[[str, str, dict[str, Any]], dict[str, Any]]
"""The chart's rendering of values into a syncer config (name, namespace, values): the
CLI's, handed down, so that this layer never imports the one above it."""
Selection = report.Selection
TARGETS = report.TARGETS
VALUES = Path(__file__).with_name("conformance-values.yaml")
"""The virtual clusters' values (``vcsync create NAME -f`` this file gives the same)."""
_VERSIONS = {"virtual": binaries.KUBERNETES_VERSION, "skew": binaries.SKEW_KUBERNETES_VERSION}


@dataclass(frozen=True)
class ConformanceOptions:
    output: Path
    render: Render
    selection: Selection = field(default_factory=Selection)
    procs: int = 6
    nodes: int = 2
    targets: tuple[str, ...] = TARGETS
    work: Path | None = None
    """Where the control planes keep their files and logs (default: a new temporary
    directory, kept for a look after the run)."""


def _suite_binary(out: Path) -> Path:
    """e2e.test under a name ending in ``.test``: how Ginkgo's CLI tells a compiled suite
    from a package directory (the cache's name carries the version)."""
    link = out / "e2e.test"
    link.unlink(missing_ok=True)
    link.symlink_to(binaries.binary_path("e2e.test"))
    return link


def suite_argv(kubeconfig: Path, out: Path, selection: Selection, procs: int) -> list[str]:
    """Ginkgo running e2e.test in ``procs`` processes, reports under ``out``.

    e2e.test's own flags (after ``--``): out of cluster, the skeleton provider
    (no cloud, no SSH), the project's kubectl, and nothing gathered from
    nodes or namespaces on failure (there is nothing to gather from kwok).
    """
    return [
        str(binaries.binary_path("ginkgo")),
        f"--procs={procs}",
        f"--focus={selection.focus}",
        f"--skip={selection.skip}",
        f"--timeout={selection.timeout}",
        "--no-color",
        "--json-report=report.json",
        "--junit-report=junit.xml",
        f"--output-dir={out}",
        str(_suite_binary(out)),
        "--",
        f"--kubeconfig={kubeconfig}",
        "--provider=skeleton",
        f"--kubectl-path={binaries.binary_path('kubectl')}",
        "--disable-log-dump",
        "--dump-logs-on-failure=false",
        f"--e2e-output-dir={out}",
    ]


def run_suite(kubeconfig: Path, out: Path, selection: Selection, procs: int
              ) -> list[report.TestResult]:
    """Run the selection against the cluster of ``kubeconfig``; its per-test results.

    Ginkgo exits non-zero when any test fails, which is the normal case here;
    only a run that wrote no report is an error. ``out`` is made absolute: Ginkgo
    runs in it and finds the suite by the path given.
    """
    out = out.resolve()
    out.mkdir(parents=True, exist_ok=True)
    with (out / "ginkgo.log").open("w") as log:
        subprocess.run(suite_argv(kubeconfig, out, selection, procs), stdout=log,
                       stderr=subprocess.STDOUT, cwd=out, check=False)
    reported = out / "report.json"
    if not reported.is_file():
        raise RuntimeError(f"the suite wrote no report; see {out / 'ginkgo.log'}")
    return report.parse(reported)


@contextlib.contextmanager
def virtual_cluster(host: HostCluster, name: str, version: str, root: Path,
                    config: dict[str, Any]) -> Iterator[Path]:
    """A virtual cluster on ``host`` made as ``vcsync create`` makes one (the local
    driver's steps, ``config`` the chart's rendering of the values); yields its kubeconfig.

    Its processes outlive a crash of this one (as the CLI's do); they are
    found by marker and killed, and its host namespace removed, at the end.
    """
    namespace = f"vcluster-{name}"
    shutil.rmtree(root, ignore_errors=True)
    root.mkdir(parents=True)
    shutil.copyfile(host.kubeconfig, root / "host.kubeconfig")
    vc = LocalVCluster(name, namespace, root, version, marker=f"conformance:{root}")
    vc.config_file.write_text(yaml.safe_dump(config))
    try:
        vc.prepare_host()
        vc.start_plane()
        vc.apply_dns()
        vc.start_syncer()
        kubeconfig = root / "virtual.kubeconfig"
        kubeconfig.write_text(yaml.safe_dump(vc.kubeconfig()))
        yield kubeconfig
    finally:
        vc.kill()
        with contextlib.suppress(Exception):
            vc.cleanup_host(keep_namespace=False)


def _target(host: HostCluster, target: str, root: Path, render: Render
            ) -> contextlib.AbstractContextManager[Path]:
    if target == "host":
        return contextlib.nullcontext(host.kubeconfig)
    name = f"conformance-{target}"
    config = render(name, f"vcluster-{name}", yaml.safe_load(VALUES.read_text()))
    return virtual_cluster(host, name, _VERSIONS[target], root / target, config)


def run(options: ConformanceOptions, say: Say) -> report.Summary:
    """Every target in turn on one host; results and timings for the report.

    The clusters' files and logs, and Ginkgo's own reports (``reports/<target>/``:
    ``report.json``, ``junit.xml``, ``ginkgo.log``; megabytes, mostly the thousands
    of specs the focus left out), go to ``options.work``; the results directory
    gets only what :func:`report.write` distils from them.
    """
    work = options.work or Path(tempfile.mkdtemp(prefix="vcsync-conformance-"))
    say(f"control planes under {work}")
    runs: dict[str, report.TargetRun] = {}
    with HostCluster(name="conformance", root=work / "host", nodes=options.nodes) as host:
        say(f"host cluster ready ({options.nodes} kwok nodes)")
        for target in options.targets:
            start = time.monotonic()
            with _target(host, target, work, options.render) as kubeconfig:
                say(f"{target}: running the selection with {options.procs} processes")
                results = run_suite(kubeconfig, work / "reports" / target,
                                    options.selection, options.procs)
            runs[target] = report.TargetRun(target, _version(target), results,
                                            time.monotonic() - start)
            say(f"{target}: {report.counts(results)} in {runs[target].seconds / 60:.1f} min")
    return report.Summary(options.selection.focus, options.selection.skip, options.procs,
                          options.nodes, runs)


def _version(target: str) -> str:
    return _VERSIONS.get(target, binaries.KUBERNETES_VERSION)
