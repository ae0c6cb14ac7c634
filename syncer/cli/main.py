"""Entry point of the ``vcsync`` console script.

Why argparse: the CLI surface is small, and its errors must be one clear line
(argparse's usage errors exit 2, like kubectl's).

``--kubeconfig`` and ``--context`` are kubectl's global flags: accepted before
and after the command, they choose the kubeconfig file and the host context
for this command only (:func:`syncer.cli.kubeconfig.configure`).
"""

from __future__ import annotations

import argparse
import sys

from syncer.cli import bench as bench_cmd
from syncer.cli import completion, connection, hosts, kubeconfig, snapshots, vclusters
from syncer.cli import run as run_cmd
from syncer.cli import translate as translate_cmd
from syncer.cli.errors import CliError
from syncer.kube.blocking import BlockingError


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="vcsync", description="Virtual Kubernetes clusters inside a host namespace."
    )
    parser.add_argument("--version", action="version",
                        version=f"%(prog)s {completion.version()}")
    _global_flags(parser, None)
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    run_cmd.register(commands)
    translate_cmd.register(commands)
    hosts.register(commands)
    vclusters.register(commands)
    connection.register(commands)
    snapshots.register(commands)
    bench_cmd.register(commands)
    completion.register(commands, parser)
    for sub in commands.choices.values():
        if sub.prog.split()[-1] != "run":  # the daemon takes its kubeconfigs by other flags
            _global_flags(sub, argparse.SUPPRESS)
    return parser


def _global_flags(parser: argparse.ArgumentParser, default: str | None) -> None:
    """kubectl's flags; on a command their default is SUPPRESS so that a value given
    before the command is not overwritten by the command's parser."""
    parser.add_argument("--kubeconfig", metavar="FILE", default=default,
                        help="the kubeconfig file to use (default: $KUBECONFIG, merged, "
                             "else ~/.kube/config)")
    parser.add_argument("--context", metavar="NAME", default=default,
                        help="the kubeconfig context of the host cluster (default: the "
                             "current one)")


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
    kubeconfig.configure(args.kubeconfig, args.context)
    try:
        code: int = args.handler(args)
    except (CliError, BlockingError) as exc:  # BlockingError: e.g. an exec plugin that failed
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    return code


if __name__ == "__main__":
    sys.exit(main())
