"""values.yaml, values.schema.json and the README table agree; the generated files are current."""

from __future__ import annotations

import subprocess
import sys
from typing import Any

from tests.chart.rendering import CHART, ROOT, generator, schema, values_defaults


def leaves(tree: Any, node: dict[str, Any], path: str = "") -> dict[str, Any]:
    """Dotted path -> value for values.yaml, walked along the schema (its leaves are ours)."""
    properties = node.get("properties")
    if not properties:
        return {path: tree}
    assert isinstance(tree, dict), f"{path}: expected a mapping"
    assert set(tree) <= set(properties), f"{path}: not in the schema: {set(tree) - set(properties)}"
    return {k: v for key, sub in tree.items()
            for k, v in leaves(sub, properties[key], f"{path}.{key}" if path else key).items()}


def schema_leaves(node: dict[str, Any], path: str = "") -> dict[str, dict[str, Any]]:
    properties = node.get("properties")
    if not properties:
        return {path: node}
    return {k: v for key, sub in properties.items()
            for k, v in schema_leaves(sub, f"{path}.{key}" if path else key).items()}


def test_generated_files_are_current() -> None:
    """values.schema.json and README.md's table are what helm/generate.py makes now."""
    assert generator().main(["--check"]) == 0, "run: python helm/generate.py"


def test_every_value_is_in_the_schema_with_its_default() -> None:
    values = leaves(values_defaults(), schema())
    described = schema_leaves(schema())
    assert sorted(values) == sorted(described)
    for path, value in values.items():
        assert described[path]["default"] == value, path


def test_every_key_is_described_and_closed() -> None:
    def walk(node: dict[str, Any], path: str) -> None:
        assert node.get("description"), f"{path}: no description"
        if "properties" in node:
            assert node.get("additionalProperties") is False, f"{path}: open to typos"
            for key, sub in node["properties"].items():
                walk(sub, f"{path}.{key}" if path else key)

    for key, sub in schema()["properties"].items():
        walk(sub, key)
    assert schema()["additionalProperties"] is False


def test_readme_table_lists_every_key() -> None:
    readme = (CHART / "README.md").read_text()
    for path in schema_leaves(schema()):
        assert f"| `{path}` |" in readme, path


def test_chart_python_is_typed() -> None:
    """helm/generate.py and the scripts the chart mounts pass mypy --strict (the project's
    mypy configuration covers the packages, not helm/)."""
    files = [ROOT / "helm" / "generate.py", *sorted((CHART / "files").glob("*.py"))]
    proc = subprocess.run([sys.executable, "-m", "mypy", "--strict", *map(str, files)],
                          cwd=ROOT, capture_output=True, text=True, timeout=300, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
