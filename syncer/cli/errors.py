"""The CLI's one exception: a user-facing failure.

Why a single class: every command failure must reach the user as one clear
sentence and exit code 1 (argparse's usage errors keep exit code 2); the
entry point catches :class:`CliError` and nothing below it prints tracebacks.
"""

from __future__ import annotations


class CliError(Exception):
    """A command failed; ``str(exc)`` is the sentence shown after ``error:``."""
