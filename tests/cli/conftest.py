"""The CLI as a user drives it: subprocesses with their own ``$KUBECONFIG`` and state dir.

One local host cluster (made by ``vcsync host create``) serves every CLI test;
each test makes and deletes its own virtual clusters. At the end the host is
deleted through the CLI and no process it started may be left.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import pytest
import yaml

from syncer.local import binaries, network
from syncer.local.process import CLUSTER_ENV, OWNER_ENV, pid_alive

HOST = "vcsync"
HOST_CONTEXT = f"vcsync-host-{HOST}"


@dataclass
class Cli:
    """``vcsync`` and ``kubectl`` run in a private home (kubeconfig and state under ``root``)."""

    root: Path

    @property
    def kubeconfig_path(self) -> Path:
        return self.root / "kube" / "config"

    @property
    def state(self) -> Path:
        return self.root / "state" / "vcsync"

    def env(self, **extra: str) -> dict[str, str]:
        return {**os.environ, "KUBECONFIG": str(self.kubeconfig_path),
                "XDG_STATE_HOME": str(self.root / "state"), **extra}

    def run(self, *args: str, check: bool = True, timeout: float = 300,
            **env: str) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run([sys.executable, "-m", "syncer.cli.main", *args],
                              env=self.env(**env), capture_output=True, text=True,
                              stdin=subprocess.DEVNULL, timeout=timeout, check=False)
        if check and proc.returncode != 0:
            raise AssertionError(f"vcsync {' '.join(args)} exited {proc.returncode}:\n"
                                 f"{proc.stdout}\n{proc.stderr}")
        return proc

    def fails(self, *args: str, **env: str) -> str:
        """Run a command that must fail with exit code 1 and one ``error:`` line; its stderr."""
        proc = self.run(*args, check=False, timeout=300, **env)
        assert proc.returncode == 1, f"vcsync {' '.join(args)}: exit {proc.returncode}\n" \
                                     f"{proc.stdout}\n{proc.stderr}"
        assert "Traceback" not in proc.stderr, proc.stderr
        assert "error: " in proc.stderr, proc.stderr
        return proc.stderr

    @staticmethod
    def kubectl_path() -> Path:
        return binaries.binary_path("kubectl")

    def kubectl(self, *args: str, kubeconfig: Path | None = None) -> str:
        env = self.env(KUBECONFIG=str(kubeconfig or self.kubeconfig_path))
        proc = subprocess.run([str(self.kubectl_path()), *args], env=env,
                              capture_output=True, text=True, timeout=60, check=False)
        if proc.returncode != 0:
            raise AssertionError(f"kubectl {' '.join(args)} failed: {proc.stderr.strip()}")
        return proc.stdout

    def kubectl_json(self, *args: str) -> Any:
        return orjson.loads(self.kubectl(*args, "-o", "json"))

    def kubeconfig(self) -> dict[str, Any]:
        data: dict[str, Any] = yaml.safe_load(self.kubeconfig_path.read_text())
        return data

    def current_context(self) -> str:
        return str(self.kubeconfig().get("current-context") or "")

    def use_host(self) -> None:
        self.kubectl("config", "use-context", HOST_CONTEXT)

    def host_netns(self) -> str | None:
        """The network namespace of the CLI's host (None: the loopback layout)."""
        record = orjson.loads((self.state / "hosts" / HOST / "host.json").read_bytes())
        netns: str | None = record.get("netns")
        return netns

    def record(self, name: str) -> dict[str, Any]:
        """The state record of virtual cluster ``name`` (pids, ports, logs)."""
        for file in (self.state / "vclusters").glob("*/vcluster.json"):
            data: dict[str, Any] = orjson.loads(file.read_bytes())
            if data["name"] == name:
                return data
        raise AssertionError(f"no record of virtual cluster {name!r}")

    def listed(self) -> dict[str, dict[str, Any]]:
        rows = orjson.loads(self.run("list", "--output", "json").stdout)
        return {row["name"]: row for row in rows}

    def pids(self, marker_part: str = "") -> list[int]:
        """Live processes started by this CLI home (their cluster marker names its state dir)."""
        found = []
        owner = f"{OWNER_ENV}={os.environ[OWNER_ENV]}".encode()
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            with contextlib.suppress(OSError):
                environ = (entry / "environ").read_bytes().split(b"\0")
                marker = next((e for e in environ if e.startswith(f"{CLUSTER_ENV}=".encode())),
                              b"")
                ours = str(self.state).encode() in marker and marker_part.encode() in marker
                if owner in environ and ours and pid_alive(int(entry.name)):
                    found.append(int(entry.name))
        return found


@pytest.fixture(scope="session")
def cli(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cli]:
    """A CLI home with a running host cluster; the host is deleted (through the CLI) at the end."""
    home = Cli(tmp_path_factory.mktemp("cli"))
    home.run("host", "create", HOST, "--nodes", "2")
    netns = home.host_netns()
    try:
        yield home
    finally:
        home.run("host", "delete", HOST)
        assert home.pids() == [], "processes left after `vcsync host delete`"
        assert netns is None or not network.named_path(netns).exists(), \
            f"network namespace {netns} left after `vcsync host delete`"


@pytest.fixture(autouse=True)
def _cleanup(request: pytest.FixtureRequest) -> Iterator[None]:
    """Delete the virtual clusters a test made but did not delete (it failed half-way),
    so one failure does not cascade into the next tests."""
    if "cli" not in request.fixturenames:
        yield
        return
    home: Cli = request.getfixturevalue("cli")
    before = set(home.listed())
    yield
    for name in set(home.listed()) - before:
        home.run("delete", name, check=False)
