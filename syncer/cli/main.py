"""Entry point of the ``vcsync`` console script.

Why argparse: the CLI surface is small, and its errors must be one clear line
(argparse's usage errors exit 2, like kubectl's).
"""

from __future__ import annotations

import argparse
import sys

from syncer.cli import run as run_cmd
from syncer.cli import translate as translate_cmd


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="vcsync", description="Virtual Kubernetes clusters inside a host namespace."
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    run_cmd.register(commands)
    translate_cmd.register(commands)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    code: int = args.handler(args)
    return code


if __name__ == "__main__":
    sys.exit(main())
