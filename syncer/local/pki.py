"""Certificates, keys and tokens for one local control plane.

Why generate our own instead of letting kube-apiserver self-sign with
``--cert-dir``: clients (kubeconfig, the controller-manager's root CA bundle,
pods' ``ca.crt``) need one CA that signed the serving certificate, and the
service-account signing key must be shared between kube-apiserver and
kube-controller-manager. Everything here is loopback-only and throw-away.

A second CA, the *kubelet CA*, signs only kube-apiserver's client certificates
towards the syncer: its kubelet client and its front-proxy client (the
aggregator's, for aggregated APIs such as the syncer's metrics API; it is also
kube-apiserver's ``--requestheader-client-ca-file``). The syncer trusts nothing
else and mints its serving certificates from it (:mod:`syncer.kubelet.tls`).
"""

from __future__ import annotations

import csv
import datetime
import ipaddress
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from syncer.kubelet.tls import CLIENT_COMMON_NAME, FRONT_PROXY_COMMON_NAME

_VALIDITY = datetime.timedelta(days=3650)
_SERVING_NAMES = (
    "localhost",
    "kubernetes",
    "kubernetes.default",
    "kubernetes.default.svc",
    "kubernetes.default.svc.cluster.local",
)


@dataclass(frozen=True)
class Identity:
    """A static-token user: kube-apiserver reads these from ``--token-auth-file``."""

    user: str
    groups: tuple[str, ...]
    token: str


@dataclass(frozen=True)
class Pki:
    """Paths of the files one control plane needs, plus its identities."""

    ca_cert: Path
    serving_cert: Path
    serving_key: Path
    sa_key: Path
    sa_pub: Path
    token_file: Path
    identities: dict[str, Identity]

    def ca_pem(self) -> bytes:
        return self.ca_cert.read_bytes()

    @property
    def directory(self) -> Path:
        return self.ca_cert.parent

    @property
    def kubelet_ca_cert(self) -> Path:
        return self.directory / "kubelet-ca.crt"

    @property
    def kubelet_ca_key(self) -> Path:
        return self.directory / "kubelet-ca.key"

    @property
    def kubelet_client_cert(self) -> Path:
        return self.directory / "kubelet-client.crt"

    @property
    def kubelet_client_key(self) -> Path:
        return self.directory / "kubelet-client.key"

    @property
    def front_proxy_client_cert(self) -> Path:
        return self.directory / "front-proxy-client.crt"

    @property
    def front_proxy_client_key(self) -> Path:
        return self.directory / "front-proxy-client.key"

    def serving_pair(self, stem: str) -> tuple[Path, Path]:
        """(certificate, key) of a serving certificate :func:`generate_pki` issued as ``stem``."""
        return self.directory / f"{stem}.crt", self.directory / f"{stem}.key"


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    path.chmod(0o600)
    return path


def _key_pem(key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


_Key = ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey


def _cert(
    subject: str,
    key: ec.EllipticCurvePrivateKey,
    issuer: tuple[x509.Certificate, _Key] | None,
    san: list[x509.GeneralName] | None = None,
    usage: x509.ObjectIdentifier | None = None,
) -> x509.Certificate:
    now = datetime.datetime.now(datetime.UTC) - datetime.timedelta(minutes=5)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)])
    issuer_name, signer = (issuer[0].subject, issuer[1]) if issuer else (name, key)
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(issuer_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + _VALIDITY)
        .add_extension(x509.BasicConstraints(ca=issuer is None, path_length=None), critical=True)
    )
    if san:
        builder = builder.add_extension(x509.SubjectAlternativeName(san), critical=False)
    if usage is not None:
        builder = builder.add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
    return builder.sign(signer, hashes.SHA256())


def _pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def _write_pair(cert: Path, key_path: Path, subject: str,
                issuer: tuple[x509.Certificate, ec.EllipticCurvePrivateKey],
                san: list[x509.GeneralName] | None = None,
                usage: x509.ObjectIdentifier = ExtendedKeyUsageOID.CLIENT_AUTH) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    _write(cert, _pem(_cert(subject, key, issuer, san, usage)))
    _write(key_path, _key_pem(key))


def _write_kubelet_pki(pki: Pki) -> None:
    """The kubelet CA and kube-apiserver's kubelet client certificate from it."""
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = _cert("vcsync-kubelet-ca", ca_key, None)
    _write(pki.kubelet_ca_cert, _pem(ca))
    _write(pki.kubelet_ca_key, _key_pem(ca_key))
    _write_pair(pki.kubelet_client_cert, pki.kubelet_client_key, CLIENT_COMMON_NAME, (ca, ca_key))


def _write_front_proxy_client(pki: Pki) -> None:
    """kube-apiserver's front-proxy client certificate, from the kubelet CA on disk."""
    ca = x509.load_pem_x509_certificate(pki.kubelet_ca_cert.read_bytes())
    ca_key = serialization.load_pem_private_key(pki.kubelet_ca_key.read_bytes(), password=None)
    if not isinstance(ca_key, ec.EllipticCurvePrivateKey):
        raise ValueError(f"{pki.kubelet_ca_key} is not the ECDSA key generate_pki writes")
    _write_pair(pki.front_proxy_client_cert, pki.front_proxy_client_key,
                FRONT_PROXY_COMMON_NAME, (ca, ca_key))


