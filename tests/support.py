"""Helpers shared by tests: condition waits, kubectl, async clients."""

from __future__ import annotations

import asyncio
import inspect
import subprocess
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar, overload

from syncer.local import binaries
from syncer.local.cluster import ControlPlane

T = TypeVar("T")


@overload
async def wait_until(
    probe: Callable[[], Awaitable[T]], what: str, timeout: float = ..., interval: float = ...
) -> T: ...


@overload
async def wait_until(
    probe: Callable[[], T], what: str, timeout: float = ..., interval: float = ...
) -> T: ...


async def wait_until(
    probe: Callable[[], Any], what: str, timeout: float = 30.0, interval: float = 0.2
) -> Any:
    """Poll ``probe`` (sync or async) until it returns a truthy value; fail naming ``what``."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        result = probe()
        last = await result if inspect.isawaitable(result) else result
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
