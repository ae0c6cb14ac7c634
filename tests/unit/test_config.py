"""Unit tests of :mod:`syncer.config`: defaults, round trips, errors, ``--set``.

The defaults are restated here as YAML, copied from the design table, so a
changed default in the module fails a test instead of slipping through.
"""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from contract.options import NodeOptions, PodOptions, Referenced, Selected
from syncer.config import (
    ConfigError,
    Kinds,
    PodSecurityStandard,
    SyncerConfig,
    apply_set,
    load,
    parse,
    to_dict,
)


def enabled(kinds: Kinds) -> set[str]:
    """The keys of the kinds switched on in one direction."""
    return {key for key, section in kinds.items() if section.enabled}


def nodes(cfg: SyncerConfig) -> NodeOptions:
    return cfg.sync.from_host.section("nodes", NodeOptions)


def shown(cfg: SyncerConfig, key: str) -> Selected:
    return cfg.sync.from_host.section(key, Selected)


DEFAULTS_YAML = """
sync:
  toHost:
    pods:                    {enabled: true, runtimeClassName: "", priorityClassName: ""}
    services:                {enabled: true}
    endpoints:               {enabled: true}
    persistentVolumeClaims:  {enabled: true}
    configMaps:              {enabled: true, all: false}
    secrets:                 {enabled: true, all: false}
    ingresses:               {enabled: false}
    networkPolicies:         {enabled: false}
    podDisruptionBudgets:    {enabled: false}
    priorityClasses:         {enabled: false}
  fromHost:
    nodes:          {enabled: true, selector: {all: false, labels: {}}}
    events:         {enabled: true}
    storageClasses: {enabled: false, selector: {labels: {}}}
    ingressClasses: {enabled: false, selector: {labels: {}}}
    runtimeClasses: {enabled: false, selector: {labels: {}}}
    priorityClasses: {enabled: false, selector: {labels: {}}}
policies:
  podSecurityStandard: privileged
  priorityClasses: {maxValue: 0, allowPreemption: false}
  runtimeClasses: {allowed: []}
  schedulers: {allowed: []}
  externalNames: {allowed: []}
syncer:
  host:    {qps: 50, burst: 100}
  virtual: {qps: 300, burst: 600}
  shards: 8
  workersPerShard: 4
  leaderElection: {enabled: false, leaseDuration: 15, renewDeadline: 10, retryPeriod: 2}
plugins: {}
"""

