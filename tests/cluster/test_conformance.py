"""Conformance parity at CI size: a subset of the ``[Conformance]`` tests of ``e2e.test``
(built by ``make binaries-conformance``, a dependency of ``make test``) runs against a
host of its own and against a virtual cluster on it; every test passing on the host
must pass on the virtual cluster.

The subset: API-machinery and apps tests that passed on both in the focused run
(``benchmarks/results/conformance/focused``) and take seconds each on kwok, so
the two runs stay within a few minutes on two cores. The full selection is
``vcsync bench conformance``. The host gets its own control planes (not the
session's host): the suite labels and taints nodes and fills namespaces.
e2e.test runs in this session's network namespace (tests/conftest.py).
"""

from __future__ import annotations

from pathlib import Path

from benchmarks import conformance
from benchmarks import conformance_report as report
from syncer.cli.vclusters import render
from syncer.local import binaries

CI_SUBSET = tuple(Path(__file__).with_name("conformance-ci.txt").read_text().splitlines())
"""Full test names, as the report names them (container texts and the test's own text),
one a line: too long for Python source."""


def test_ci_subset_passes_on_the_virtual_cluster_wherever_it_passes_on_the_host(
        tmp_path: Path) -> None:
    for tool in ("e2e.test", "ginkgo"):
        binaries.binary_path(tool)  # missing: an error, not a skip (make test builds them)
    selection = report.Selection(report.exact_focus(CI_SUBSET), report.SKIP, timeout="8m")
    options = conformance.ConformanceOptions(
        tmp_path / "results", render, selection, procs=2, nodes=2,
        targets=("host", "virtual"), work=tmp_path / "clusters")
    summary = conformance.run(options, print)
    host = summary.runs["host"]
    assert sorted(r.name for r in host.results) == sorted(CI_SUBSET), "the focus selected"
    assert not summary.host_failures(), [(r.name, r.cause) for r in summary.host_failures()]
    assert not summary.divergences(), summary.divergences()
