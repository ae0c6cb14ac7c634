"""TLS of the syncer's endpoints for kube-apiserver: who may call them, the certificates
they show.

The virtual control plane and the syncer share a *kubelet CA* that signs only
kube-apiserver's client certificates towards the syncer and the syncer's
serving certificates (the local launcher and the Helm chart generate it):

- for the kubelet endpoint, kube-apiserver presents a client certificate from it
  (``--kubelet-client-certificate``), with the common name
  :data:`CLIENT_COMMON_NAME`; the endpoint requires exactly that, so no tenant
  credential (the cluster CA signs tenants' CSRs) can reach it;
- for the metrics API (:mod:`syncer.metricsapi`), kube-apiserver's aggregator
  presents its front-proxy client certificate (``--proxy-client-cert-file``,
  common name :data:`FRONT_PROXY_COMMON_NAME`), and the same CA is its
  ``--requestheader-client-ca-file``;
- each endpoint serves a certificate for its own address, minted at start-up
  from the same CA, so kube-apiserver can verify it
  (``--kubelet-certificate-authority``, the APIService's ``caBundle``).

Why minted here rather than handed in: the address is the syncer's to choose
(flags), and one CA key in one Secret is all a deployment has to keep.
"""

from __future__ import annotations

import datetime
import ipaddress
import ssl
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

CLIENT_COMMON_NAME = "kube-apiserver-kubelet-client"
FRONT_PROXY_COMMON_NAME = "vcsync-front-proxy"
"""kube-apiserver's front-proxy client (its ``--requestheader-allowed-names``)."""
SERVING_COMMON_NAME = "vcsync-kubelet"
_VALIDITY = datetime.timedelta(days=365)


class TlsError(Exception):
    """The kubelet CA files are missing or unusable; the message names the file."""


def _load_ca(cert_path: Path, key_path: Path) -> tuple[x509.Certificate, Any]:
    try:
        cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
        key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
    except (OSError, ValueError) as exc:
        raise TlsError(f"kubelet CA {cert_path} / {key_path}: {exc}") from exc
    if not isinstance(key, rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey):
        raise TlsError(f"kubelet CA key {key_path} is a {type(key).__name__}; "
                       "expected RSA or ECDSA")
    return cert, key


def mint_serving_cert(cert_path: Path, key_path: Path, ips: Sequence[str],
                      dns: Sequence[str] = ()) -> tuple[bytes, bytes]:
    """A serving certificate for ``ips`` and ``dns`` names signed by the kubelet CA:
    (cert PEM, key PEM)."""
    ca_cert, ca_key = _load_ca(cert_path, key_path)
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, SERVING_COMMON_NAME)]))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(min(now + _VALIDITY, ca_cert.not_valid_after_utc))
        .add_extension(x509.SubjectAlternativeName(
            [*(x509.IPAddress(ipaddress.ip_address(ip)) for ip in ips),
             *(x509.DNSName(name) for name in dns)]), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    key_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
    return cert.public_bytes(serialization.Encoding.PEM), key_pem


def server_context(ca_cert: Path, ca_key: Path, ips: Sequence[str],
                   dns: Sequence[str] = ()) -> ssl.SSLContext:
    """An endpoint's TLS: a minted certificate for ``ips`` and ``dns``; client certificates
    required and verified against the kubelet CA; HTTP/1.1 only (upgrades need it)."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    cert_pem, key_pem = mint_serving_cert(ca_cert, ca_key, ips, dns)
    with tempfile.TemporaryDirectory(prefix="vcsync-kubelet-") as tmp:
        cert_file, key_file = Path(tmp) / "tls.crt", Path(tmp) / "tls.key"
        cert_file.write_bytes(cert_pem)
        key_file.touch(mode=0o600)
        key_file.write_bytes(key_pem)
        context.load_cert_chain(cert_file, key_file)
    context.load_verify_locations(cafile=str(ca_cert))
    context.verify_mode = ssl.CERT_REQUIRED
    context.set_alpn_protocols(["http/1.1"])
    return context


def peer_allowed(peercert: dict[str, Any] | None, common_name: str = CLIENT_COMMON_NAME) -> bool:
    """True if the verified client certificate is kube-apiserver's client named
    ``common_name`` (by default: its kubelet client)."""
    if not peercert:
        return False
    names = [value for rdn in peercert.get("subject", ()) for key, value in rdn
             if key == "commonName"]
    return names == [common_name]
