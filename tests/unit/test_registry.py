"""Unit tests of the translator registry: built-ins, entry-point plugins, ``enabled``.

Third-party translators are installed as a real distribution would be: a
``*.dist-info`` directory with ``METADATA`` and ``entry_points.txt``, put on
``sys.path`` for one test (``importlib.metadata`` finds it like any other).
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

import pytest
from vcsync_example import ExampleTranslator

from contract import discovery
from contract.discovery import available, enabled
from contract.resources import Resource
from contract.translator import Context, Create, Side, Translator
from syncer import config as config_mod
from syncer.app import select_translators
from tests.support import install_plugin
from tests.unit.fakes import NoLookup
from translators.classes import RuntimeClassTranslator
from translators.configmaps import ConfigMapTranslator
from translators.priorityclasses import PriorityClassTranslator
from translators.secrets import SecretTranslator

NOT_A_TRANSLATOR = "an entry point naming this object must be rejected"
"""Target of an invalid entry point (a plain value, not a Translator subclass)."""


# --- built-ins ------------------------------------------------------------------------------


def test_available_includes_the_builtins() -> None:
    assert discovery.ENTRY_POINT_GROUP == "vcsync.translators"
    found = available()
    assert found["configMaps"] is ConfigMapTranslator
    assert found["secrets"] is SecretTranslator
    assert "examples" not in found  # no plugin installed in this test


def test_available_returns_a_fresh_mapping() -> None:
    available()["configMaps"] = ExampleTranslator
    assert available()["configMaps"] is ConfigMapTranslator


# --- enabled ---------------------------------------------------------------------------------


def test_enabled_instantiates_only_enabled_kinds_with_their_options() -> None:
    sections: dict[str, dict[str, Any]] = {
        "configMaps": {"enabled": True, "all": True},
        "secrets": {"enabled": False, "all": True},
        "examples": {"enabled": True, "colour": "blue"},
        "pods": {"enabled": True},  # a section without a translator is ignored
    }
    classes = {
        "configMaps": ConfigMapTranslator,
        "secrets": SecretTranslator,
        "examples": ExampleTranslator,
    }

    result = enabled(sections, classes)

    assert [type(t) for t in result] == [ConfigMapTranslator, ExampleTranslator]
    assert result[0].options == {"enabled": True, "all": True}
    assert isinstance(result[0], ConfigMapTranslator)
    assert result[0].sync_all is True
    assert result[1].options == {"enabled": True, "colour": "blue"}


def test_enabled_without_sections_or_flag_is_off() -> None:
    classes = {"configMaps": ConfigMapTranslator, "secrets": SecretTranslator}
    assert enabled({}, classes) == []
    assert enabled({"configMaps": {}, "secrets": {"all": True}}, classes) == []
    assert enabled({"configMaps": {"enabled": True}}, {}) == []


def test_enabled_builds_new_instances_each_time() -> None:
    sections = {"secrets": {"enabled": True}}
    first = enabled(sections, {"secrets": SecretTranslator})
    second = enabled(sections, {"secrets": SecretTranslator})
    assert first[0] is not second[0]


def test_default_configuration_enables_configmaps_and_secrets() -> None:
    """The path the syncer takes at start-up: parsed config -> sections -> translators."""
    cfg = config_mod.parse({})
    kinds = {t.kind: t for t in select_translators(cfg)}
    assert {"configMaps", "secrets"} <= set(kinds)
    assert kinds["configMaps"].options.get("all") is False

    cfg = config_mod.parse({"sync": {"toHost": {"configMaps": {"all": True}}}})
    kinds = {t.kind: t for t in select_translators(cfg)}
    assert isinstance(kinds["configMaps"], ConfigMapTranslator)
    assert kinds["configMaps"].sync_all is True


def test_each_direction_reads_its_own_section() -> None:
    """sync.toHost.priorityClasses and sync.fromHost.priorityClasses are two translators
    (issue 22): each gets its own options, never the other direction's."""
    to_host = config_mod.parse({"sync": {"toHost": {"priorityClasses": {"enabled": True}}}})
    kinds = {t.kind: t for t in select_translators(to_host)}
    assert isinstance(kinds["priorityClasses"], PriorityClassTranslator)
    assert "hostPriorityClasses" not in kinds
    shown = {"enabled": True, "selector": {"labels": {"tenants": "yes"}}}
    from_host = config_mod.parse({"sync": {"fromHost": {"priorityClasses": shown,
                                                        "runtimeClasses": shown}}})
    kinds = {t.kind: t for t in select_translators(from_host)}
    assert "priorityClasses" not in kinds
    assert kinds["hostPriorityClasses"].options == shown
    assert isinstance(kinds["runtimeClasses"], RuntimeClassTranslator)


