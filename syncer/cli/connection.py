"""``vcsync connect|disconnect``: which cluster the user's kubectl talks to.

Connecting merges a context named ``vcsync_NAME_NS_HOSTCONTEXT`` into the
kubeconfig and makes it current, remembering the host context that was
current before; disconnecting switches back to it. ``connect --print`` and
``connect -- CMD`` never touch the kubeconfig.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import tempfile
from pathlib import Path
from typing import Any

import yaml

from syncer.cli import drivers, kubeconfig, output, state
from syncer.cli.errors import CliError
from syncer.cli.state import VClusterRecord


def register(commands: Any) -> None:
    p: argparse.ArgumentParser = commands.add_parser(
        "connect", usage="vcsync connect NAME [options] [-- COMMAND ARGS...]",
        help="use a virtual cluster (switch, print its kubeconfig, run a command)",
        description="Switch to a virtual cluster, print its kubeconfig, or run one command "
                    "against it: vcsync connect dev -- kubectl get pods -A")
    p.add_argument("name")
    p.add_argument("--namespace", "-n")
    p.add_argument("--update-current", default="true", choices=["true", "false"],
                   help="make it the current context (false: write a kubeconfig file instead)")
    p.add_argument("--print", action="store_true", help="print the kubeconfig to stdout")
    p.set_defaults(handler=connect_cmd, command=[])
    d = commands.add_parser("disconnect", help="switch back to the host context")
    d.set_defaults(handler=disconnect_cmd)


def virtual_kubeconfig(record: VClusterRecord) -> kubeconfig.Config:
    """A self-contained kubeconfig for the virtual cluster, its context named ``record.context``."""
    own = drivers.handle(record).kubeconfig()
    cluster, user = own["clusters"][0]["cluster"], own["users"][0]["user"]
    config = kubeconfig.empty()
    kubeconfig.upsert(config, record.context, cluster, user)
    config["current-context"] = record.context
    return config


def switch_to(record: VClusterRecord) -> None:
    config = kubeconfig.load()
    current = kubeconfig.current_context(config)
    before = state.host_context(config, required=False) if current else ""
    if before:
        state.remember_previous_context(before)
    own = virtual_kubeconfig(record)
    kubeconfig.upsert(config, record.context, own["clusters"][0]["cluster"],
                      own["users"][0]["user"])
    config["current-context"] = record.context
    kubeconfig.save(config)
    output.info(f"switched to context {record.context!r}; `vcsync disconnect` goes back "
                f"to {before or 'no context'!r}")


def refresh(record: VClusterRecord) -> None:
    """Rewrite the record's context (if the kubeconfig has it) with its current credentials:
    a restore replaces a virtual cluster's CA and tokens."""
    config = kubeconfig.load()
    if not kubeconfig.has_context(config, record.context):
        return
    own = virtual_kubeconfig(record)
    kubeconfig.upsert(config, record.context, own["clusters"][0]["cluster"],
                      own["users"][0]["user"])
    kubeconfig.save(config)


def drop(record: VClusterRecord) -> None:
    """Remove the record's context; if it was current, go back to its host context."""
    config = kubeconfig.load()
    was_current = kubeconfig.current_context(config) == record.context
    kubeconfig.remove(config, record.context)
    if was_current and kubeconfig.has_context(config, record.host_context):
        config["current-context"] = record.host_context
    kubeconfig.save(config)


def connect_cmd(args: argparse.Namespace) -> int:
    record = state.require(args.name, args.namespace)
    if record.paused:
        raise CliError(f"virtual cluster {record.name!r} is paused; "
                       f"`vcsync resume {record.name}` first")
    if args.command:
        return _run_with(record, args.command)
    if args.print:
        print(yaml.safe_dump(virtual_kubeconfig(record), sort_keys=False), end="")
        return 0
    if args.update_current == "false":
        file = record.directory / "kubeconfig.yaml"
        kubeconfig.save(virtual_kubeconfig(record), file)
        output.info(f"kubeconfig written to {file}; use it with KUBECONFIG={file} kubectl ...")
        return 0
    switch_to(record)
    return 0


def _run_with(record: VClusterRecord, command: list[str]) -> int:
    with tempfile.TemporaryDirectory(prefix="vcsync-connect-") as tmp:
        file = Path(tmp) / "kubeconfig"
        kubeconfig.save(virtual_kubeconfig(record), file)
        try:
            return subprocess.run(command, env={**os.environ, "KUBECONFIG": str(file)},
                                  check=False).returncode
        except OSError as exc:
            raise CliError(f"cannot run {command[0]!r}: {exc}") from exc


def disconnect_cmd(args: argparse.Namespace) -> int:
    config = kubeconfig.load()
    current = kubeconfig.current_context(config)
    record = next((r for r in VClusterRecord.all() if r.context == current), None)
    if record is None:
        raise CliError(f"the current context {current!r} is not a virtual cluster's; "
                       "nothing to disconnect from")
    target = state.previous_context()
    if not target or not kubeconfig.has_context(config, target):
        target = record.host_context
    config["current-context"] = target
    kubeconfig.save(config)
    output.info(f"switched back to context {target!r}")
    return 0
