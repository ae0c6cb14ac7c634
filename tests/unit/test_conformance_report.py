"""The conformance report: which Ginkgo specs count as results, and what counts as a divergence.

Pure functions over Ginkgo's JSON report format (as e2e.test writes it);
the runs themselves are in tests/cluster/test_conformance.py.
"""

from __future__ import annotations

import re
from pathlib import Path

import orjson

from benchmarks import conformance_report as report
from contract.resources import Obj


def _spec(leaf: str, state: str, message: str = "", kind: str = "It") -> Obj:
    spec: Obj = {"ContainerHierarchyTexts": ["[sig-apps] Deployment"], "LeafNodeText": leaf,
                 "LeafNodeType": kind, "State": state, "RunTime": 2_500_000_000}
    if message:
        spec["Failure"] = {"Message": message}
    return spec


def _write(tmp_path: Path, specs: list[Obj]) -> Path:
    path = tmp_path / "report.json"
    path.write_bytes(orjson.dumps([{"SpecReports": specs}]))
    return path


def test_parse_keeps_selected_tests_only(tmp_path: Path) -> None:
    path = _write(tmp_path, [
        _spec("rolls out [Conformance]", "passed"),
        _spec("scales [Conformance]", "failed", "timed out\n  waiting for | pods"),
        _spec("not selected", "skipped"),
        _spec("", "passed", kind="SynchronizedBeforeSuite"),
    ])
    results = report.parse(path)
    assert [(r.name, r.state) for r in results] == [
        ("[sig-apps] Deployment rolls out [Conformance]", "passed"),
        ("[sig-apps] Deployment scales [Conformance]", "failed"),
    ]
    assert results[1].cause == "timed out waiting for | pods"
    assert results[0].seconds == 2.5


def _run(target: str, states: dict[str, str]) -> report.TargetRun:
    results = [report.TestResult(name, state, 1.0, f"{state} cause") for name, state in
               states.items()]
    return report.TargetRun(target, "v1.36.3", results, 60.0)


def test_a_test_passing_on_the_host_and_failing_or_missing_elsewhere_diverges() -> None:
    host = _run("host", {"a": "passed", "b": "passed", "c": "failed", "d": "passed"})
    virtual = _run("virtual", {"a": "passed", "b": "timedout", "c": "failed"})
    summary = report.Summary("focus", "skip", 2, 2, {"host": host, "virtual": virtual})
    found = summary.divergences()
    assert [(d.name, d.state) for d in found] == [("b", "timedout"), ("d", "not run")]
    assert [r.name for r in summary.host_failures()] == ["c"]


def test_write_produces_results_summary_and_table(tmp_path: Path) -> None:
    host = _run("host", {"[sig-apps] x": "passed", "[sig-node] y": "failed"})
    virtual = _run("virtual", {"[sig-apps] x": "failed"})
    summary = report.Summary("focus", "skip", 2, 2, {"host": host, "virtual": virtual})
    written = report.write(summary, tmp_path, "vcsync bench conformance")
    assert {p.name for p in written} == {"results.json", "summary.json", "README.md"}
    document = orjson.loads((tmp_path / "summary.json").read_bytes())
    assert document["targets"]["host"]["passed"] == 1
    assert [d["name"] for d in document["divergences"]] == ["[sig-apps] x"]
    table = (tmp_path / "README.md").read_text()
    assert "| [sig-apps] x | virtual | failed | failed cause |" in table
    assert "| sig-node | 1 |" in table


def test_exact_focus_matches_only_the_named_tests() -> None:
    names = ["[sig-apps] ReplicaSet Replace and Patch tests [Conformance]",
             "[sig-api-machinery] server version should find the server version [Conformance]"]
    focus = re.compile(report.exact_focus(names))
    assert all(focus.search(n) for n in names)
    assert not focus.search("[sig-apps] ReplicaSet Replace and Patch tests [Conformance] x")
    assert not focus.search("[sig-apps] ReplicaSet Replace and Patch tests Conformance")
    assert not focus.search("[sig-apps] ReplicaSet Replace and Patch tests XConformance]")
    assert "\\ " not in report.exact_focus(names)  # RE2 refuses escaped spaces
