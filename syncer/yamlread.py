"""The two ways vcsync reads YAML, from one table of implicit types.

PyYAML follows YAML 1.1: ``2024-01-01`` becomes a date and ``yes``/``on``
booleans. Neither loader keeps dates (Kubernetes keeps them strings, and a date
object cannot be written back as JSON):

- :class:`ManifestLoader` reads tenant manifests (``vcsync translate``) as
  close to the API server's reading as PyYAML gets;
- :class:`ConfigLoader` reads vcsync's own configuration strictly: only
  ``true``/``false`` are booleans (YAML 1.2), so ``enabled: yes`` is reported
  rather than guessed and a label value ``on`` stays the string it looks like.
"""

from __future__ import annotations

import re
from typing import Any

import yaml

_BOOL = "tag:yaml.org,2002:bool"
_TIMESTAMP = "tag:yaml.org,2002:timestamp"


def _resolvers(dropped: frozenset[str]) -> dict[Any, Any]:
    return {
        first: [(tag, regexp) for tag, regexp in entries if tag not in dropped]
        for first, entries in yaml.SafeLoader.yaml_implicit_resolvers.items()
    }


def _core_schema_resolvers() -> dict[Any, Any]:
    resolvers = _resolvers(frozenset({_BOOL, _TIMESTAMP}))
    boolean = re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$")
    for first in "tTfF":
        resolvers.setdefault(first, []).append((_BOOL, boolean))
    return resolvers


class ManifestLoader(yaml.SafeLoader):
    """``yaml.SafeLoader`` without timestamps."""

    yaml_implicit_resolvers = _resolvers(frozenset({_TIMESTAMP}))


class ConfigLoader(yaml.SafeLoader):
    """``yaml.SafeLoader`` with YAML 1.2 booleans and no timestamps."""

    yaml_implicit_resolvers = _core_schema_resolvers()


def position(err: yaml.YAMLError) -> str | None:
    """``line L, column C: problem`` of a parse error, when PyYAML knows where it is."""
    if isinstance(err, yaml.MarkedYAMLError) and err.problem_mark is not None:
        mark = err.problem_mark
        return f"line {mark.line + 1}, column {mark.column + 1}: {err.problem}"
    return None