def _serving_san(service_ips: Sequence[str]) -> list[x509.GeneralName]:
    names: list[x509.GeneralName] = [x509.DNSName(n) for n in _SERVING_NAMES]
    names += [x509.IPAddress(ipaddress.ip_address(ip)) for ip in ("127.0.0.1", *service_ips)]
    return names


def generate_pki(
    directory: Path, service_ip: str, users: Mapping[str, tuple[str, ...]],
    extra_ips: Sequence[str] = (), servers: Mapping[str, Sequence[str]] | None = None,
) -> Pki:
    """Write a CA (with its key), a serving certificate, an SA key pair and a token file.

    ``users`` maps user names to their groups; each gets a random token.
    ``service_ip`` is the first IP of the service CIDR (the ``kubernetes``
    Service), added to the serving certificate like kubeadm does; a virtual
    cluster adds ``extra_ips``: the ClusterIP of the host Service in front of
    it, which its pods on the host dial. ``servers`` maps the file stem of more
    serving certificates from the same CA to their DNS names (127.0.0.1 is
    always one of their IPs): issued here because the CA key is never written.
    """
    directory.mkdir(parents=True, exist_ok=True)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = _cert("vcsync-local-ca", ca_key, None)
    serving_key = ec.generate_private_key(ec.SECP256R1())
    serving = _cert("kube-apiserver", serving_key, (ca, ca_key),
                    _serving_san([service_ip, *extra_ips]))
    sa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    sa_pub = sa_key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    identities = {
        user: Identity(user, groups, secrets.token_hex(24)) for user, groups in users.items()
    }
    rows = [
        f'{i.token},{i.user},{i.user},"{",".join(i.groups)}"' for i in identities.values()
    ]
    _write(directory / "ca.key", _key_pem(ca_key))
    pki = Pki(
        ca_cert=_write(directory / "ca.crt", _pem(ca)),
        serving_cert=_write(directory / "apiserver.crt", _pem(serving)),
        serving_key=_write(directory / "apiserver.key", _key_pem(serving_key)),
        sa_key=_write(directory / "sa.key", _key_pem(sa_key)),
        sa_pub=_write(directory / "sa.pub", sa_pub),
        token_file=_write(directory / "tokens.csv", ("\n".join(rows) + "\n").encode()),
        identities=identities,
    )
    loopback = x509.IPAddress(ipaddress.ip_address("127.0.0.1"))
    for stem, dns in (servers or {}).items():
        _write_pair(*pki.serving_pair(stem), stem, (ca, ca_key),
                    [*(x509.DNSName(name) for name in dns), loopback],
                    ExtendedKeyUsageOID.SERVER_AUTH)
    _write_kubelet_pki(pki)
    _write_front_proxy_client(pki)
    return pki


def load_pki(directory: Path) -> Pki:
    """The :class:`Pki` that :func:`generate_pki` wrote to ``directory`` earlier.

    Why: a paused virtual cluster resumes with the same CA and tokens, so the
    kubeconfigs users already hold keep working. A directory written before the
    kubelet CA (or its front-proxy client certificate) existed gets one now. The Helm
    chart's PKI (in a snapshot of a Helm install) works too: token rows without groups,
    no ``sa.pub`` (derived here) and no serving certificate (:func:`reissue_serving`
    makes one).
    """
    with (directory / "tokens.csv").open(newline="") as rows:
        identities = {
            row[1]: Identity(row[1], tuple(g for g in (row[3:] or [""])[0].split(",") if g),
                             row[0])
            for row in csv.reader(rows) if row
        }
    pki = Pki(
        ca_cert=directory / "ca.crt",
        serving_cert=directory / "apiserver.crt",
        serving_key=directory / "apiserver.key",
        sa_key=directory / "sa.key",
        sa_pub=directory / "sa.pub",
        token_file=directory / "tokens.csv",
        identities=identities,
    )
    if not pki.kubelet_client_cert.is_file():
        _write_kubelet_pki(pki)
    if not pki.front_proxy_client_cert.is_file():
        _write_front_proxy_client(pki)
    if not pki.sa_pub.is_file():
        sa_key = serialization.load_pem_private_key(pki.sa_key.read_bytes(), password=None)
        _write(pki.sa_pub, sa_key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))
    return pki


def reissue_serving(pki: Pki, service_ips: Sequence[str]) -> None:
    """A new serving certificate from ``pki``'s CA for ``service_ips`` (plus 127.0.0.1).

    Why: a control plane restored from a snapshot keeps its CA (clients trust it)
    and its tokens, but the host Service in front of it has another ClusterIP,
    which the certificate must name. Without a CA key (a directory written
    before the key was kept) the old certificate stays.
    """
    ca_key_file = pki.directory / "ca.key"
    if not ca_key_file.is_file():
        return
    ca_key = serialization.load_pem_private_key(ca_key_file.read_bytes(), password=None)
    if not isinstance(ca_key, ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey):
        raise ValueError(f"{ca_key_file}: neither an EC nor an RSA key")
    ca = x509.load_pem_x509_certificate(pki.ca_pem())
    key = ec.generate_private_key(ec.SECP256R1())
    serving = _cert("kube-apiserver", key, (ca, ca_key), _serving_san(service_ips))
    _write(pki.serving_key, _key_pem(key))
    _write(pki.serving_cert, _pem(serving))
