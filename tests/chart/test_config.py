"""The chart's syncer config: accepted by `vcsync run --config`, says what the values say."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from contract.options import NodeOptions
from syncer import config
from syncer.app import read_config, select_translators
from tests.chart.rendering import (
    VALUE_SETS,
    dig,
    generator,
    render,
    syncer_config,
    values_defaults,
)
from tests.chart.rendering import (
    schema as chart_schema,
)

SECTIONS = ("sync", "policies", "syncer", "plugins")
SYNCER_POLICIES = {"podSecurityStandard", "priorityClasses", "runtimeClasses", "schedulers",
                   "externalNames"}


def rendered_config(assignments: list[str], tmp_path: Path) -> tuple[dict[str, Any], Path]:
    text = syncer_config(render(assignments))
    path = tmp_path / "config.yaml"
    path.write_text(text)
    return yaml.safe_load(text), path


@pytest.mark.parametrize("name", sorted(VALUE_SETS))
def test_rendered_config_is_accepted(name: str, tmp_path: Path) -> None:
    """Parsed by syncer.config (unknown keys are errors there), and every section round-trips."""
    data, path = rendered_config(VALUE_SETS[name], tmp_path)
    assert sorted(data) == sorted(SECTIONS)
    assert set(data["policies"]) == SYNCER_POLICIES  # chart-only policies stay out
    cfg = config.load(path)
    assert config.to_dict(cfg) == data  # nothing dropped, nothing defaulted behind our back
    assert read_config(str(path)) == cfg  # what `vcsync run --config` builds
    assert select_translators(cfg) is not None


@pytest.mark.parametrize(
    ("assignment", "dotted", "value"),
    [
        ("sync.toHost.ingresses.enabled=true", "sync.to_host.ingresses.enabled", True),
        ("sync.toHost.pods.enabled=false", "sync.to_host.pods.enabled", False),
        ("sync.toHost.secrets.all=true", "sync.to_host.secrets.all", True),
        ("sync.fromHost.nodes.selector.all=true", "sync.from_host.nodes.selector.all", True),
        ("sync.fromHost.storageClasses.enabled=true", "sync.from_host.storage_classes.enabled",
         True),
        ("policies.podSecurityStandard=baseline", "policies.pod_security_standard",
         config.PodSecurityStandard.BASELINE),
        ("json:syncer.host.qps=7.5", "syncer.host.qps", 7.5),
        ("policies.priorityClasses.maxValue=1000", "policies.priority_classes.max_value", 1000),
        ("policies.priorityClasses.allowPreemption=true",
         "policies.priority_classes.allow_preemption", True),
        ("json:policies.runtimeClasses.allowed=[\"kata\"]", "policies.runtime_classes.allowed",
         ("kata",)),
        ("json:policies.externalNames.allowed=[\"*.example.com\"]",
         "policies.external_names.allowed", ("*.example.com",)),
        ("sync.toHost.pods.runtimeClassName=gvisor", "sync.to_host.pods.runtime_class_name",
         "gvisor"),
        ("sync.fromHost.runtimeClasses.enabled=true", "sync.from_host.runtime_classes.enabled",
         True),
        ("syncer.workersPerShard=2", "syncer.workers_per_shard", 2),
    ],
)
def test_values_reach_the_config(
    assignment: str, dotted: str, value: object, tmp_path: Path
) -> None:
    _, path = rendered_config([assignment], tmp_path)
    assert reached(config.load(path), dotted) == value
    assert reached(config.SyncerConfig(), dotted) != value, "the assignment must change something"


def reached(node: Any, dotted: str) -> Any:
    """The value at ``dotted`` (attribute names; a kind's section is found by its key)."""
    for attribute in dotted.split("."):
        if isinstance(node, config.Kinds):
            head, *rest = attribute.split("_")
            node = node[head + "".join(word.capitalize() for word in rest)]
        else:
            node = getattr(node, attribute)
    return node


def test_labels_reach_the_config(tmp_path: Path) -> None:
    _, path = rendered_config(VALUE_SETS["real-nodes"], tmp_path)
    selector = config.load(path).sync.from_host.section("nodes", NodeOptions).selector
    assert selector.all is True
    assert dict(selector.labels) == {"type": "kwok"}


def test_replicas_turn_on_leader_election(tmp_path: Path) -> None:
    single, _ = rendered_config(VALUE_SETS["etcd-embedded"], tmp_path)
    assert single["syncer"]["leaderElection"]["enabled"] is False
    _, path = rendered_config(VALUE_SETS["etcd-embedded-ha"], tmp_path)
    assert config.load(path).syncer.leader_election.enabled is True


def test_plugin_sections_pass_through(tmp_path: Path) -> None:
    data, _ = rendered_config(["plugins.widgets.enabled=false", "plugins.widgets.mode=fast"],
                              tmp_path)
    assert data["plugins"] == {"widgets": {"enabled": False, "mode": "fast"}}
    assert config.parse(data).plugins["widgets"]["mode"] == "fast"


def test_values_defaults_are_the_syncer_defaults() -> None:
    """values.yaml and syncer/config.py agree on every default of the syncer's sections."""
    values = values_defaults()
    defaults = config.to_dict(config.SyncerConfig())
    assert values["sync"] == defaults["sync"]
    assert values["syncer"] == defaults["syncer"]
    assert values["plugins"] == defaults["plugins"]
    assert {key: values["policies"][key] for key in SYNCER_POLICIES} == defaults["policies"]


def test_schema_sections_come_from_config_py() -> None:
    """The schema of the syncer's sections is derived from the dataclasses (not restated)."""
    derived = generator().syncer_sections()
    schema = chart_schema()
    assert schema["properties"]["sync"] == derived["sync"]
    assert schema["properties"]["syncer"] == derived["syncer"]
    for key in SYNCER_POLICIES:
        assert schema["properties"]["policies"]["properties"][key] == derived[key], key
    assert dig(schema, "properties.syncer.properties.shards.minimum") == 1
    assert dig(schema, "properties.syncer.properties.host.properties.qps.exclusiveMinimum") == 0
