"""The forwarder: the user's 127.0.0.1 ports into a local host cluster's network namespace.

A host made by ``vcsync host create`` lives in a namespace of its own
(:mod:`syncer.local.network`); the user's ``kubectl``, ``helm`` and other
tools stay outside and keep their kubeconfigs: the API servers' ports are
listened on at 127.0.0.1 outside by this process, which dials the same port
at 127.0.0.1 inside and copies bytes both ways. No packet leaves loopback on
either side, and the kubeconfig's server URL is right in both namespaces.

Why a process with a control socket, not one per port: every virtual cluster
adds its API server's port, and a Python process per port would cost ~15 MiB
each. ``vcsync`` tells the forwarder ``add PORT`` / ``del PORT`` on a Unix
socket; the ports are kept in a file, so a restarted forwarder serves them
again.

Why setns per dial: this process's listening sockets must be made outside and
its dialing sockets inside. It stays outside and enters the namespace only
around ``socket()`` of a dial (one thread; a socket keeps the namespace it
was made in).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import socket
import sys
from pathlib import Path

from syncer.kubelet import splice
from syncer.local import network
from syncer.local.process import Component, LaunchError, wait_for

CONNECT_TIMEOUT = 10.0


class Forwarder:
    """The running forwarder process of one host (see the module docstring)."""

    def __init__(self, netns: str, directory: Path) -> None:
        self.netns = netns
        self.control = directory / "forward.sock"
        self.ports_file = directory / "forward.ports"
        self._listeners: dict[int, asyncio.Server] = {}

    # -- inside the process ----------------------------------------------------------

    def _ports(self) -> list[int]:
        if not self.ports_file.exists():
            return []
        return [int(p) for p in self.ports_file.read_text().split()]

    def _save(self) -> None:
        self.ports_file.write_text("".join(f"{p}\n" for p in sorted(self._listeners)))

    async def serve(self) -> None:
        for port in self._ports():
            await self._add(port)
        self.control.unlink(missing_ok=True)
        server = await asyncio.start_unix_server(self._command, path=str(self.control))
        async with server:
            await server.serve_forever()

    async def _command(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        line = (await reader.readline()).decode().split()
        try:
            if len(line) != 2 or line[0] not in ("add", "del") or not line[1].isdigit():
                raise ValueError(f"unknown command {' '.join(line)!r}; expected add|del PORT")
            await (self._add if line[0] == "add" else self._remove)(int(line[1]))
            writer.write(b"ok\n")
        except (ValueError, OSError) as exc:
            writer.write(f"error {exc}\n".encode())
        await writer.drain()
        writer.close()

    async def _add(self, port: int) -> None:
        if port not in self._listeners:
            self._listeners[port] = await asyncio.start_server(
                lambda r, w: self._forward(port, (r, w)), "127.0.0.1", port,
                limit=splice.CHUNK, reuse_address=True)
            self._save()

    async def _remove(self, port: int) -> None:
        server = self._listeners.pop(port, None)
        if server is not None:
            server.close()
            self._save()

    async def _forward(self, port: int,
                       outside: tuple[asyncio.StreamReader, asyncio.StreamWriter]) -> None:
        try:
            inside = await asyncio.wait_for(self._dial(port), CONNECT_TIMEOUT)
        except (OSError, TimeoutError):
            await splice.close(outside[1])
            return
        await splice.splice(outside, inside, splice.Flow())

    async def _dial(self, port: int) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        with network.entered(self.netns):
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setblocking(False)
        try:
            await asyncio.get_running_loop().sock_connect(sock, ("127.0.0.1", port))
        except BaseException:
            sock.close()
            raise
        return await asyncio.open_connection(sock=sock, limit=splice.CHUNK)

    # -- from the CLI ----------------------------------------------------------------

    def tell(self, command: str, port: int, timeout: float = 10.0) -> None:
        """Send ``add``/``del`` PORT to the running forwarder; LaunchError if refused."""
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as conn:
            conn.settimeout(timeout)
            try:
                conn.connect(str(self.control))
                conn.sendall(f"{command} {port}\n".encode())
                answer = conn.makefile().readline().strip()
            except OSError as exc:
                raise LaunchError(f"the forwarder of {self.netns} does not answer: "
                                  f"{exc}") from exc
        if answer != "ok":
            raise LaunchError(f"forwarding 127.0.0.1:{port} into {self.netns}: {answer}")

    def component(self, owner: str, env: dict[str, str]) -> Component:
        return Component(
            name="forwarder",
            argv=[sys.executable, "-m", "syncer.local.forward", f"--netns={self.netns}",
                  f"--directory={self.control.parent}"],
            log=self.control.parent / "forward.log", owner=owner, die_with_parent=False,
            env=env)

    def wait_ready(self, component: Component, timeout: float = 30.0) -> None:
        def ready() -> bool:
            component.ensure_running()
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as conn:
                return conn.connect_ex(str(self.control)) == 0

        if not wait_for(ready, timeout, interval=0.1):
            raise LaunchError(f"the forwarder did not start; log:\n{component.tail(15)}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="vcsync-forward", description=__doc__.split("\n")[0])
    parser.add_argument("--netns", required=True, help="the host's network namespace")
    parser.add_argument("--directory", required=True, type=Path,
                        help="where the control socket and the ports file are")
    args = parser.parse_args(argv)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(Forwarder(args.netns, args.directory).serve())
    return 0


if __name__ == "__main__":
    sys.exit(main())
