"""Certificates, tokens and kubeconfigs the chart renders, and the pki/start scripts it runs."""

from __future__ import annotations

import datetime
import ipaddress
from pathlib import Path

import pytest
import yaml
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa

from contract.resources import Obj
from syncer.kubelet.tls import CLIENT_COMMON_NAME, FRONT_PROXY_COMMON_NAME
from tests.chart.rendering import (
    NAMESPACE,
    RELEASE,
    VALUE_SETS,
    chart_script,
    container,
    find,
    render,
    secret_data,
)


def certs(assignments: list[str] | None = None) -> tuple[dict[str, bytes], dict[str, bytes]]:
    objects = render(assignments or [])
    return (secret_data(find(objects, "Secret", f"{RELEASE}-certs")),
            secret_data(find(objects, "Secret", f"vc-{RELEASE}")))


def verify(cert: x509.Certificate, ca: x509.Certificate) -> None:
    key = ca.public_key()
    assert isinstance(key, rsa.RSAPublicKey)
    assert cert.signature_hash_algorithm is not None
    key.verify(cert.signature, cert.tbs_certificate_bytes, padding.PKCS1v15(),
               cert.signature_hash_algorithm)


def test_generated_pki() -> None:
    pki, kubeconfig = certs()
    ca = x509.load_pem_x509_certificate(pki["ca.crt"])
    assert ca.extensions.get_extension_for_class(x509.BasicConstraints).value.ca is True
    assert x509.load_pem_x509_certificate(kubeconfig["certificate-authority"]) == ca
    sa_key = pki["sa.key"].decode()
    assert "PRIVATE KEY" in sa_key
    tokens = [line.split(",", 3) for line in pki["tokens.csv"].decode().splitlines()]
    users = {user: (token, groups) for token, user, _, *groups in tokens}
    assert sorted(users) == ["system:kube-controller-manager", "vcsync-admin", "vcsync-syncer"]
    assert users["vcsync-admin"][1] == ['"system:masters"']
    assert users["system:kube-controller-manager"][1] == []  # bootstrap RBAC covers it
    assert all(len(token) == 64 for token, _ in users.values())

    config = yaml.safe_load(kubeconfig["config"])
    cluster = config["clusters"][0]["cluster"]
    assert cluster["server"] == f"https://{RELEASE}.{NAMESPACE}.svc:443"
    assert config["users"][0]["user"]["token"] == kubeconfig["token"].decode()
    assert kubeconfig["token"].decode() == users["vcsync-admin"][0]
    assert config["current-context"] == RELEASE
    for name, user in (("syncer", "vcsync-syncer"),
                       ("controller-manager", "system:kube-controller-manager")):
        inner = yaml.safe_load(pki[f"{name}.kubeconfig"])
        assert inner["clusters"][0]["cluster"]["server"] == "https://127.0.0.1:6443"
        assert inner["users"][0]["user"]["token"] == users[user][0]


def test_kubelet_ca_signs_only_the_api_servers_clients() -> None:
    """A CA of its own (not the cluster CA, which signs tenants' CSRs), and kube-apiserver's
    client certificates from it with the names the syncer's endpoints require: its kubelet
    client and its front proxy."""
    pki, _ = certs()
    kubelet_ca = x509.load_pem_x509_certificate(pki["kubelet-ca.crt"])
    assert kubelet_ca != x509.load_pem_x509_certificate(pki["ca.crt"])
    assert "PRIVATE KEY" in pki["kubelet-ca.key"].decode()
    for stem, name in (("kubelet-client", CLIENT_COMMON_NAME),
                       ("front-proxy-client", FRONT_PROXY_COMMON_NAME)):
        client = x509.load_pem_x509_certificate(pki[f"{stem}.crt"])
        verify(client, kubelet_ca)
        assert client.subject.rfc4514_string() == f"CN={name}"
        assert "PRIVATE KEY" in pki[f"{stem}.key"].decode()


def test_supplied_ca_keeps_tokens_stable(tmp_path: Path) -> None:
    """With the CA supplied (GitOps: no `lookup`), two renders give the same credentials."""
    first, _ = certs()
    ca_cert, ca_key, sa_key = (tmp_path / "ca.crt", tmp_path / "ca.key", tmp_path / "sa.key")
    ca_cert.write_bytes(first["ca.crt"])
    ca_key.write_bytes(first["ca.key"])
    sa_key.write_bytes(first["sa.key"])
    supplied = [f"controlPlane.certificates.ca.cert={_escape(first['ca.crt'])}",
                f"controlPlane.certificates.ca.key={_escape(first['ca.key'])}",
                f"controlPlane.certificates.serviceAccountKey={_escape(first['sa.key'])}"]
    again, kubeconfig = certs(supplied)
    for key in ("ca.crt", "ca.key", "sa.key", "tokens.csv", "syncer.kubeconfig"):
        assert again[key] == first[key], key
    assert kubeconfig["certificate-authority"] == first["ca.crt"]


