"""README.md's tables of kinds agree with the kinds' declarations.

Why: the kinds declare their direction, key and default once
(:class:`contract.translator.Translator`); the README describes them in
prose tables a contributor edits by hand, so this test names the row that
went stale instead of leaving it to a reader.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from contract import discovery
from contract.resources import Direction
from contract.translator import Translator

README = Path(__file__).resolve().parents[2] / "README.md"
ARROWS = {"down": Direction.TO_HOST, "up": Direction.FROM_HOST}
DEFAULTS = {"on": True, "off": False}


def title(cls: type[Translator]) -> str:
    """How the README's kinds table names a kind: its configuration key, capitalised."""
    key = cls.config_key()
    return key[0].upper() + key[1:]


def kinds_rows() -> list[tuple[str, str, str]]:
    """(names, direction, default) of each row of the "kind | direction | default" table."""
    pattern = re.compile(r"^\| ([A-Z][A-Za-z, ]*) \| (down|up) \| (on|off) \|", re.MULTILINE)
    return pattern.findall(README.read_text())


def reference_rows() -> list[str]:
    """The rows of the configuration reference about ``sync``."""
    return [line for line in README.read_text().splitlines() if line.startswith("| `sync.")]


def test_the_kinds_table_matches_the_declarations() -> None:
    builtins = {(title(cls), cls.direction): cls for cls in discovery.builtins().values()}
    rows = kinds_rows()
    assert rows, "the README's kinds table was not found"
    for names, arrow, default in rows:
        for name in names.split(", "):
            cls = builtins.get((name, ARROWS[arrow]))
            assert cls is not None, f"README row {name} ({arrow}): no such built-in kind"
            assert cls.enabled_by_default is DEFAULTS[default], f"README row {name}: default"


@pytest.mark.parametrize("kind", sorted(discovery.builtins()))
def test_every_kind_is_in_the_configuration_reference(kind: str) -> None:
    cls = discovery.builtins()[kind]
    prefix = f"| `sync.{cls.direction.value}."
    key = re.compile(rf"[.`]{cls.config_key()}[.`]")
    assert [row for row in reference_rows() if row.startswith(prefix) and key.search(row)], (
        f"README's configuration reference has no row for sync.{cls.direction.value}."
        f"{cls.config_key()}")
