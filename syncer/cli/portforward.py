"""``kubectl port-forward`` from the CLI: a loopback port reaching a port inside a host pod.

Why kubectl and not a client of our own: port-forwarding is a streaming
upgrade (SPDY or WebSocket) through the host API server to the kubelet; the
pinned kubectl speaks it, authenticates with the host kubeconfig and binds
only 127.0.0.1 here. The pod's port is never dialled directly (no pod IP).

Two shapes:

- :func:`forward`: for the length of a block (a snapshot download, one
  ``vcsync connect -- CMD``);
- :class:`Proxy`: in the background, owned by vcsync (``vcsync connect`` of a
  Helm-installed cluster, as vCluster's background proxy): a small supervisor
  (``python -m syncer.cli.portforward``) that runs ``kubectl port-forward`` on
  one fixed local port and starts it again when it ends (the pod restarted,
  an upgrade rolled it), until ``vcsync disconnect`` (or ``delete``) stops it.
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import re
import select
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import orjson

from syncer.cli.errors import CliError
from syncer.local import binaries
from syncer.local.process import (
    CLUSTER_ENV,
    Component,
    LaunchError,
    background_owner,
    free_port,
    kill_all,
    pids_with_env,
    wait_for,
)

_FORWARDING = re.compile(rb"Forwarding from 127\.0\.0\.1:(\d+)")
_CHUNK = 1 << 20


def _kubectl() -> str:
    try:
        return str(binaries.binary_path("kubectl"))
    except binaries.BinaryMissing as exc:
        raise CliError(f"kubectl is missing: {exc}") from exc


def _argv(kubeconfig: Path, namespace: str, target: str, ports: str) -> list[str]:
    return [_kubectl(), "--kubeconfig", str(kubeconfig), "-n", namespace, "port-forward",
            "--address", "127.0.0.1", target, ports]


@contextlib.contextmanager
def forward(kubeconfig: Path, namespace: str, pod: str, port: int,
            timeout: float = 30.0, target: str = "") -> Iterator[int]:
    """The local port forwarding to ``pod``:``port`` (or ``target``, e.g. ``svc/NAME``)
    while the block runs."""
    target = target or f"pod/{pod}"
    proc = subprocess.Popen(_argv(kubeconfig, namespace, target, f":{port}"),
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    try:
        yield _local_port(proc, timeout, f"{namespace}/{target}:{port}")
    finally:
        proc.terminate()
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=5)
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def _local_port(proc: subprocess.Popen[bytes], timeout: float, what: str) -> int:
    """Read kubectl's "Forwarding from 127.0.0.1:PORT" line (or its error)."""
    assert proc.stdout is not None
    assert proc.stderr is not None
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        ready, _, _ = select.select([proc.stdout], [], [], 0.2)
        line = proc.stdout.readline() if ready else b""
        match = _FORWARDING.search(line)
        if match:
            return int(match[1])
        if proc.poll() is not None:
            detail = proc.stderr.read().decode(errors="replace").strip().replace("\n", " ")
            raise CliError(f"kubectl port-forward to {what} failed: {detail}")
    raise CliError(f"kubectl port-forward to {what} did not start within {timeout:.0f}s")


def download(url: str, token: str, out: Path, timeout: float = 600.0) -> None:
    """GET ``url`` with a bearer token into ``out``; refusals become one clear error."""
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response, out.open("wb") as f:
            while chunk := response.read(_CHUNK):
                f.write(chunk)
    except urllib.error.HTTPError as exc:
        detail = exc.read().decode(errors="replace").strip()
        raise CliError(f"{url} answered {exc.code}: {detail}") from exc
    except OSError as exc:
        raise CliError(f"{url}: {exc}") from exc


# -- the background proxy ---------------------------------------------------------------


