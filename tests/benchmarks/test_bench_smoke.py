"""``vcsync bench`` runs end to end and writes what it promises (no timing assertions).

The hot-path benchmark runs in-process with few pods; the load benchmark runs
``--quick`` as a child process (it starts its own control planes and syncer,
all carrying this session's ``VCSYNC_OWNER``, so the leftover check covers them).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import orjson
import pytest

from contract.resources import Obj
from syncer.cli.main import main


def _json(path: Path) -> Obj:
    data: Obj = orjson.loads(path.read_bytes())
    return data


def _metrics(document: Obj) -> set[str]:
    return {item["labels"]["Metric"] for item in document["dataItems"]}


def test_hotpath_writes_json_and_markdown(tmp_path: Path) -> None:
    assert main(["bench", "hotpath", "--pods", "40", "--rounds", "1",
                 "--output", str(tmp_path)]) == 0
    document = _json(tmp_path / "hotpath.json")
    assert {"HotPathStage", "HotPathTotal", "ModelPathV1Pod"} <= _metrics(document)
    stages = document["summary"]["stages_us"]
    assert set(stages) == {"parse", "store", "key", "translate", "patch", "serialize", "gc"}
    assert document["summary"]["model_path_us"] > 0
    assert {t["name"] for t in document["targets"]} == {
        "hot path per pod", "hot path vs model path"}
    assert "| **total** |" in (tmp_path / "hotpath.md").read_text()


def test_bench_refuses_bad_sizes(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["bench", "hotpath", "--pods", "0"]) == 1
    assert capsys.readouterr().err.startswith("error: --pods and --rounds")


def test_bench_conformance_refuses_bad_sizes(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["bench", "conformance", "--procs", "0", "--target", "host"]) == 1
    assert capsys.readouterr().err == "error: --procs and --nodes must be at least 1\n"


@pytest.mark.cluster
def test_quick_load_benchmark_writes_json_markdown_and_plot(tmp_path: Path) -> None:
    out = tmp_path / "results"
    proc = subprocess.run(
        [sys.executable, "-m", "syncer.cli.main", "bench", "load", "--quick", "--no-progress",
         "--output", str(out)],
        capture_output=True, text=True, timeout=540,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    document = _json(out / "load.json")
    assert {"HostCreateLatency", "VirtualReadyLatency", "RunningLatency",
            "AddedHostCreateLatency", "ReferencedObjectUpdateLatency"} <= _metrics(document)
    for item in document["dataItems"]:
        assert item["unit"] == "ms"
        assert {"Perc50", "Perc90", "Perc99"} <= set(item["data"])
    summary = document["summary"]
    assert {"burst", "steady-20", "churn", "restart", "memory"} <= set(summary)
    assert summary["burst"]["pods_per_arm"] == 100
    assert summary["restart"]["host_writes"] == 0
    assert [a["arm"] for a in document["arms"]][:4] == ["A1", "B1", "B2", "A2"]
    markdown = (out / "load.md").read_text()
    assert "## Targets" in markdown
    assert "efficiency" in markdown
    assert (out / "load.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.cluster
def test_kubelet_benchmark_writes_json_and_markdown(tmp_path: Path) -> None:
    out = tmp_path / "results"
    proc = subprocess.run(
        [sys.executable, "-m", "syncer.cli.main", "bench", "kubelet", "--rounds", "1",
         "--size-mib", "1", "--streams", "3", "--output", str(out)],
        capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    document = _json(out / "kubelet.json")
    assert [a["name"] for a in document["arms"]] == ["A1", "B1", "B2", "A2"]
    assert document["log_bytes"] == 1024 * 1024 // 201 * 201
    summary = document["summary"]
    assert summary["first_byte_ratio"] > 0
    assert summary["throughput_ratio"] > 0
    assert set(summary["syncer_rss_mib"]) == {"rest", "idle_streams", "peak_reading"}
    assert "| time to first byte, median |" in (out / "kubelet.md").read_text()


@pytest.mark.cluster
def test_density_benchmark_writes_json_markdown_and_plot(tmp_path: Path) -> None:
    """Two tenants, a short idle window: every figure present (the targets are judged by
    the full-size run, not here)."""
    out = tmp_path / "results"
    proc = subprocess.run(
        [sys.executable, "-m", "syncer.cli.main", "bench", "density", "--tenants", "2",
         "--idle-seconds", "5", "--output", str(out)],
        capture_output=True, text=True, timeout=420,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    document = _json(out / "density.json")
    assert [t["name"] for t in document["tenants"]] == ["t0", "t1"]
    for tenant in document["tenants"]:
        assert set(tenant["components"]) == {"kine", "kube-apiserver",
                                             "kube-controller-manager", "vcsync"}
        assert all(c["rss_mib"] > 0 and c["pss_mib"] > 0 for c in tenant["components"].values())
        assert tenant["start_seconds"] > 0
    assert len(document["targets"]) == 4
    assert {"before", "one", "after", "growth"} <= set(document["summary"]["host_rss_mib"])
    assert (out / "density.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "| RSS per idle tenant <= 256 MiB |" in (out / "density.md").read_text()
