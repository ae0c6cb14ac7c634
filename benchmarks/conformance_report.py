"""Results of ``vcsync bench conformance``: per-test results, the summary, the table.

Per target, ``<target>/results.json`` holds one entry per selected test (name,
state, seconds, the first line of its failure), taken from Ginkgo's JSON
report (left with the run's control planes: it is megabytes, mostly the
specs the focus left out). ``summary.json`` and
``README.md`` compare every virtual target with the host: the tests that pass
on the host but not on the virtual cluster are the divergences the project
must fix; tests that fail on the host too are bound by what kwok nodes can do.
"""

from __future__ import annotations

import datetime
import os
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import orjson

from contract.resources import Obj

FOCUS = r"\[Conformance\]"
SKIP = r"\[Disruptive\]|NoExecuteTaintManager"
"""sonobuoy's default (non-disruptive-conformance) skip: tests that break the cluster."""
TARGETS = ("host", "virtual", "skew")
PASSED, SKIPPED = "passed", "skipped"
_CAUSE_CHARS = 240
_SIG = re.compile(r"^\[(sig-[a-z-]+)\]")
_GO_SPECIAL = re.compile(r"([\\.+*?()|\[\]{}^$])")


@dataclass(frozen=True)
class Selection:
    """Which tests run, and for how long at most (the same for every target)."""

    focus: str = FOCUS
    skip: str = SKIP
    timeout: str = "4h"
    """The whole suite's limit (Ginkgo's own default of 1 h is too short on kwok)."""


def exact_focus(names: Iterable[str]) -> str:
    """A Ginkgo focus (Go regexp) selecting the tests of these full names (and any whose
    name merely ends in one: the text Ginkgo matches has something before the first
    container's, so it cannot be anchored at the start).

    Python's ``re.escape`` will not do: it escapes spaces, which Go's RE2 refuses.
    """
    return "(?:" + "|".join(_GO_SPECIAL.sub(r"\\\1", n) for n in names) + ")$"


@dataclass(frozen=True)
class TestResult:
    """One test on one target (``state``: Ginkgo's: passed, failed, timedout, ...)."""

    name: str
    state: str
    seconds: float
    cause: str = ""

    @property
    def ran(self) -> bool:
        return self.state != SKIPPED

    @property
    def passed(self) -> bool:
        return self.state == PASSED


def _cause(spec: Obj) -> str:
    """The failure's message on one line, cut short (full text: Ginkgo's report)."""
    message = " ".join(str((spec.get("Failure") or {}).get("Message") or "").split())
    return message[:_CAUSE_CHARS] + ("..." if len(message) > _CAUSE_CHARS else "")


def _name(spec: Obj) -> str:
    return " ".join([*(spec.get("ContainerHierarchyTexts") or []), spec["LeafNodeText"]])


def parse(path: Path) -> list[TestResult]:
    """The tests (``It`` nodes, not suite set-up) of a Ginkgo JSON report that were
    selected: a test left out by the focus or skip is not a result of this run."""
    results = []
    for suite in orjson.loads(path.read_bytes()):
        for spec in suite.get("SpecReports") or ():
            if spec.get("LeafNodeType") != "It":
                continue
            if spec["State"] == SKIPPED and not spec.get("Failure"):
                continue
            results.append(TestResult(_name(spec), spec["State"],
                                      round(spec.get("RunTime", 0) / 1e9, 1), _cause(spec)))
    return sorted(results, key=lambda r: r.name)


def counts(results: Iterable[TestResult]) -> str:
    ran = [r for r in results if r.ran]
    passed = sum(r.passed for r in ran)
    return f"{len(ran)} run, {passed} passed, {len(ran) - passed} failed"


@dataclass(frozen=True)
class TargetRun:
    target: str
    version: str
    results: list[TestResult]
    seconds: float

    def passed(self) -> set[str]:
        return {r.name for r in self.results if r.passed}

    def by_name(self) -> dict[str, TestResult]:
        return {r.name: r for r in self.results}


@dataclass(frozen=True)
class Divergence:
    """A test that passes on the host and not on ``target``, with what the target said."""

    name: str
    target: str
    state: str
    cause: str


