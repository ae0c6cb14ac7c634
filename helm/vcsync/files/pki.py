"""Issue the virtual API server's serving certificate (the chart's ``pki`` init container).

Why at pod start and not when the chart renders: the certificate must name
the API Service's ClusterIP (tenant pods reach their API at that address, in
``KUBERNETES_SERVICE_HOST``, and verify it), and that IP exists only once the
Service does. Kubernetes passes it to the pod as the Service's docker-link
variable (``<RELEASE>_SERVICE_HOST``); Helm creates Services before
StatefulSets, so it is set from the first pod on.

Runs with the vcsync image's Python (``cryptography`` is a dependency of vcsync).
"""

from __future__ import annotations

import argparse
import datetime
import ipaddress
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID


def issue(
    ca_cert_pem: bytes, ca_key_pem: bytes, dns: Sequence[str], ips: Sequence[str], days: int
) -> tuple[bytes, bytes]:
    """A serving certificate for ``dns`` and ``ips`` signed by the CA: (cert PEM, key PEM)."""
    ca_cert = x509.load_pem_x509_certificate(ca_cert_pem)
    ca_key = serialization.load_pem_private_key(ca_key_pem, password=None)
    if not isinstance(ca_key, rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey):
        raise ValueError(f"the CA key is a {type(ca_key).__name__}; expected RSA or ECDSA")
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.UTC)
    not_after = min(now + datetime.timedelta(days=days), ca_cert.not_valid_after_utc)
    names: list[x509.GeneralName] = [x509.DNSName(name) for name in dict.fromkeys(dns)]
    names += [x509.IPAddress(ipaddress.ip_address(ip)) for ip in dict.fromkeys(ips)]
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "kube-apiserver")]))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(hours=1))
        .not_valid_after(not_after)
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True, key_encipherment=False, content_commitment=False,
                data_encipherment=False, key_agreement=False, key_cert_sign=False,
                crl_sign=False, encipher_only=False, decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    return cert.public_bytes(serialization.Encoding.PEM), key_pem


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ca-cert", required=True, type=Path)
    parser.add_argument("--ca-key", required=True, type=Path)
    parser.add_argument("--out", required=True, type=Path, help="directory for apiserver.crt/key")
    parser.add_argument("--dns", action="append", default=[], help="a DNS name (repeatable)")
    parser.add_argument("--ip", action="append", default=[], help="an IP address (repeatable)")
    parser.add_argument("--ip-from-env", action="append", default=[], metavar="VAR",
                        help="an environment variable holding an IP address (repeatable)")
    parser.add_argument("--days", type=int, default=3650)
    args = parser.parse_args(argv)
    ips = list(args.ip)
    for var in args.ip_from_env:
        value = os.environ.get(var, "")
        if not value:
            print(f"pki: ${var} is not set: the API Service must exist before this pod "
                  "(helm creates it first; delete the pod to retry)", file=sys.stderr)
            return 1
        ips.append(value)
    cert, key = issue(args.ca_cert.read_bytes(), args.ca_key.read_bytes(), args.dns, ips,
                      args.days)
    args.out.mkdir(parents=True, exist_ok=True)
    key_path = args.out / "apiserver.key"
    key_path.write_bytes(key)
    key_path.chmod(0o600)
    (args.out / "apiserver.crt").write_bytes(cert)
    print(f"pki: serving certificate for {', '.join([*args.dns, *ips])}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
