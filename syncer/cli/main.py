"""Entry point of the ``vcsync`` console script."""

from __future__ import annotations

import sys


def main(argv: list[str] | None = None) -> int:
    """Placeholder until the CLI lands."""
    print("vcsync: not implemented yet", file=sys.stderr)
    return 2
