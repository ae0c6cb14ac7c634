"""``vcsync connect|disconnect``: which cluster the user's kubectl talks to.

Connecting merges a context named ``vcsync_NAME_NS_HOSTCONTEXT`` into the
kubeconfig and makes it current, remembering the host context that was
current before; disconnecting switches back to it. ``connect --print`` and
``connect -- CMD`` never touch the kubeconfig.

Where the context points (vCluster's ``connect``):

- a local cluster: its API server's 127.0.0.1 port;
- a Helm-installed one: ``--server URL`` if given (an Ingress, a LoadBalancer,
  a NodePort: remembered for later connects), else (``--print``: only with
  ``--local-port``, else the Service's in-cluster address) a port-forward to its
  Service that vcsync runs in the background (:class:`~syncer.cli.portforward.Proxy`,
  on ``--local-port`` or a free port, kept across reconnects) until
  ``vcsync disconnect`` (or ``delete``/``pause``) stops it; ``connect -- CMD``
  without a running one forwards for the command's length only.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

from syncer.cli import discovery, drivers, kubeconfig, output, portforward, state
from syncer.cli.errors import CliError
from syncer.cli.state import VClusterRecord
from syncer.kube.blocking import BlockingClient

API_PORT = 443
"""The port of the Service in front of a Helm-installed virtual API server."""


def register(commands: Any) -> None:
    p: argparse.ArgumentParser = commands.add_parser(
        "connect", usage="vcsync connect NAME [options] [-- COMMAND ARGS...]",
        help="use a virtual cluster (switch, print its kubeconfig, run a command)",
        description="Switch to a virtual cluster, print its kubeconfig, or run one command "
                    "against it: vcsync connect dev -- kubectl get pods -A")
    p.add_argument("name", help="the virtual cluster (see `vcsync list`)")
    p.add_argument("--namespace", "-n", help="its host namespace, when several share NAME")
    p.add_argument("--update-current", default="true", choices=["true", "false"],
                   help="make it the current context (false: write a kubeconfig file instead)")
    p.add_argument("--print", action="store_true", help="print the kubeconfig to stdout")
    p.add_argument("--output", "-o", choices=["yaml", "json"], default="yaml",
                   help="format of --print (default %(default)s)")
    p.add_argument("--local-port", type=int, metavar="PORT",
                   help="Helm driver: the 127.0.0.1 port of the background port-forward "
                        "(default: the one it had, else a free one)")
    p.add_argument("--server", metavar="URL",
                   help="Helm driver: reach the virtual API server at URL (an Ingress, a "
                        "LoadBalancer or NodePort) instead of through a port-forward")
    p.set_defaults(handler=connect_cmd, command=[])
    d = commands.add_parser(
        "disconnect", help="switch back to the host context; stop the port-forward",
        description="Switch back to the context that was current before `vcsync connect`, "
                    "and stop the background port-forward of that (or NAME's) cluster.")
    d.add_argument("name", nargs="?",
                   help="stop this cluster's port-forward (default: the current context's)")
    d.add_argument("--namespace", "-n", help="NAME's host namespace, when several share NAME")
    d.set_defaults(handler=disconnect_cmd)


# -- where the virtual API server is -------------------------------------------------


def proxy(record: VClusterRecord) -> portforward.Proxy:
    return portforward.Proxy(record.directory)


def server(record: VClusterRecord, local_port: int | None = None, url: str | None = None,
           start: bool = True) -> str | None:
    """The server URL of a Helm-installed cluster's context: ``url`` (remembered), the
    remembered one, or the background port-forward's (started if ``start`` and needed).
    None for a local cluster (its kubeconfig is right as it is)."""
    if record.driver != "helm":
        return None
    if url:
        proxy(record).stop()
        if record.server != url:
            record.server = url
            record.save()
        return url
    if record.server and local_port is None:
        return record.server
    if record.server:  # --local-port: back to a port-forward
        record.server = ""
        record.save()
    forwarder = proxy(record)
    port = forwarder.port()
    if port is not None and local_port in (None, port):
        return _local(port)
    if not start:
        return _local(forwarder.last_port() or 0) if forwarder.last_port() else None
    own = drivers.handle(record).kubeconfig()
    output.info(f"starting a port-forward to service {record.name} in {record.namespace} "
                "(stopped by `vcsync disconnect`)")
    port = forwarder.start(
        record.directory / "host.kubeconfig", record.namespace, f"svc/{record.name}",
        API_PORT, local_port, lambda p: _answers(own, _local(p)))
    output.info(f"port-forward on 127.0.0.1:{port} is running")
    return _local(port)


def _local(port: int) -> str:
    return f"https://127.0.0.1:{port}"


def _answers(config: kubeconfig.Config, url: str) -> bool:
    """The virtual API server answers (any HTTP status) at ``url``."""
    moved = _with_server(config, url)
    status, _ = BlockingClient.from_kubeconfig(moved, timeout=5.0).request("GET", "/readyz")
    return status != 0


def _with_server(config: kubeconfig.Config, url: str | None) -> kubeconfig.Config:
    if not url:
        return config
    moved: kubeconfig.Config = yaml.safe_load(yaml.safe_dump(config))
    for cluster in moved["clusters"]:
        cluster["cluster"]["server"] = url
    return moved


def virtual_kubeconfig(record: VClusterRecord, url: str | None = None) -> kubeconfig.Config:
    """A self-contained kubeconfig for the virtual cluster, its context named ``record.context``
    (its server ``url`` when given)."""
    own = drivers.handle(record).kubeconfig()
    cluster, user = dict(own["clusters"][0]["cluster"]), own["users"][0]["user"]
    if url:
        cluster["server"] = url
    config = kubeconfig.empty()
    kubeconfig.upsert(config, record.context, cluster, user)
    config["current-context"] = record.context
    return config


# -- switching ------------------------------------------------------------------------


def switch_to(record: VClusterRecord, local_port: int | None = None,
              url: str | None = None) -> None:
    own = virtual_kubeconfig(record, server(record, local_port, url))
    with kubeconfig.edit() as config:
        current = kubeconfig.current_context(config)
        before = state.host_context(config, required=False) if current else ""
        if before:
            state.remember_previous_context(before)
        kubeconfig.upsert(config, record.context, own["clusters"][0]["cluster"],
                          own["users"][0]["user"])
        config["current-context"] = record.context
    output.info(f"switched to context {record.context!r}; `vcsync disconnect` goes back "
                f"to {before or 'no context'!r}")


def refresh(record: VClusterRecord) -> None:
    """Rewrite the record's context (if the kubeconfig has it) with its current credentials:
    a restore replaces a virtual cluster's CA and tokens."""
    if not kubeconfig.has_context(kubeconfig.load(), record.context):
        return
    own = virtual_kubeconfig(record, server(record, start=False))
    with kubeconfig.edit() as config:
        kubeconfig.upsert(config, record.context, own["clusters"][0]["cluster"],
                          own["users"][0]["user"])


