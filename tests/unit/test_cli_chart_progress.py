"""helm's --wait is silent for minutes: while it runs, what the pods do is printed when it
changes (syncer.cli.chart._communicate, with a real child process)."""

from __future__ import annotations

import subprocess
import sys

import pytest

from syncer.cli import chart
from syncer.cli.errors import CliError


def _child(seconds: float) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-c", f"import time; time.sleep({seconds}); "
                             "print('done')"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def test_progress_is_printed_when_it_changes(monkeypatch: pytest.MonkeyPatch,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr(chart, "PROGRESS_EVERY", 0.05)
    said = iter(["pod tenant-0 Pending"] * 3 + ["pod tenant-0 Running, 1/5 containers ready"])
    out, _ = chart._communicate(_child(1.0), 30,
                                lambda: next(said, "pod tenant-0 Running, 5/5 containers ready"))
    assert out == "done\n"
    lines = [line.split(": ", 1)[1] for line in capsys.readouterr().err.splitlines()]
    assert lines[:2] == ["pod tenant-0 Pending", "pod tenant-0 Running, 1/5 containers ready"]
    assert len(lines) == len(set(lines)), "an unchanged state was printed again"


def test_a_helm_that_does_not_finish_is_killed_and_named(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(chart, "PROGRESS_EVERY", 0.05)
    child = _child(30)
    with pytest.raises(CliError, match=r"did not finish within 0\.3s"):
        chart._communicate(child, 0.3, lambda: "")
    assert child.poll() is not None


def test_pod_line_says_phase_readiness_and_why_it_waits() -> None:
    pod = {"metadata": {"name": "tenant-0"}, "status": {"phase": "Pending", "containerStatuses": [
        {"ready": True, "state": {"running": {}}},
        {"ready": False, "state": {"waiting": {"reason": "ImagePullBackOff"}}}]}}
    assert chart._pod_line(pod) == \
        "pod tenant-0 Pending, 1/2 containers ready (ImagePullBackOff)"
