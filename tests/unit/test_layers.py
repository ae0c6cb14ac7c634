"""The import layers: ``contract`` below, ``syncer`` (the engine) and ``translators``
(the kinds) beside each other on top of it, neither importing the other.

Why a test and not a convention: the contract only stays neutral while nothing
in it reaches up, and a translator that imports the engine (or the engine a
translator) quietly ties them together again. Every ``import`` statement is
read from the source, function-local ones included; discovery names the
``translators`` package as data (``contract.discovery.BUILTIN_PACKAGE``),
which is not an import statement.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
FORBIDDEN = {
    "contract": ("syncer", "translators", "benchmarks", "tests"),
    "translators": ("syncer", "benchmarks", "tests"),
    "syncer": ("translators", "tests"),
}
"""Package -> top-level packages its modules must not import (``vcsync bench`` runs
``benchmarks``, which sit on top of the engine)."""


def imported(path: Path) -> Iterator[tuple[int, str]]:
    """(line, module) of every absolute import statement in ``path`` (a relative one
    cannot leave its top-level package, so it cannot cross a layer)."""
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            yield from ((node.lineno, alias.name) for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            yield node.lineno, node.module


def crossings(layer: str, root: Path = ROOT) -> list[str]:
    found = []
    for path in sorted((root / layer).rglob("*.py")):
        for line, module in imported(path):
            if module.split(".")[0] in FORBIDDEN[layer]:
                found.append(f"{path.relative_to(root)}:{line} imports {module}")
    return found


@pytest.mark.parametrize("layer", sorted(FORBIDDEN))
def test_layers_import_only_downward(layer: str) -> None:
    assert crossings(layer) == []


def test_the_check_sees_a_crossing(tmp_path: Path) -> None:
    """The scan itself must be able to fail: both statement forms, inside a function."""
    (tmp_path / "translators").mkdir()
    (tmp_path / "translators" / "probe.py").write_text(
        "def f() -> None:\n    import syncer.app\n    from syncer import config\n")
    assert crossings("translators", tmp_path) == [
        "translators/probe.py:2 imports syncer.app",
        "translators/probe.py:3 imports syncer",
    ]
