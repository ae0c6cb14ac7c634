"""The shapes of a kind's configuration section (``sync.<direction>.<key>``).

A kind names its shape once (:attr:`contract.translator.Translator.options`);
``syncer.config`` reads the section into it, ``helm/generate.py`` derives the
chart's schema and values from it. Why frozen dataclasses with a description
per field: the reader checks types from the hints, and the chart documents
every key from the same place, so a new option cannot reach one without the
other.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any


def described(text: str) -> dict[str, Any]:
    """Field metadata: the key's description in the chart's schema and README."""
    return {"description": text}


def _no_labels() -> Mapping[str, str]:
    return MappingProxyType({})


@dataclass(frozen=True)
class Toggle:
    """A kind that can be switched on or off, and nothing else.

    ``enabled`` has no description of its own: the chart uses the kind's summary.
    """

    enabled: bool = False


@dataclass(frozen=True)
class Referenced(Toggle):
    """ConfigMaps/Secrets: by default only those that synced pods reference are copied."""

    all: bool = field(default=False, metadata=described(
        "Sync every object of the kind, referenced or not."))


@dataclass(frozen=True)
class PodOptions(Toggle):
    """``sync.toHost.pods``, with vCluster's two pod defaults the platform may set.

    Each names a *host* class and applies only where the tenant's pod gets no
    other: a pod naming a runtime class must be allowed to
    (``policies.runtimeClasses``), a pod naming a synced PriorityClass gets its copy.
    """

    runtime_class_name: str = field(default="", metadata=described(
        "Host RuntimeClass of every synced pod that names none (empty: the host's default)."))
    priority_class_name: str = field(default="", metadata=described(
        "Host PriorityClass of every synced pod that gets no other (empty: the host's "
        "default)."))


@dataclass(frozen=True)
class LabelSelector:
    """Host objects to show; an empty ``labels`` selects all of them."""

    labels: Mapping[str, str] = field(default_factory=_no_labels, metadata=described(
        "Only objects with these labels (empty: all)."))


@dataclass(frozen=True)
class Selected(Toggle):
    """A cluster-scoped host kind shown to the tenant, filtered by labels."""

    selector: LabelSelector = field(default=LabelSelector(), metadata=described(
        "Which host objects to show."))


@dataclass(frozen=True)
class NodeSelector:
    """Which host nodes appear in the virtual cluster.

    With ``all`` false and no ``labels`` only the nodes that virtual pods run on
    are shown; ``all`` or any label switches to showing real nodes.
    """

    all: bool = field(default=False, metadata=described(
        "Show every host node (default: only nodes that virtual pods run on)."))
    labels: Mapping[str, str] = field(default_factory=_no_labels, metadata=described(
        "Show the host nodes with these labels."))


@dataclass(frozen=True)
class NodeOptions(Toggle):
    """``sync.fromHost.nodes``."""

    selector: NodeSelector = field(default=NodeSelector(), metadata=described(
        "Which host nodes to show."))
