"""``kubectl port-forward`` from the CLI: a loopback port reaching a port inside a host pod.

Why kubectl and not a client of our own: port-forwarding is a streaming
upgrade (SPDY or WebSocket) through the host API server to the kubelet; the
pinned kubectl speaks it, authenticates with the host kubeconfig and binds
only 127.0.0.1 here. The pod's port is never dialled directly (no pod IP).
"""

from __future__ import annotations

import contextlib
import re
import select
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

from syncer.cli.errors import CliError
from syncer.local import binaries

_FORWARDING = re.compile(rb"Forwarding from 127\.0\.0\.1:(\d+)")
_CHUNK = 1 << 20


@contextlib.contextmanager
def forward(kubeconfig: Path, namespace: str, pod: str, port: int,
            timeout: float = 30.0) -> Iterator[int]:
    """The local port forwarding to ``pod``:``port`` while the block runs."""
    try:
        kubectl = str(binaries.binary_path("kubectl"))
    except binaries.BinaryMissing as exc:
        raise CliError(f"kubectl is missing: {exc}") from exc
    proc = subprocess.Popen(
        [kubectl, "--kubeconfig", str(kubeconfig), "-n", namespace, "port-forward",
         "--address", "127.0.0.1", f"pod/{pod}", f":{port}"],
        stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        yield _local_port(proc, timeout, f"{namespace}/{pod}:{port}")
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