# --- entry-point plugins ----------------------------------------------------------------------


def test_a_plugin_registered_through_an_entry_point_is_available(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    install_plugin(
        tmp_path, monkeypatch, "vcsync_example",
        "example = vcsync_example:ExampleTranslator",
    )

    found = available()

    assert found["examples"] is ExampleTranslator
    assert found["configMaps"] is ConfigMapTranslator
    assert found["secrets"] is SecretTranslator
    (translator,) = enabled({"examples": {"enabled": True, "x": 1}}, found)
    assert isinstance(translator, ExampleTranslator)
    assert translator.options == {"enabled": True, "x": 1}


def test_the_example_plugin_follows_the_contract() -> None:
    t = ExampleTranslator({"enabled": True})
    ctx = Context(vcluster="vc", host_namespace="vcluster-vc", lookup=NoLookup())
    virtual = {
        "apiVersion": "example.com/v1",
        "kind": "Widget",
        "metadata": {"name": "w", "namespace": "team", "uid": "u1"},
        "spec": {"size": 3},
    }
    (action,) = t.to_host(virtual, ctx)
    assert isinstance(action, Create)
    assert action.side is Side.HOST
    assert action.resource == Resource("example.com", "v1", "widgets", "Widget")
    assert action.obj["metadata"]["namespace"] == "vcluster-vc"
    assert action.obj["metadata"]["labels"]["vcsync.dev/managed-by"] == "vc"
    assert action.obj["spec"] == {"size": 3}
    assert t.sync(virtual, action.obj, ctx) == []
    assert t.kind == "examples"
    assert t.host == t.resource


@pytest.mark.parametrize(
    "target",
    [
        "tests.unit.test_registry:NOT_A_TRANSLATOR",  # not a class
        "collections:OrderedDict",  # a class, but not a Translator
        "contract.translator:Side.HOST",  # an attribute path to a non-class
    ],
)
def test_a_non_translator_entry_point_raises_type_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, target: str
) -> None:
    install_plugin(tmp_path, monkeypatch, "vcsync_broken", f"broken = {target}")
    with pytest.raises(TypeError, match="'broken'"):
        available()


def test_a_plugin_can_be_enabled_in_the_configuration(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """As documented in ``enabled()`` and docs/plugins.md: a third-party kind is
    configured under ``plugins.<kind>``; an unknown plugin kind is an error."""
    install_plugin(
        tmp_path, monkeypatch, "vcsync_example",
        "example = vcsync_example:ExampleTranslator",
    )
    cfg = config_mod.parse({"plugins": {"examples": {"enabled": True, "colour": "blue"}}})
    kinds = {t.kind: t for t in select_translators(cfg)}
    assert isinstance(kinds.get("examples"), ExampleTranslator)
    assert kinds["examples"].options["colour"] == "blue"
    typo = config_mod.parse({"plugins": {"exmaples": {"enabled": True}}})
    with pytest.raises(config_mod.ConfigError, match=r"plugins\.exmaples: no installed translator"):
        select_translators(typo)


def test_translator_is_abstract() -> None:
    with pytest.raises(TypeError):
        Translator()  # type: ignore[abstract]


class _Unlisted(ExampleTranslator):
    """A kind no discovery returns."""

    kind = "unlisted"


class _EnsuresUnlisted(ExampleTranslator):
    kind = "referrers"

    @classmethod
    def ensures(cls) -> tuple[type[Translator], ...]:
        return (_Unlisted,)


def test_ensuring_a_kind_that_is_not_available_stops_start_up(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """``EnsureSynced`` names a kind by class; a kind declaring it may ensure one that is
    not installed is refused when the kinds are found, not skipped at the first reconcile."""
    monkeypatch.setattr(discovery, "plugins", lambda: {"referrers": _EnsuresUnlisted})
    with pytest.raises(discovery.DeclarationError, match="referrers: ensures _Unlisted"):
        available()
    monkeypatch.setattr(discovery, "plugins",
                        lambda: {"referrers": _EnsuresUnlisted, "unlisted": _Unlisted})
    assert available()["referrers"] is _EnsuresUnlisted


def test_the_example_plugin_package_registers_its_kind() -> None:
    """examples/vcsync-example is the package docs/plugins.md shows: its entry point names
    the class under the kind it declares."""
    project = Path(__file__).resolve().parents[2] / "examples" / "vcsync-example"
    data = tomllib.loads((project / "pyproject.toml").read_text())
    assert data["project"]["entry-points"][discovery.ENTRY_POINT_GROUP] == {
        ExampleTranslator.kind: "vcsync_example:ExampleTranslator"}