@dataclass
class Proxy:
    """The background port-forward of one virtual cluster (state in ``directory``)."""

    directory: Path

    @property
    def state_file(self) -> Path:
        return self.directory / "proxy.json"

    @property
    def log(self) -> Path:
        return self.directory / "logs" / "port-forward.log"

    @property
    def marker(self) -> str:
        return f"proxy:{self.directory}"

    def _state(self) -> dict[str, int]:
        try:
            data: dict[str, int] = orjson.loads(self.state_file.read_bytes())
        except (OSError, orjson.JSONDecodeError):
            return {}
        return data

    def _component(self, argv: list[str] | None = None, pid: int = 0) -> Component:
        return Component(name="port-forward", argv=argv or [], log=self.log,
                         owner=background_owner(), die_with_parent=False,
                         env={CLUSTER_ENV: self.marker}, pid=pid)

    def port(self) -> int | None:
        """The local port of the running proxy, None when none runs."""
        state = self._state()
        pid, port = int(state.get("pid", 0)), state.get("port")
        if port and pid and self._component(pid=pid).running():
            return int(port)
        return None

    def last_port(self) -> int | None:
        """The port the proxy had (or has): a new one takes it again, so kubeconfigs
        handed out before stay right."""
        port = self._state().get("port")
        return int(port) if port else None

    def start(self, kubeconfig: Path, namespace: str, target: str, remote_port: int,
              local_port: int | None, ready: Callable[[int], bool],
              timeout: float = 60.0) -> int:
        """Run the supervisor on ``local_port`` (default: the last one, else a free one)
        and wait until ``ready(port)``; stop it and raise CliError if it does not get there.
        """
        self.stop()
        port = local_port or self.last_port() or free_port()
        argv = [sys.executable, "-m", "syncer.cli.portforward",
                "--kubeconfig", str(kubeconfig), "--namespace", namespace,
                "--target", target, "--ports", f"{port}:{remote_port}"]
        component = self._component(argv)
        component.start()
        self.state_file.write_bytes(orjson.dumps({"pid": component.pid, "port": port}))

        def up() -> bool:
            component.ensure_running()
            return ready(port)

        try:
            if not wait_for(up, timeout, interval=0.5):
                raise LaunchError(f"not ready after {timeout:.0f}s")
        except LaunchError as exc:
            self.stop()
            raise CliError(f"port-forward to {namespace}/{target}:{remote_port} on "
                           f"127.0.0.1:{port} failed ({str(exc).splitlines()[0]}); "
                           f"its log:\n{component.tail(10)}") from exc
        return port

    def stop(self) -> None:
        """Stop the supervisor and its kubectl (found by marker: pids may be stale)."""
        state = self._state()
        if state.get("pid"):
            self._component(pid=int(state["pid"])).stop()
        kill_all(pids_with_env(CLUSTER_ENV, self.marker))
        if state:
            self.state_file.write_bytes(orjson.dumps({"port": state.get("port")}))


def _serve(kubeconfig: Path, namespace: str, target: str, ports: str) -> int:
    """Run ``kubectl port-forward`` until SIGTERM, again after each exit (backing off)."""
    stopping = threading.Event()
    child: list[subprocess.Popen[bytes]] = []

    def stop(signum: int, _: object) -> None:
        stopping.set()
        for proc in child:
            with contextlib.suppress(ProcessLookupError):
                proc.terminate()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    delay = 1.0
    argv = _argv(kubeconfig, namespace, target, ports)
    while not stopping.is_set():
        started = time.monotonic()
        print(f"$ {' '.join(argv)}", flush=True)
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, preexec_fn=_die_with_parent)
        child[:] = [proc]
        code = proc.wait()
        if stopping.is_set():
            break
        if time.monotonic() - started > 30:
            delay = 1.0
        print(f"kubectl port-forward exited with {code}; starting it again in {delay:.0f}s",
              flush=True)
        stopping.wait(delay)
        delay = min(2 * delay, 10.0)
    return 0


def _die_with_parent() -> None:
    libc = ctypes.CDLL("libc.so.6", use_errno=True)
    libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m syncer.cli.portforward",
        description="vcsync's background port-forward (started by `vcsync connect`).")
    parser.add_argument("--kubeconfig", type=Path, required=True, help="host kubeconfig")
    parser.add_argument("--namespace", required=True, help="host namespace")
    parser.add_argument("--target", required=True, help="what to forward to, e.g. svc/NAME")
    parser.add_argument("--ports", required=True, help="LOCAL:REMOTE")
    args = parser.parse_args(argv)
    return _serve(args.kubeconfig, args.namespace, args.target, args.ports)


if __name__ == "__main__":
    sys.exit(main())
