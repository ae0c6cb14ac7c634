"""The image: Dockerfile lint, and the environment it describes, built without a Docker engine.

No Docker engine runs here, so the builder stage's own steps are replayed: its
COPY sources into a scratch directory, then its RUN commands with /opt/vcsync
and /wheels moved under tmp (and pip's cache allowed, for speed). The result
must be a working ``vcsync`` (the ENTRYPOINT minus tini, which is the Debian
package the runtime stage installs) that also runs the chart's scripts.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from syncer.local import network
from tests.chart.rendering import CHART, ROOT

DOCKERFILE = ROOT / "Dockerfile"


def instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, continuation lines joined, comments dropped."""
    logical: list[str] = []
    pending = ""
    for line in DOCKERFILE.read_text().splitlines():
        if line.lstrip().startswith("#") or not line.strip():
            continue
        pending += line.rstrip("\\").rstrip() + " " if line.endswith("\\") else line
        if not line.endswith("\\"):
            logical.append(pending)
            pending = ""
    return [(head.upper(), rest.strip()) for head, _, rest in
            (item.strip().partition(" ") for item in logical)]


def stages() -> list[list[tuple[str, str]]]:
    result: list[list[tuple[str, str]]] = []
    for instruction in instructions():
        if instruction[0] == "FROM":
            result.append([])
        if result:
            result[-1].append(instruction)
    return result


def test_hadolint_is_clean() -> None:
    hadolint = Path(sys.executable).parent / "hadolint"
    proc = subprocess.run([str(hadolint), "--no-color", str(DOCKERFILE)], capture_output=True,
                          text=True, timeout=60, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout == ""


def test_dockerfile_shape() -> None:
    """Multi-stage on a slim Python, dependencies before code, non-root, tini, vcsync run."""
    builder, runtime = stages()
    assert builder[0] == ("FROM", "${PYTHON_IMAGE} AS builder")
    assert "ARG PYTHON_IMAGE=python:3.11-slim-bookworm" in DOCKERFILE.read_text()
    copies = [args for op, args in builder if op == "COPY"]
    assert copies[0] == "pyproject.toml ./"
    runs = [args for op, args in builder if op == "RUN"]
    assert "requirements.txt" in runs[1]  # the dependency layer, before any code is copied
    assert builder.index(("COPY", "syncer ./syncer")) > builder.index(("RUN", runs[1]))
    last = dict(runtime)
    assert last["USER"] == "65532:65532"
    assert last["EXPOSE"] == "8080"
    assert json.loads(last["ENTRYPOINT"]) == ["tini", "--", "vcsync", "run"]
    assert "tini=" in last["RUN"]
    assert ("COPY", "--from=builder /opt/vcsync /opt/vcsync") in runtime


@pytest.fixture(scope="module")
def image_env(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Replay the builder stage; return the virtual environment it made (/opt/vcsync)."""
    root = tmp_path_factory.mktemp("image")
    src, venv, wheels = root / "src", root / "opt-vcsync", root / "wheels"
    src.mkdir()
    builder = stages()[0]
    env = {**os.environ, "PIP_DISABLE_PIP_VERSION_CHECK": "1", "PYTHONDONTWRITEBYTECODE": "1",
           "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    for op, args in builder[1:]:
        if op == "COPY":
            source, _ = args.split()
            if (ROOT / source).is_dir():
                shutil.copytree(ROOT / source, src / source,
                                ignore=shutil.ignore_patterns("__pycache__"))
            else:
                shutil.copy(ROOT / source, src / source)
        elif op == "RUN":
            command = (args.replace("/opt/vcsync", str(venv)).replace("/wheels", str(wheels))
                       .replace("--no-cache-dir ", ""))
            # package installs: the one thing allowed out of the session's namespace
            proc = subprocess.run(["bash", "-o", "pipefail", "-c", command], cwd=src, env=env,
                                  capture_output=True, text=True, timeout=600, check=False,
                                  preexec_fn=network.outside())
            assert proc.returncode == 0, f"RUN {command}\n{proc.stdout[-2000:]}{proc.stderr}"
    return venv


def run(venv: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """Run from an empty directory with only the image's PATH, so nothing of the repo leaks in."""
    env = {"PATH": f"{venv / 'bin'}:/usr/bin:/bin", "PYTHONDONTWRITEBYTECODE": "1"}
    return subprocess.run(list(args), cwd=venv, env=env, capture_output=True, text=True,
                          timeout=120, check=False)


def test_vcsync_runs_from_the_wheel(image_env: Path) -> None:
    assert list((image_env.parent / "wheels").glob("vcsync-*.whl"))
    top = run(image_env, str(image_env / "bin" / "vcsync"), "--help")
    assert top.returncode == 0, top.stderr
    assert "run" in top.stdout
    entrypoint = run(image_env, str(image_env / "bin" / "vcsync"), "run", "--help")
    assert entrypoint.returncode == 0, entrypoint.stderr
    for flag in ("--in-cluster", "--health-address", "--leader-elect", "--api-service"):
        assert flag in entrypoint.stdout
    where = run(image_env, str(image_env / "bin" / "python"), "-c",
                "import syncer.app, translators.pods; print(syncer.app.__file__)")
    assert where.returncode == 0, where.stderr
    assert str(image_env) in where.stdout  # the installed wheel, not the work tree


def test_chart_scripts_run_in_the_image(image_env: Path) -> None:
    """The chart runs files/pki.py and files/start.py with the image's Python."""
    python = str(image_env / "bin" / "python")
    pki = run(image_env, python, str(CHART / "files" / "pki.py"), "--help")
    assert pki.returncode == 0, pki.stderr
    start = run(image_env, python, str(CHART / "files" / "start.py"))
    assert start.returncode == 2, start.stderr  # usage: nothing to exec, but every import worked
    assert "usage" in start.stderr
