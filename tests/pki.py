"""Throwaway certificates for the TLS tests: a CA, a server certificate for localhost, a client one.

Made fresh for each test session with the `cryptography` package; no key is ever committed.
"""

from __future__ import annotations

import datetime
import ipaddress
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID


@dataclass(frozen=True)
class Pki:
    ca: Path
    server_cert: Path
    server_key: Path
    client_cert: Path
    client_key: Path
    other_ca: Path  # a CA that signed nothing here: trusting it must fail


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _write_key(key: ec.EllipticCurvePrivateKey, path: Path) -> None:
    path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )


def _certificate(subject, issuer, public_key, signer, *, ca: bool, usage=None, names=None):  # noqa: ANN001, ANN202
    now = datetime.datetime.now(datetime.timezone.utc)
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if usage:
        builder = builder.add_extension(x509.ExtendedKeyUsage(usage), critical=False)
    if names:
        builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
    return builder.sign(signer, hashes.SHA256())


def make_pki(directory: Path) -> Pki:
    directory.mkdir(parents=True, exist_ok=True)

    def authority(name: str) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate, Path]:
        key = ec.generate_private_key(ec.SECP256R1())
        cert = _certificate(_name(name), _name(name), key.public_key(), key, ca=True)
        path = directory / f"{name}.pem"
        path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        return key, cert, path

    ca_key, ca_cert, ca_path = authority("tarjama-test-ca")
    _, _, other_path = authority("some-other-ca")

    def leaf(name: str, usage, names=None) -> tuple[Path, Path]:  # noqa: ANN001
        key = ec.generate_private_key(ec.SECP256R1())
        cert = _certificate(_name(name), ca_cert.subject, key.public_key(), ca_key, ca=False, usage=usage, names=names)
        cert_path, key_path = directory / f"{name}.pem", directory / f"{name}-key.pem"
        cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        _write_key(key, key_path)
        return cert_path, key_path

    server_cert, server_key = leaf(
        "localhost",
        [ExtendedKeyUsageOID.SERVER_AUTH],
        [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))],
    )
    client_cert, client_key = leaf("newsroom-tool", [ExtendedKeyUsageOID.CLIENT_AUTH])
    return Pki(ca_path, server_cert, server_key, client_cert, client_key, other_path)
