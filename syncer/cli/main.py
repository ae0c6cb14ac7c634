"""Entry point of the ``vcsync`` console script.

Why argparse: the CLI surface is small, and its errors must be one clear line
(argparse's usage errors exit 2, like kubectl's).
"""

from __future__ import annotations

import argparse
import sys

from syncer.cli import bench as bench_cmd
from syncer.cli import connection, hosts, snapshots, vclusters
from syncer.cli import run as run_cmd
from syncer.cli import translate as translate_cmd
from syncer.cli.errors import CliError


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="vcsync", description="Virtual Kubernetes clusters inside a host namespace."
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    run_cmd.register(commands)
    translate_cmd.register(commands)
    hosts.register(commands)
    vclusters.register(commands)
    connection.register(commands)
    snapshots.register(commands)
    bench_cmd.register(commands)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    # `vcsync connect NAME [options] -- COMMAND ...`: everything after `--` is the
    # command, whatever options it has (argparse would try to parse them).
    command: list[str] = []
    if argv[:1] == ["connect"] and "--" in argv:
        cut = argv.index("--")
        argv, command = argv[:cut], argv[cut + 1:]
    args = build_parser().parse_args(argv)
    if command:
        args.command = command
    try:
        code: int = args.handler(args)
    except CliError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    return code


if __name__ == "__main__":
    sys.exit(main())
