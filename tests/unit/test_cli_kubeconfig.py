"""The CLI's kubeconfig merging and its small parsers, on plain files and strings."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest
import yaml

from syncer.cli import checks, kubeconfig, state
from syncer.cli.errors import CliError


@pytest.fixture
def config_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    file = tmp_path / "kube" / "config"
    monkeypatch.setenv("KUBECONFIG", f"{file}:{tmp_path / 'second'}")
    return file


def test_new_entries_go_to_the_first_existing_file_else_the_last(config_file: Path,
                                                                   tmp_path: Path) -> None:
    assert kubeconfig.path() == tmp_path / "second"
    config_file.parent.mkdir(parents=True)
    config_file.write_text("{}\n")
    assert kubeconfig.path() == config_file


def test_missing_file_reads_empty_and_merge_keeps_other_entries(config_file: Path) -> None:
    assert kubeconfig.load()["contexts"] == []
    config_file.parent.mkdir(parents=True)
    config_file.write_text(yaml.safe_dump({
        "clusters": [{"name": "prod", "cluster": {"server": "https://127.0.0.1:9"}}],
        "users": [{"name": "prod", "user": {"token": "t"}}],
        "contexts": [{"name": "prod", "context": {"cluster": "prod", "user": "prod"}}],
        "current-context": "prod", "preferences": {"colors": True},
    }))
    with kubeconfig.edit() as config:
        kubeconfig.upsert(config, "mine", {"server": "https://127.0.0.1:8"}, {"token": "u"})
        kubeconfig.upsert(config, "mine", {"server": "https://127.0.0.1:7"}, {"token": "v"})
    saved = yaml.safe_load(config_file.read_text())
    assert [c["name"] for c in saved["contexts"]] == ["prod", "mine"]
    assert saved["clusters"][1]["cluster"]["server"] == "https://127.0.0.1:7"
    assert saved["preferences"] == {"colors": True}
    assert saved["current-context"] == "prod"
    assert config_file.stat().st_mode & 0o777 == 0o600

    kubeconfig.remove(saved, "prod")
    assert [c["name"] for c in saved["clusters"]] == ["mine"]
    assert saved["current-context"] == ""


def test_extract_inlines_files_and_token_file(tmp_path: Path) -> None:
    (tmp_path / "ca.crt").write_bytes(b"CA")
    (tmp_path / "token").write_text("secret\n")
    config = {
        "clusters": [{"name": "c", "cluster": {"server": "s", "certificate-authority": "ca.crt"}}],
        "users": [{"name": "u", "user": {"tokenFile": str(tmp_path / "token")}}],
        "contexts": [{"name": "x", "context": {"cluster": "c", "user": "u", "namespace": "n"}}],
    }
    got = kubeconfig.extract(config, "x", tmp_path)
    assert got["current-context"] == "x"
    assert got["clusters"][0]["cluster"] == {
        "server": "s", "certificate-authority-data": base64.b64encode(b"CA").decode()}
    assert got["users"][0]["user"] == {"token": "secret"}
    assert got["contexts"][0]["context"] == {"cluster": "x", "user": "x", "namespace": "n"}
    with pytest.raises(CliError, match="no context named 'y'"):
        kubeconfig.extract(config, "y", tmp_path)


def test_not_a_kubeconfig_is_a_clear_error(config_file: Path) -> None:
    config_file.parent.mkdir(parents=True)
    config_file.write_text("- a list\n")
    with pytest.raises(CliError, match="is not a kubeconfig"):
        kubeconfig.load()


@pytest.mark.parametrize(("text", "seconds"), [
    ("90s", 90), ("30m", 1800), ("2h", 7200), ("1d", 86400), ("1h30m", 5400)])
def test_durations(text: str, seconds: float) -> None:
    assert state.parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "5", "5x", "1h 30m", "-1h", "0s", "h"])
def test_bad_durations(text: str) -> None:
    with pytest.raises(CliError, match="invalid duration"):
        state.parse_duration(text)


@pytest.mark.parametrize(("seconds", "age"), [
    (5, "5s"), (59, "59s"), (60, "1m"), (3599, "59m"), (3600, "1h"), (90000, "1d"), (-3, "0s")])
def test_ages(seconds: float, age: str) -> None:
    assert state.format_age(seconds) == age


@pytest.mark.parametrize("name", ["a", "my-vcluster", "x1", "a" * 40])
def test_valid_names(name: str) -> None:
    assert checks.dns_label(name, "name", 40) == name


@pytest.mark.parametrize("name", ["", "A", "-a", "a-", "a_b", "a.b", "a" * 41])
def test_invalid_names(name: str) -> None:
    with pytest.raises(CliError, match="invalid name"):
        checks.dns_label(name, "name", 40)
