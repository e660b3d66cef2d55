"""Real certificates made with cryptography: a hub CA, a hub server cert, a node client cert.

Used wherever a test needs real TLS: the daemon health check, diag's network and certs
probes, the bundle's redaction of key material.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def key_pem(key: Any) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def cert_pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def issue(
    cn: str,
    issuer_key: Any,
    issuer_name: x509.Name,
    *,
    ca: bool = False,
    server: bool = False,
    not_before: datetime | None = None,
    days: int = 30,
) -> tuple[Any, x509.Certificate]:
    key = ec.generate_private_key(ec.SECP256R1())
    start = not_before or datetime.now(UTC) - timedelta(hours=1)
    b = (
        x509.CertificateBuilder()
        .subject_name(_name(cn))
        .issuer_name(issuer_name if issuer_key is not None else _name(cn))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(start + timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if server:
        b = b.add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        ).add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
    elif not ca:
        b = b.add_extension(
            x509.SubjectAlternativeName([x509.DNSName(cn)]), critical=False
        ).add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
    cert = b.sign(issuer_key if issuer_key is not None else key, hashes.SHA256())
    return key, cert


@dataclass(frozen=True)
class PkiFiles:
    """The PEM files :meth:`Pki.write_all` leaves (keys 0600)."""

    ca_cert: Path
    server_cert: Path
    server_key: Path
    client_cert: Path
    client_key: Path


@dataclass
class Pki:
    ca_key: Any
    ca: x509.Certificate
    server_key: Any
    server: x509.Certificate
    node_key: Any
    node: x509.Certificate

    @classmethod
    def make(cls) -> Pki:
        ca_key, ca = issue("worldland-hub-ca", None, _name("worldland-hub-ca"), ca=True)
        server_key, server = issue("hub", ca_key, ca.subject, server=True)
        node_key, node = issue("gpu-node-1", ca_key, ca.subject)
        return cls(ca_key, ca, server_key, server, node_key, node)

    def write_server(self, directory: Path) -> tuple[Path, Path, Path]:
        directory.mkdir(parents=True, exist_ok=True)
        crt, key, ca = directory / "server.crt", directory / "server.key", directory / "ca.crt"
        crt.write_bytes(cert_pem(self.server))
        key.write_bytes(key_pem(self.server_key))
        ca.write_bytes(cert_pem(self.ca))
        return crt, key, ca

    def write_node_certs(
        self,
        certs_dir: Path,
        *,
        node: x509.Certificate | None = None,
        node_key: Any = None,
    ) -> None:
        """The layout `worldland join` leaves: certs/node.crt, node.key (0600), ca.crt."""
        certs_dir.mkdir(parents=True, exist_ok=True)
        (certs_dir / "node.crt").write_bytes(cert_pem(node or self.node))
        k = certs_dir / "node.key"
        k.write_bytes(key_pem(node_key or self.node_key))
        k.chmod(0o600)
        (certs_dir / "ca.crt").write_bytes(cert_pem(self.ca))

    def write_all(self, directory: Path) -> PkiFiles:
        """ca.crt, server.crt/.key and node.crt/.key in one directory."""
        server_cert, server_key, ca = self.write_server(directory)
        self.write_node_certs(directory)
        server_key.chmod(0o600)
        return PkiFiles(ca, server_cert, server_key, directory / "node.crt", directory / "node.key")