FULL_YAML = """
sync:
  toHost:
    pods: {enabled: true, runtimeClassName: gvisor, priorityClassName: tenant-batch}
    services: {enabled: false}
    endpoints: {enabled: false}
    persistentVolumeClaims: {enabled: false}
    configMaps: {enabled: true, all: true}
    secrets: {enabled: false, all: true}
    ingresses: {enabled: true}
    networkPolicies: {enabled: true}
    priorityClasses: {enabled: true}
  fromHost:
    nodes: {enabled: true, selector: {all: true, labels: {kubernetes.io/os: linux}}}
    events: {enabled: false}
    storageClasses: {enabled: true, selector: {labels: {tier: fast, since: 2024-01-01}}}
    ingressClasses: {enabled: true, selector: {labels: {public: "on"}}}
    runtimeClasses: {enabled: true, selector: {labels: {sandbox: "yes"}}}
policies:
  podSecurityStandard: restricted
  priorityClasses: {maxValue: 1000, allowPreemption: true}
  runtimeClasses: {allowed: [kata, gvisor]}
  schedulers: {allowed: [batch-scheduler]}
  externalNames: {allowed: ["*.db.example.com", "shared.platform.svc.cluster.local"]}
  resourceQuota: {enabled: true, quota: {requests.cpu: 10}}
  limitRange: {enabled: false}
  networkPolicy: {}
syncer:
  host: {qps: 12.5, burst: 20}
  virtual: {qps: 1, burst: 1}
  shards: 2
  workersPerShard: 1
  leaderElection: {enabled: true, leaseDuration: 1.5, renewDeadline: 1, retryPeriod: 0.25}
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "config.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def error_of(data: Any) -> str:
    with pytest.raises(ConfigError) as caught:
        parse(data)
    return str(caught.value)


def nested(path: str, value: object) -> dict[str, Any]:
    """``nested("a.b", 1) == {"a": {"b": 1}}``."""
    *parents, last = path.split(".")
    tree: dict[str, Any] = {last: value}
    for key in reversed(parents):
        tree = {key: tree}
    return tree


# --- defaults and round trips ---


def test_defaults_equal_the_design_table() -> None:
    table = yaml.safe_load(DEFAULTS_YAML)
    assert to_dict(SyncerConfig()) == table
    assert parse(None) == parse({}) == load(None) == parse(table) == SyncerConfig()


def test_default_attributes_are_typed_and_snake_case() -> None:
    cfg = SyncerConfig()
    assert cfg.sync.to_host["pods"].enabled is True
    assert cfg.sync.to_host.section("configMaps", Referenced).all is False
    assert nodes(cfg).selector.labels == {}
    assert cfg.policies.pod_security_standard is PodSecurityStandard.PRIVILEGED
    assert (cfg.syncer.host.qps, cfg.syncer.virtual.burst) == (50, 600)
    assert cfg.syncer.leader_election.renew_deadline == 10


def test_config_is_frozen() -> None:
    cfg = SyncerConfig()
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.syncer.shards = 3  # type: ignore[misc]
    with pytest.raises(TypeError):
        nodes(cfg).selector.labels["a"] = "b"  # type: ignore[index]


def test_full_file_round_trips(tmp_path: Path) -> None:
    cfg = load(write(tmp_path, FULL_YAML))
    assert parse(to_dict(cfg)) == cfg
    assert parse(yaml.safe_load(yaml.safe_dump(to_dict(cfg)))) == cfg
    assert nodes(cfg).selector.labels == {"kubernetes.io/os": "linux"}
    assert shown(cfg, "storageClasses").selector.labels["since"] == "2024-01-01"
    assert shown(cfg, "ingressClasses").selector.labels == {"public": "on"}
    assert cfg.policies.pod_security_standard is PodSecurityStandard.RESTRICTED
    assert cfg.syncer.leader_election.retry_period == 0.25
    assert cfg.sync.to_host.section("pods", PodOptions).runtime_class_name == "gvisor"
    assert shown(cfg, "runtimeClasses").selector.labels == {"sandbox": "yes"}
    assert cfg.policies.runtime_classes.allowed == ("kata", "gvisor")
    assert cfg.policies.priority_classes.max_value == 1000
    assert cfg.policies.external_names.allowed[0] == "*.db.example.com"


@pytest.mark.parametrize(("data", "message"), [
    ({"policies": {"runtimeClasses": {"allowed": "kata"}}},
     "policies.runtimeClasses.allowed: expected a list of strings, got 'kata'"),
    ({"policies": {"schedulers": {"allowed": ["ok", 3]}}},
     "policies.schedulers.allowed[1]: expected a non-empty string, got 3"),
    ({"policies": {"externalNames": {"allowed": [""]}}},
     "policies.externalNames.allowed[0]: expected a non-empty string, got ''"),
    ({"sync": {"toHost": {"pods": {"runtimeClassName": True}}}},
     "sync.toHost.pods.runtimeClassName: expected a string, got True"),
    ({"policies": {"priorityClasses": {"maxValue": 1_000_000_001}}},
     "policies.priorityClasses.maxValue: must be <= 1e+09, got 1000000001"),
    ({"sync": {"toHost": {"priorityClasses": {"enabled": True}},
               "fromHost": {"priorityClasses": {"enabled": True}}}},
     "sync.fromHost.priorityClasses.enabled: cannot be true together with "
     "sync.toHost.priorityClasses.enabled"),
])
def test_host_choice_policies_are_checked(data: dict[str, Any], message: str) -> None:
    assert error_of(data) == message


def test_lists_accept_null_and_keep_their_order() -> None:
    """``allowed: null`` (a commented-out list) is empty; a list is kept in order."""
    assert parse({"policies": {"schedulers": {"allowed": None}}}) == SyncerConfig()
    cfg = parse({"policies": {"runtimeClasses": {"allowed": ["b", "a"]}}})
    assert to_dict(cfg)["policies"]["runtimeClasses"] == {"allowed": ["b", "a"]}


def test_chart_only_keys_are_accepted_and_dropped(tmp_path: Path) -> None:
    cfg = load(write(tmp_path, FULL_YAML))
    assert set(to_dict(cfg)["policies"]) == {
        "podSecurityStandard", "priorityClasses", "runtimeClasses", "schedulers", "externalNames"}
    assert parse({"policies": {"resourceQuota": None, "limitRange": {"x": [1]}}}) == SyncerConfig()


def test_partial_sections_keep_their_own_defaults() -> None:
    cfg = parse({"sync": {"toHost": {"ingresses": {}}}, "syncer": {"virtual": {"qps": 5}}})
    assert cfg.sync.to_host["ingresses"].enabled is False
    assert (cfg.syncer.virtual.qps, cfg.syncer.virtual.burst) == (5, 600)
    assert parse({"sync": None, "syncer": {"host": None}}) == SyncerConfig()


def test_empty_file_is_defaults(tmp_path: Path) -> None:
    assert load(write(tmp_path, "# nothing set\n")) == SyncerConfig()
    assert load(str(write(tmp_path, ""))) == SyncerConfig()


def test_enabled_kinds() -> None:
    cfg = SyncerConfig()
    assert enabled(cfg.sync.to_host) == {
        "pods",
        "services",
        "endpoints",
        "persistentVolumeClaims",
        "configMaps",
        "secrets",
    }
    assert enabled(cfg.sync.from_host) == {"nodes", "events"}
    cfg = parse({"sync": {"toHost": {"pods": {"enabled": False}, "ingresses": {"enabled": True}}}})
    assert "pods" not in enabled(cfg.sync.to_host)
    assert "ingresses" in enabled(cfg.sync.to_host)


# --- errors name the dotted path ---


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (
            nested("sync.toHost.pods.enabld", True),
            "sync.toHost.pods.enabld: unknown key; allowed: enabled",
        ),
        ({"sinc": {}}, "sinc: unknown key; allowed: sync, policies, syncer"),
        (
            nested("policies.podSecurityStandard", "strict"),
            "policies.podSecurityStandard: 'strict' is not one of privileged, baseline, restricted",
        ),
        (nested("syncer.shards", "eight"), "syncer.shards: expected an integer, got 'eight'"),
        (nested("syncer.shards", True), "syncer.shards: expected an integer, got True"),
        (nested("syncer.shards", 2.0), "syncer.shards: expected an integer, got 2.0"),
        (
            nested("sync.toHost.pods.enabled", 1),
            "sync.toHost.pods.enabled: expected true or false, got 1",
        ),
        (
            nested("sync.toHost.pods.enabled", "yes"),
            "sync.toHost.pods.enabled: expected true or false",
        ),
        (
            nested("sync.toHost.pods.enabled", None),
            "sync.toHost.pods.enabled: expected true or false, got null",
        ),
        (nested("syncer.host.qps", True), "syncer.host.qps: expected a finite number, got True"),
        (nested("syncer.host.qps", float("inf")), "syncer.host.qps: expected a finite number"),
        (nested("syncer.host.qps", 0), "syncer.host.qps: must be > 0"),
        (nested("syncer.virtual.burst", 0), "syncer.virtual.burst: must be >= 1"),
        (nested("syncer.shards", 0), "syncer.shards: must be >= 1"),
        (nested("syncer.workersPerShard", -1), "syncer.workersPerShard: must be >= 1"),
        (
            nested("syncer.leaderElection.retryPeriod", 0),
            "syncer.leaderElection.retryPeriod: must be > 0",
        ),
        (
            nested("syncer.leaderElection.renewDeadline", 15),
            "syncer.leaderElection.leaseDuration: must be > renewDeadline (15)",
        ),
        (
            nested("syncer.leaderElection.retryPeriod", 10),
            "syncer.leaderElection.renewDeadline: must be > retryPeriod (10)",
        ),
        (nested("sync.toHost", [1]), "sync.toHost: expected a mapping, got a list"),
        (nested("sync.toHost.pods", True), "sync.toHost.pods: expected a mapping, got True"),
        (nested("policies.resourceQuota", "on"), "policies.resourceQuota: expected a mapping"),
        (
            nested("sync.fromHost.nodes.selector.labels", {"tier": 1}),
            "sync.fromHost.nodes.selector.labels.tier: expected a string, got 1",
        ),
        (
            nested("sync.fromHost.storageClasses.selector.labels", {1: "a"}),
            "sync.fromHost.storageClasses.selector.labels: label key 1 is not a string",
        ),
        (nested("sync.fromHost.ingressClasses.selector.labels", "a=b"), "expected a mapping"),
        ([1, 2], "top level: expected a mapping, got a list"),
    ],
)
def test_errors_name_the_dotted_path(data: Any, message: str) -> None:
    assert message in error_of(data)


def test_config_error_is_a_value_error_with_path_and_problem() -> None:
    with pytest.raises(ValueError, match=r"syncer\.shards") as caught:
        parse(nested("syncer.shards", 0))
    assert isinstance(caught.value, ConfigError)
    assert (caught.value.path, caught.value.problem) == ("syncer.shards", "must be >= 1, got 0")


def test_yaml_one_point_one_booleans_are_strings(tmp_path: Path) -> None:
    with pytest.raises(
        ConfigError, match=r"sync.toHost.pods.enabled: expected true or false, got 'on'"
    ):
        load(write(tmp_path, "sync: {toHost: {pods: {enabled: on}}}\n"))
    assert enabled(load(write(tmp_path, "sync: {toHost: {pods: {enabled: False}}}\n")).sync.to_host)


def test_yaml_syntax_error_names_file_and_line(tmp_path: Path) -> None:
    path = write(tmp_path, "sync:\n  toHost:\n    pods: {enabled: true\n  fromHost: {}\n")
    with pytest.raises(ConfigError) as caught:
        load(path)
    assert str(caught.value).startswith(f"{path}: invalid YAML at line 4")


def test_file_that_is_not_a_mapping(tmp_path: Path) -> None:
    path = write(tmp_path, "- sync\n- policies\n")
    with pytest.raises(
        ConfigError, match="expected a mapping at the top level, got a list"
    ) as caught:
        load(path)
    assert str(path) in str(caught.value)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read"):
        load(tmp_path / "absent.yaml")


def test_direct_construction_is_checked_too() -> None:
    with pytest.raises(ConfigError, match=r"^shards: must be >= 1"):
        dataclasses.replace(SyncerConfig().syncer, shards=0)


# --- --set ---


def test_set_creates_intermediate_mappings_and_parses_scalars() -> None:
    data = apply_set({}, "sync.toHost.ingresses.enabled=true,syncer.host.qps=25")
    data = apply_set(data, "syncer.shards=3")
    data = apply_set(data, "policies.podSecurityStandard=baseline")
    assert data == {
        "sync": {"toHost": {"ingresses": {"enabled": True}}},
        "syncer": {"host": {"qps": 25}, "shards": 3},
        "policies": {"podSecurityStandard": "baseline"},
    }
    cfg = parse(data)
    assert "ingresses" in enabled(cfg.sync.to_host)
    assert (cfg.syncer.host.qps, cfg.syncer.host.burst, cfg.syncer.shards) == (25, 100, 3)


def test_set_overrides_a_file_without_touching_its_input(tmp_path: Path) -> None:
    original = to_dict(load(write(tmp_path, FULL_YAML)))
    data = apply_set(original, "sync.fromHost.nodes.selector.all=false")
    assert original["sync"]["fromHost"]["nodes"]["selector"]["all"] is True
    cfg = parse(data)
    assert nodes(cfg).selector.all is False
    assert nodes(cfg).selector.labels == {"kubernetes.io/os": "linux"}


def test_set_escaped_dots_empty_values_and_null() -> None:
    data = apply_set(None, r"sync.fromHost.nodes.selector.labels.node-role\.kubernetes\.io/edge=")
    assert nodes(parse(data)).selector.labels == {"node-role.kubernetes.io/edge": ""}
    assert apply_set({"syncer": {"shards": 3}}, "syncer.shards=null") == {"syncer": {}}
    assert apply_set({}, "a=x=y") == {"a": "x=y"}
    assert apply_set({}, "a=[1") == {"a": "[1"}
    assert apply_set({}, "a={b: c}") == {"a": ["b: c"]}, "a Helm list"


def test_set_replaces_a_scalar_on_the_way() -> None:
    data = apply_set({"sync": {"toHost": {"pods": True}}}, "sync.toHost.pods.enabled=false")
    assert parse(data).sync.to_host["pods"].enabled is False


@pytest.mark.parametrize(
    ("assignment", "message"),
    [
        ("syncer.shards=eight", "syncer.shards: expected an integer, got 'eight'"),
        ("syncer.shards=1.5", "syncer.shards: expected an integer, got '1.5'"),
        (
            "sync.toHost.pods.enabled=yes",
            "sync.toHost.pods.enabled: expected true or false, got 'yes'",
        ),
        ("syncer.host.burst=true", "syncer.host.burst: expected an integer, got True"),
        (
            "sync.toHost.pods.enabled.really=true",
            "sync.toHost.pods.enabled: expected true or false",
        ),
        ("sync.toHost.pod.enabled=true", "sync.toHost.pod: unknown key"),
    ],
)
def test_set_type_errors_are_caught_on_parse(assignment: str, message: str) -> None:
    assert message in error_of(apply_set({}, assignment))


@pytest.mark.parametrize(
    ("assignment", "message"), [
        ("syncer.shards", "key 'shards' has no value"),
        ("syncer..shards=1", "key map 'syncer' has no value"),
        ("syncer.shards.=1", "key map 'shards' has no value"),
        ("a=1,,b=2", "key '' has no value (cannot end with ,)"),
    ])
def test_set_rejects_malformed_assignments(assignment: str, message: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(message)):
        apply_set({}, assignment)


def test_set_with_no_key_changes_nothing_as_in_helm() -> None:
    assert apply_set({"a": 1}, "=1") == {"a": 1}


# --- unknown keys anywhere ---

_CHART_ONLY = {"resourceQuota", "limitRange", "networkPolicy"}


@st.composite
def unknown_key_somewhere(draw: st.DrawFn) -> tuple[dict[str, Any], str]:
    """Defaults plus one unknown key in a random section; returns (data, its dotted path)."""
    data = to_dict(SyncerConfig())
    node, path = data, ""
    while True:
        sections = [
            key for key, value in node.items()
            if isinstance(value, dict) and key not in ("labels", "plugins")
        ]
        if not sections or not draw(st.booleans()):
            break
        key = draw(st.sampled_from(sections))
        node, path = node[key], f"{path}.{key}" if path else key
    key = draw(
        st.text(min_size=1, max_size=12).filter(lambda k: k not in node and k not in _CHART_ONLY)
    )
    node[key] = draw(st.none() | st.booleans() | st.integers() | st.text(max_size=5) | st.just({}))
    return data, f"{path}.{key}" if path else key


@settings(max_examples=80, deadline=None, database=None)
@given(unknown_key_somewhere())
def test_unknown_keys_are_rejected_at_any_depth(case: tuple[dict[str, Any], str]) -> None:
    data, dotted = case
    assert f"{dotted}: unknown key; allowed: " in error_of(data)


def test_plugin_sections_are_free_form_but_enabled_is_a_boolean() -> None:
    cfg = parse({"plugins": {"examples": {"enabled": True, "colour": "blue"}}})
    assert cfg.plugins["examples"] == {"enabled": True, "colour": "blue"}
    assert to_dict(cfg)["plugins"] == {"examples": {"enabled": True, "colour": "blue"}}
    assert "plugins.examples.enabled: expected true or false" in error_of(
        {"plugins": {"examples": {"enabled": "yes"}}}
    )
