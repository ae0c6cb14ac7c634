"""Helpers shared by tests: condition waits, kubectl, async clients."""

from __future__ import annotations

import asyncio
import subprocess
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

from syncer.local import binaries
from syncer.local.cluster import ControlPlane

T = TypeVar("T")


async def wait_until(
    probe: Callable[[], Awaitable[T]], what: str, timeout: float = 30.0, interval: float = 0.2
) -> T:
    """Poll ``probe`` until it returns a truthy value; fail naming ``what`` on timeout."""
    deadline = time.monotonic() + timeout
    last: T | None = None
    while time.monotonic() < deadline:
        last = await probe()
        if last:
            return last
        await asyncio.sleep(interval)
    raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}; last value: {last!r}")


def kubectl(cluster: ControlPlane, *args: str, check: bool = True) -> str:
    """Run the pinned kubectl against ``cluster``; return stdout (raise with stderr)."""
    proc = subprocess.run(
        [str(binaries.binary_path("kubectl")), f"--kubeconfig={cluster.kubeconfig}", *args],
        capture_output=True,
        text=True,
        timeout=60,
    )
    if check and proc.returncode != 0:
        raise AssertionError(f"kubectl {' '.join(args)} failed: {proc.stderr.strip()}")
    return proc.stdout
