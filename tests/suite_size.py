"""How big the reliability suites run: ``ci`` (default, minutes) or ``full`` (the issue's sizes).

Why one place: every suite reads the same variable the same way, so
``VCSYNC_SUITE_SIZE=full`` switches all of them and a typo fails loudly
instead of silently running the small size.
"""

from __future__ import annotations

import os
from typing import TypeVar

T = TypeVar("T")
ENV = "VCSYNC_SUITE_SIZE"
_SIZES = ("ci", "full")


def size() -> str:
    """The requested size; anything but ``ci`` or ``full`` is an error."""
    value = os.environ.get(ENV, "ci").strip().lower() or "ci"
    if value not in _SIZES:
        raise ValueError(f"{ENV}={value!r}: expected one of {', '.join(_SIZES)}")
    return value


def full() -> bool:
    return size() == "full"


def pick(ci: T, full: T) -> T:
    """``full`` at full size, else ``ci``."""
    return full if size() == "full" else ci
