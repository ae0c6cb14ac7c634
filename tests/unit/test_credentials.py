"""syncer.kube.credentials: kubeconfig and service-account reading by client-go's rules.

Pure file reading, so unit tests; every cluster test connects through the same
code with token and client-certificate kubeconfigs of real API servers.
"""

from __future__ import annotations

import asyncio
import base64
import ssl
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from syncer.kube import credentials
from syncer.kube.credentials import CredentialsError, Endpoint


def _pki(tmp_path: Path) -> tuple[Path, Path, Path]:
    """A self-signed CA (also used as a client certificate) and its key."""
    key, cert = tmp_path / "tls.key", tmp_path / "tls.crt"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:prime256v1", "-nodes", "-days", "1", "-subj", "/CN=t",
                    "-keyout", str(key), "-out", str(cert)], check=True, capture_output=True)
    return cert, key, cert


def _kubeconfig(tmp_path: Path, user: dict[str, Any], cluster: dict[str, Any] | None = None,
                current: str | None = "c") -> Path:
    config = {
        "apiVersion": "v1", "kind": "Config", "current-context": current,
        "clusters": [{"name": "k", "cluster": {"server": "https://127.0.0.1:6443/",
                                                **(cluster or {})}}],
        "users": [{"name": "u", "user": user}],
        "contexts": [{"name": "c", "context": {"cluster": "k", "user": "u"}},
                     {"name": "other", "context": {"cluster": "k", "user": "u"}}],
    }
    path = tmp_path / "kubeconfig"
    path.write_text(yaml.safe_dump(config))
    return path


def _load(path: Path, context: str | None = None) -> Endpoint:
    return asyncio.run(credentials.from_kubeconfig(str(path), context))


def _header(endpoint: Endpoint) -> str | None:
    return asyncio.run(endpoint.auth.header())


def test_token_and_server(tmp_path: Path) -> None:
    endpoint = _load(_kubeconfig(tmp_path, {"token": "abc"}))
    assert endpoint.server == "https://127.0.0.1:6443"
    assert _header(endpoint) == "Bearer abc"
    assert endpoint.tls_server_name is None


def test_token_file_is_relative_to_the_kubeconfig_and_read_again_after_a_401(
        tmp_path: Path) -> None:
    (tmp_path / "token").write_text("one\n")
    endpoint = _load(_kubeconfig(tmp_path, {"tokenFile": "token"}))
    assert _header(endpoint) == "Bearer one"
    (tmp_path / "token").write_text("two\n")
    assert _header(endpoint) == "Bearer one", "read again before a minute passed"
    endpoint.auth.unauthorized()
    assert _header(endpoint) == "Bearer two"


def test_basic_auth(tmp_path: Path) -> None:
    endpoint = _load(_kubeconfig(tmp_path, {"username": "ann", "password": "pw"}))
    assert _header(endpoint) == "Basic " + base64.b64encode(b"ann:pw").decode()


def test_client_certificate_files_and_ca_data(tmp_path: Path) -> None:
    cert, key, ca = _pki(tmp_path)
    endpoint = _load(_kubeconfig(
        tmp_path, {"client-certificate": cert.name, "client-key": str(key)},
        {"certificate-authority-data": base64.b64encode(ca.read_bytes()).decode(),
         "tls-server-name": "api.example"}))
    assert _header(endpoint) is None
    assert endpoint.tls_server_name == "api.example"
    context = endpoint.new_tls()
    assert context.verify_mode == ssl.CERT_REQUIRED
    assert context.get_ca_certs()[0]["subject"] == ((("commonName", "t"),),)
    assert endpoint.new_tls() is not context


def test_insecure_skip_tls_verify(tmp_path: Path) -> None:
    endpoint = _load(_kubeconfig(tmp_path, {}, {"insecure-skip-tls-verify": True}))
    assert endpoint.new_tls().verify_mode == ssl.CERT_NONE


def test_named_context(tmp_path: Path) -> None:
    path = _kubeconfig(tmp_path, {"token": "x"}, current=None)
    assert _load(path, "other").server == "https://127.0.0.1:6443"
    with pytest.raises(CredentialsError, match="no context given and no current-context"):
        _load(path)


@pytest.mark.parametrize(("user", "cluster", "message"), [
    ({"client-certificate-data": "Zm9v"}, {}, "without its key"),
    ({"auth-provider": {"name": "oidc"}}, {}, "auth-provider 'oidc' is not supported"),
    ({"tokenFile": "missing"}, {}, "token file"),
    ({}, {"certificate-authority": "nowhere.crt"}, "nowhere.crt"),
    ({}, {"server": ""}, "the cluster has no server"),
    ({"exec": {"apiVersion": "client.authentication.k8s.io/v1", "command": "vcsync-none"}},
     {}, "executable vcsync-none not found"),
])
def test_unusable_kubeconfigs_say_why(tmp_path: Path, user: dict[str, Any],
                                      cluster: dict[str, Any], message: str) -> None:
    with pytest.raises(CredentialsError, match=message):
        _header(_load(_kubeconfig(tmp_path, user, cluster)))


def test_missing_entries(tmp_path: Path) -> None:
    with pytest.raises(CredentialsError, match="no context named 'nope'"):
        _load(_kubeconfig(tmp_path, {}), "nope")
    (tmp_path / "bad").write_text("- a list\n")
    with pytest.raises(CredentialsError, match="not a mapping"):
        _load(tmp_path / "bad")


def test_exec_plugin_token_runs_at_load_and_again_after_a_401(tmp_path: Path) -> None:
    counter = tmp_path / "runs"
    script = tmp_path / "plugin"
    script.write_text(
        "#!/bin/sh\necho x >> " + str(counter) + "\n"
        "n=$(wc -l < " + str(counter) + ")\n"
        'printf \'{"apiVersion":"client.authentication.k8s.io/v1","kind":"ExecCredential",'
        '"status":{"token":"t%s"}}\' "$n"\n')
    script.chmod(0o755)
    endpoint = _load(_kubeconfig(tmp_path, {"exec": {
        "apiVersion": "client.authentication.k8s.io/v1", "command": str(script)}}))
    assert counter.read_text().count("x") == 1, "the plugin ran at load"
    assert _header(endpoint) == "Bearer t1"
    endpoint.auth.unauthorized()
    assert _header(endpoint) == "Bearer t2"


def test_in_cluster(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _, _, ca = _pki(tmp_path)
    (tmp_path / "ca.crt").write_bytes(ca.read_bytes())
    (tmp_path / "token").write_text("sa-token")
    monkeypatch.setenv("KUBERNETES_SERVICE_HOST", "fd00::1")
    monkeypatch.setenv("KUBERNETES_SERVICE_PORT", "443")
    endpoint = credentials.in_cluster(tmp_path)
    assert endpoint.server == "https://[fd00::1]:443"
    assert _header(endpoint) == "Bearer sa-token"
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST")
    with pytest.raises(CredentialsError, match="not in a pod"):
        credentials.in_cluster(tmp_path)
