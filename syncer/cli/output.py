"""What the CLI prints: step progress with elapsed time, and kubectl-style tables.

Why progress goes to stderr: stdout carries only results (tables, JSON,
kubeconfigs, translated objects) so commands compose in shell pipelines.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import orjson


@contextmanager
def step(what: str) -> Iterator[None]:
    """Print ``what``, run the block, then print how long it took (or that it failed)."""
    print(f"  {what} ...", file=sys.stderr, flush=True)
    start = time.monotonic()
    try:
        yield
    except BaseException:
        print(f"  {what}: failed after {time.monotonic() - start:.1f}s", file=sys.stderr,
              flush=True)
        raise
    print(f"  {what}: done in {time.monotonic() - start:.1f}s", file=sys.stderr, flush=True)


def info(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """Left-aligned columns separated by three spaces, like ``kubectl get``."""
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    lines = ["   ".join(str(c).ljust(w) for c, w in zip(r, widths, strict=True)).rstrip()
             for r in [header, *rows]]
    return "\n".join(lines)


def json(value: Any) -> None:
    """A machine-readable result on stdout (``-o json`` of every command)."""
    print(orjson.dumps(value, option=orjson.OPT_INDENT_2).decode())