def drop(record: VClusterRecord) -> None:
    """Remove the record's context (if it was current, go back to its host context) and
    stop its port-forward."""
    proxy(record).stop()
    with kubeconfig.edit() as config:
        was_current = config.get("current-context") == record.context
        kubeconfig.remove(config, record.context)
        if was_current and kubeconfig.has_context(config, record.host_context):
            config["current-context"] = record.host_context


# -- commands -------------------------------------------------------------------------


def connect_cmd(args: argparse.Namespace) -> int:
    record = state.find(args.name, args.namespace) or discovery.adopt(args.name, args.namespace)
    if record.paused:
        raise CliError(f"virtual cluster {record.name!r} is paused; "
                       f"`vcsync resume {record.name}` first")
    if record.driver != "helm" and (args.local_port or args.server):
        raise CliError("--local-port and --server are for Helm-installed virtual clusters; "
                       f"{record.name!r} runs on this machine (driver {record.driver})")
    if args.command:
        return _run_with(record, args.command, args.server)
    if args.print:
        config = virtual_kubeconfig(record, _printed_server(record, args))
        if args.output == "json":
            output.json(config)
        else:
            print(yaml.safe_dump(config, sort_keys=False), end="")
        return 0
    if args.update_current == "false":
        file = record.directory / "kubeconfig.yaml"
        kubeconfig.save(virtual_kubeconfig(
            record, server(record, args.local_port, args.server)), file)
        output.info(f"kubeconfig written to {file}; use it with KUBECONFIG={file} kubectl ...")
        return 0
    switch_to(record, args.local_port, args.server)
    return 0


def _printed_server(record: VClusterRecord, args: argparse.Namespace) -> str | None:
    """``--print`` starts no port-forward unless ``--local-port`` asks for one: without it,
    the printed kubeconfig points at ``--server``, the remembered server, the running
    port-forward, else the Service's in-cluster address (for use inside the host)."""
    if args.server or args.local_port:
        return server(record, args.local_port, args.server)
    running = proxy(record).port()
    return record.server or (_local(running) if running else None)


@contextlib.contextmanager
def _reachable(record: VClusterRecord, url: str | None) -> Iterator[str | None]:
    """The server URL for one command: ``url``, the remembered one, the running
    port-forward's, or (Helm driver) one forwarding for the block only."""
    if record.driver != "helm":
        yield None
        return
    known = url or record.server or None
    running = proxy(record).port()
    if known or running:
        yield known or _local(running or 0)
        return
    with portforward.forward(record.directory / "host.kubeconfig", record.namespace, "",
                             API_PORT, target=f"svc/{record.name}") as port:
        yield _local(port)


def _run_with(record: VClusterRecord, command: list[str], url: str | None) -> int:
    with tempfile.TemporaryDirectory(prefix="vcsync-connect-") as tmp, \
            _reachable(record, url) as reached:
        file = Path(tmp) / "kubeconfig"
        kubeconfig.save(virtual_kubeconfig(record, reached), file)
        try:
            return subprocess.run(command, env={**os.environ, "KUBECONFIG": str(file)},
                                  check=False).returncode
        except OSError as exc:
            raise CliError(f"cannot run {command[0]!r}: {exc}") from exc


def disconnect_cmd(args: argparse.Namespace) -> int:
    if args.name:
        named = state.require(args.name, args.namespace)
        if proxy(named).port() is not None:
            proxy(named).stop()
            output.info(f"port-forward of {named.name!r} stopped")
    switched = False
    with kubeconfig.edit() as config:
        current = config.get("current-context") or None
        record = next((r for r in VClusterRecord.all() if r.context == current), None)
        if record is not None and (not args.name or record.name == args.name):
            target = state.previous_context()
            if not target or not kubeconfig.has_context(config, target):
                target = record.host_context
            config["current-context"] = target
            switched = True
    if record is None and not args.name:
        raise CliError(f"the current context {current!r} is not a virtual cluster's; "
                       "nothing to disconnect from")
    if switched and record is not None:
        if proxy(record).port() is not None:
            proxy(record).stop()
            output.info(f"port-forward of {record.name!r} stopped")
        output.info(f"switched back to context {target!r}")
    return 0