def divergences(host: TargetRun, other: TargetRun) -> list[Divergence]:
    """Tests passing on ``host`` that ``other`` did not pass (missing counts as not passed:
    a test the suite never reached on the target is no pass)."""
    found = other.by_name()
    missing = TestResult("", "not run", 0.0)
    return [Divergence(name, other.target, found.get(name, missing).state,
                       found.get(name, missing).cause)
            for name in sorted(host.passed() - other.passed())]


@dataclass(frozen=True)
class Summary:
    focus: str
    skip: str
    procs: int
    nodes: int
    runs: dict[str, TargetRun]

    def divergences(self) -> list[Divergence]:
        host = self.runs.get("host")
        if host is None:
            return []
        return [d for target, run in self.runs.items() if target != "host"
                for d in divergences(host, run)]

    def host_failures(self) -> list[TestResult]:
        host = self.runs.get("host")
        return [r for r in host.results if r.ran and not r.passed] if host else []


def _target_json(run: TargetRun) -> Obj:
    ran = [r for r in run.results if r.ran]
    return {"version": run.version, "seconds": round(run.seconds, 1), "run": len(ran),
            "passed": sum(r.passed for r in ran), "failed": sum(not r.passed for r in ran)}


def to_json(summary: Summary, command: str) -> Obj:
    return {
        "command": command,
        "date": datetime.date.today().isoformat(),
        "machine": {"cpus": os.cpu_count()},
        "selection": {"focus": summary.focus, "skip": summary.skip},
        "procs": summary.procs,
        "nodes": summary.nodes,
        "targets": {t: _target_json(run) for t, run in summary.runs.items()},
        "divergences": [asdict(d) for d in summary.divergences()],
        "hostFailures": [asdict(r) for r in summary.host_failures()],
    }


def _sig(name: str) -> str:
    match = _SIG.match(name)
    return match.group(1) if match else "other"


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def _targets_table(summary: Summary) -> list[str]:
    rows = ["| target | Kubernetes | tests run | passed | failed | run time |",
            "|---|---|---|---|---|---|"]
    for target, run in summary.runs.items():
        t = _target_json(run)
        rows.append(f"| {target} | {run.version} | {t['run']} | {t['passed']} | {t['failed']} "
                    f"| {run.seconds / 60:.1f} min |")
    return rows


def _divergence_table(found: Sequence[Divergence]) -> list[str]:
    if not found:
        return ["None: every test that passes on the host passes on each virtual cluster."]
    rows = ["| test | target | state | cause |", "|---|---|---|---|"]
    rows += [f"| {_cell(d.name)} | {d.target} | {d.state} | {_cell(d.cause)} |" for d in found]
    return rows


def _host_failure_table(failures: Sequence[TestResult]) -> list[str]:
    by_sig = Counter(_sig(r.name) for r in failures)
    rows = ["| SIG | tests failing on the host |", "|---|---|"]
    rows += [f"| {sig} | {n} |" for sig, n in sorted(by_sig.items())]
    return rows


def to_markdown(summary: Summary, command: str) -> str:
    lines = [
        "# Conformance: host vs. virtual clusters",
        "",
        f"`{command}` on {datetime.date.today().isoformat()}, {os.cpu_count()} CPUs; "
        f"focus `{summary.focus}`, skip `{summary.skip}`, {summary.procs} Ginkgo "
        f"processes, {summary.nodes} kwok nodes.",
        "",
        *_targets_table(summary),
        "",
        "## Passed on the host, not on a virtual cluster",
        "",
        *_divergence_table(summary.divergences()),
        "",
        "## Failing on the host (kwok-bound: no container really runs)",
        "",
        "Every one with its cause: `hostFailures` in `summary.json`, per target in "
        "`<target>/results.json`.",
        "",
        *_host_failure_table(summary.host_failures()),
        "",
    ]
    return "\n".join(lines)


def write(summary: Summary, output: Path, command: str) -> list[Path]:
    """``summary.json``, ``README.md`` and each target's ``results.json`` under ``output``."""
    written = []
    for target, run in summary.runs.items():
        path = output / target / "results.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(orjson.dumps([asdict(r) for r in run.results],
                                      option=orjson.OPT_INDENT_2))
        written.append(path)
    summary_path, readme = output / "summary.json", output / "README.md"
    summary_path.write_bytes(orjson.dumps(to_json(summary, command), option=orjson.OPT_INDENT_2))
    readme.write_text(to_markdown(summary, command))
    return [*written, summary_path, readme]