def _escape(pem: bytes) -> str:
    """A PEM as one --set value (helm splits on commas; newlines pass through)."""
    return pem.decode().replace(",", "\\,")


def test_other_renders_make_other_cas() -> None:
    """Without lookup (helm template) every render is a new CA: why the docs say to supply it."""
    assert certs()[0]["ca.crt"] != render_twice_ca()


def render_twice_ca() -> bytes:
    objects = render(["controlPlane.certificates.validityDays=3649"])
    return secret_data(find(objects, "Secret", f"{RELEASE}-certs"))["ca.crt"]


def test_kubeconfig_secret_name_and_server_are_configurable() -> None:
    objects = render(["exportKubeConfig.secret.name=tenant-a-admin",
                      "exportKubeConfig.server=https://vc.example.com",
                      "exportKubeConfig.context=tenant-a"])
    config = yaml.safe_load(secret_data(find(objects, "Secret", "tenant-a-admin"))["config"])
    assert config["clusters"][0]["cluster"]["server"] == "https://vc.example.com"
    assert config["current-context"] == "tenant-a"


def test_etcd_peer_certificate_names_every_replica() -> None:
    pki, _ = certs(VALUE_SETS["etcd-embedded-ha"])
    ca = x509.load_pem_x509_certificate(pki["ca.crt"])
    peer = x509.load_pem_x509_certificate(pki["etcd-peer.crt"])
    verify(peer, ca)
    names = peer.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    host = f"{RELEASE}-2.{RELEASE}-headless.{NAMESPACE}.svc"
    assert host in names.get_values_for_type(x509.DNSName)
    assert f"{host}.cluster.local" in names.get_values_for_type(x509.DNSName)


def test_pki_script_issues_the_serving_certificate(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Run the init container's command (paths moved to tmp): the certificate carries the
    Service IP from the docker-link variable, the chart's names, and the CA's signature."""
    objects = render()
    pki, _ = certs()
    (tmp_path / "pki").mkdir()
    for key in ("ca.crt", "ca.key"):
        (tmp_path / "pki" / key).write_bytes(pki[key])
    command = container(objects, "pki")["command"]
    assert command[:2] == ["python", "/scripts/pki.py"]
    args = [a.replace("/pki/", f"{tmp_path}/pki/").replace("=/serving", f"={tmp_path}/serving")
            for a in command[2:]]
    env = f"{RELEASE.upper()}_SERVICE_HOST"
    assert f"--ip-from-env={env}" in args
    script = chart_script("pki")
    monkeypatch.delenv(env, raising=False)
    assert script.main(args) == 1  # no Service yet: a clear error, not a certificate
    monkeypatch.setenv(env, "10.96.7.9")
    assert script.main(args) == 0
    cert = x509.load_pem_x509_certificate((tmp_path / "serving" / "apiserver.crt").read_bytes())
    verify(cert, x509.load_pem_x509_certificate(pki["ca.crt"]))
    names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    ips = names.get_values_for_type(x509.IPAddress)
    assert ipaddress.ip_address("10.96.7.9") in ips
    assert ipaddress.ip_address("127.0.0.1") in ips
    for name in (RELEASE, f"{RELEASE}.{NAMESPACE}.svc", "kubernetes.default.svc", "localhost"):
        assert name in names.get_values_for_type(x509.DNSName)
    assert cert.not_valid_after_utc > datetime.datetime.now(datetime.UTC)
    assert (tmp_path / "serving" / "apiserver.key").stat().st_mode & 0o077 == 0
    assert isinstance(cert.public_key(), ec.EllipticCurvePublicKey)


def test_start_script_adjusts_coredns() -> None:
    start = chart_script("start")
    objects: list[tuple[str, Obj]] = start.manifests("mirror.local/coredns:v1", 2)
    deployment = next(obj for path, obj in objects if path.endswith("/deployments"))
    assert deployment["spec"]["replicas"] == 2
    assert deployment["spec"]["template"]["spec"]["containers"][0]["image"] == (
        "mirror.local/coredns:v1")
    assert start.main(["--virtual-kubeconfig=x"]) == 2  # no command after --
