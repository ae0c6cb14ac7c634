"""A restored control plane keeps its CA, keys and tokens; only its serving certificate is new.

Both PKIs a snapshot may hold: the local driver's (EC CA, key kept since
snapshots exist) and the Helm chart's (RSA CA from ``genCA``, token rows
without groups, no ``sa.pub``, no serving certificate in the Secret).
"""

from __future__ import annotations

import datetime
import ipaddress
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa

from syncer.local.pki import generate_pki, load_pki, reissue_serving

USERS = {"vcsync-admin": ("system:masters",), "system:kube-controller-manager": ()}


def _names_and_issuer_ok(pem: bytes, ca_pem: bytes, ip: str) -> bool:
    cert, ca = x509.load_pem_x509_certificate(pem), x509.load_pem_x509_certificate(ca_pem)
    cert.verify_directly_issued_by(ca)
    names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    return ipaddress.ip_address(ip) in names.get_values_for_type(x509.IPAddress)


def test_local_pki_keeps_everything_but_the_serving_certificate(tmp_path: Path) -> None:
    pki = generate_pki(tmp_path, "10.96.0.1", USERS, ["10.96.5.5"])
    before = {f.name: f.read_bytes() for f in tmp_path.iterdir()}
    assert "ca.key" in before
    reissue_serving(load_pki(tmp_path), ["10.96.0.1", "10.96.7.7"])
    after = {f.name: f.read_bytes() for f in tmp_path.iterdir()}
    changed = {name for name in before if before[name] != after[name]}
    assert changed == {"apiserver.crt", "apiserver.key"}
    assert _names_and_issuer_ok(after["apiserver.crt"], pki.ca_pem(), "10.96.7.7")
    assert load_pki(tmp_path).identities == pki.identities


def test_without_a_ca_key_the_old_serving_certificate_stays(tmp_path: Path) -> None:
    generate_pki(tmp_path, "10.96.0.1", USERS)
    (tmp_path / "ca.key").unlink()
    serving = (tmp_path / "apiserver.crt").read_bytes()
    reissue_serving(load_pki(tmp_path), ["10.96.7.7"])
    assert (tmp_path / "apiserver.crt").read_bytes() == serving


def _pem(key: rsa.RSAPrivateKey) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM,
                             serialization.PrivateFormat.TraditionalOpenSSL,
                             serialization.NoEncryption())


def test_the_charts_pki_loads_and_gets_a_serving_certificate(tmp_path: Path) -> None:
    """What the chart's Secret holds: an RSA CA, an RSA SA key, 3-column token rows."""
    now = datetime.datetime.now(datetime.UTC)
    ca_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(x509.NameOID.COMMON_NAME, "vcsync-tenant-ca")])
    ca = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
          .public_key(ca_key.public_key()).serial_number(1)
          .not_valid_before(now - datetime.timedelta(minutes=5))
          .not_valid_after(now + datetime.timedelta(days=1))
          .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
          .sign(ca_key, hashes.SHA256()))
    chart = tmp_path / "chart"
    chart.mkdir()
    (chart / "ca.crt").write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    (chart / "ca.key").write_bytes(_pem(ca_key))
    sa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    (chart / "sa.key").write_bytes(_pem(sa_key))
    (chart / "tokens.csv").write_text(
        'a1,vcsync-admin,vcsync-admin,"system:masters"\n'
        "c3,system:kube-controller-manager,system:kube-controller-manager\n")
    pki = load_pki(chart)
    assert pki.identities["system:kube-controller-manager"].groups == ()
    assert pki.identities["vcsync-admin"].groups == ("system:masters",)
    public = serialization.load_pem_public_key(pki.sa_pub.read_bytes())
    assert isinstance(public, rsa.RSAPublicKey)
    signature = sa_key.sign(b"x", padding.PKCS1v15(), hashes.SHA256())
    public.verify(signature, b"x", padding.PKCS1v15(), hashes.SHA256())
    reissue_serving(pki, ["10.96.0.1", "10.96.9.9"])
    assert _names_and_issuer_ok(pki.serving_cert.read_bytes(), pki.ca_pem(), "10.96.9.9")
    key = serialization.load_pem_private_key(pki.serving_key.read_bytes(), password=None)
    assert isinstance(key, ec.EllipticCurvePrivateKey)

