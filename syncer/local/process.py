"""Child processes of local control planes, and the bookkeeping that ends them.

Invariants:
- every process started here gets its own session (a terminal's Ctrl-C reaches
  the launcher, which then stops children in order) and the environment
  variable ``VCSYNC_OWNER`` naming its owner, so a leftover can always be found
  in ``/proc`` (see :func:`leftover_pids`);
- with ``die_with_parent`` (tests), the kernel kills the child when the
  launching process dies, even by SIGKILL; without it (the CLI's background
  clusters) the pid is recorded in a file so a later command can stop it.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from syncer.kube.blocking import probe

OWNER_ENV = "VCSYNC_OWNER"
CLUSTER_ENV = "VCSYNC_CLUSTER"
"""Names the CLI-managed cluster a background process belongs to (see ``vcsync delete``)."""
_PR_SET_PDEATHSIG = 1


class LaunchError(RuntimeError):
    """A component did not start or did not become ready; the message says which."""


def background_owner() -> str:
    """The owner of processes that outlive the command starting them (CLI clusters).

    Under a test session it is the session's owner, so its leftover check
    sees CLI-started processes too.
    """
    return os.environ.get(OWNER_ENV) or "vcsync-cli"


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago.

    The race (another process taking it before our child binds) is accepted:
    callers retry start-up, and the child's log says "address in use".
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def port_free(port: int) -> bool:
    """Whether nothing listens on 127.0.0.1:``port`` (a bind test, as the component would)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _die_with_parent() -> None:
    libc = ctypes.CDLL("libc.so.6", use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    with contextlib.suppress(OSError):
        stat = Path(f"/proc/{pid}/stat").read_text()
        return stat.rsplit(")", 1)[1].split()[0] != "Z"
    return True


@dataclass
class Component:
    """One running binary with its log file."""

    name: str
    argv: list[str]
    log: Path
    owner: str
    die_with_parent: bool = True
    env: dict[str, str] = field(default_factory=dict)
    proc: subprocess.Popen[bytes] | None = None
    pid: int = 0

    def start(self) -> None:
        self.log.parent.mkdir(parents=True, exist_ok=True)
        env = {**os.environ, **self.env, OWNER_ENV: self.owner}
        with self.log.open("ab") as out:
            out.write(f"\n$ {' '.join(self.argv)}\n".encode())
            out.flush()
            self.proc = subprocess.Popen(
                self.argv,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                env=env,
                start_new_session=True,
                preexec_fn=_die_with_parent if self.die_with_parent else None,
            )
        self.pid = self.proc.pid

    def running(self) -> bool:
        """Alive, and (for a restored handle) still the process we started, not a reused pid."""
        if self.proc is not None:
            return self.proc.poll() is None
        return self.pid > 0 and pid_alive(self.pid) and self.pid in leftover_pids(
            self.owner, among=[self.pid])

    def stop(self, timeout: float = 10.0) -> None:
        """SIGTERM, wait up to ``timeout``, then SIGKILL. Idempotent."""
        if not self.pid or not self.running():
            self._reap()
            return
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.pid, signal.SIGTERM)
        if not wait_for(lambda: not self.running(), timeout):
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, signal.SIGKILL)
            wait_for(lambda: not self.running(), 5.0)
        self._reap()

    def kill(self) -> None:
        """SIGKILL at once (chaos tests), and reap."""
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.pid, signal.SIGKILL)
        wait_for(lambda: not self.running(), 5.0)
        self._reap()

    def _reap(self) -> None:
        if self.proc is not None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(timeout=1)

    def tail(self, lines: int = 30) -> str:
        """The last lines of the log, for failure reports."""
        try:
            text = self.log.read_text(errors="replace")
        except OSError:
            return "(no log)"
        return "\n".join(text.splitlines()[-lines:])

    def ensure_running(self) -> None:
        if not self.running():
            raise LaunchError(f"{self.name} exited; last log lines:\n{self.tail(15)}")

    def wait_http(self, url: str, timeout: float) -> None:
        """Wait until ``url`` answers 200 while the process keeps running.

        Raises :class:`LaunchError` naming the component, with its last log
        lines, when it exits or ``timeout`` passes first.
        """

        def ready() -> bool:
            self.ensure_running()
            return probe(url) == 200

        if not wait_for(ready, timeout, interval=0.1):
            raise LaunchError(f"{self.name} not ready after {timeout:.0f}s ({url}); last log "
                              f"lines:\n{self.tail(15)}")


def wait_for(condition: Callable[[], bool], timeout: float, interval: float = 0.1) -> bool:
    """Poll ``condition`` until true or ``timeout`` seconds pass; return its last value."""
    deadline = time.monotonic() + timeout
    while True:
        if condition():
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(interval)


def leftover_pids(owner: str, among: list[int] | None = None) -> list[int]:
    """Pids of live processes whose environment names ``owner`` (a /proc scan)."""
    return pids_with_env(OWNER_ENV, owner, among)


def pids_with_env(key: str, value: str, among: list[int] | None = None) -> list[int]:
    """Pids of live processes (other than this one) whose environment has ``key=value``.

    ``among`` limits the scan to those pids (default: every process).
    """
    marker = f"{key}={value}".encode()
    candidates = among if among is not None else [
        int(e.name) for e in Path("/proc").iterdir() if e.name.isdigit()]
    found = []
    for pid in candidates:
        if pid == os.getpid():
            continue
        with contextlib.suppress(OSError):
            environ = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
            if marker in environ and pid_alive(pid):
                found.append(pid)
    return found


def kill_all(pids: list[int], timeout: float = 10.0) -> None:
    """SIGTERM ``pids``, then SIGKILL what is still alive after ``timeout``."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, sig)
        if wait_for(lambda: not any(pid_alive(p) for p in pids), timeout):
            return
