"""The hub's certificate authority: made on first start, signs node client certificates.

Nodes prove who they are with a short-lived client certificate (subject CN and SAN DNS = node
id, EKU clientAuth) instead of a long-lived secret, so a leaked certificate expires by itself.
The CA key is written 0600 from the first byte. ``issue_server_cert`` gives ``--tls-self`` a
server certificate for the hub's own host, signed by the same CA, so clients need one trust
anchor (the CA PEM that ``/v1/info`` announces).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import ipaddress
import os
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.hazmat.primitives.asymmetric.types import CertificateIssuerPrivateKeyTypes
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

ALLOWED_CURVES = ("secp256r1", "secp384r1")
MIN_RSA_BITS = 2048


class CsrRejected(ValueError):
    """The CSR cannot be signed; the message says why and is safe to return to the caller."""


def write_private(path: Path, data: bytes) -> None:
    """Write a secret file 0600 from the first byte (temp file + fsync + rename)."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)


def write_public(path: Path, data: bytes) -> None:
    """Write a non-secret file atomically (temp file + fsync + rename).

    A new parent directory is 0700 all the same: it may hold secrets written next.
    """
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)


def spki_sha256(cert: x509.Certificate) -> str:
    """kubeadm's CA pin: ``sha256:`` + hex of the DER SubjectPublicKeyInfo."""
    spki = cert.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return "sha256:" + hashlib.sha256(spki).hexdigest()


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(microsecond=0)


@dataclass
class IssuedCert:
    """A freshly signed certificate and the facts the store records about it."""

    pem: str
    serial: int
    not_after: dt.datetime


class CertificateAuthority:
    """Load or create the CA under ``directory`` (``ca.key`` 0600, ``ca.pem``)."""

    def __init__(self, directory: Path) -> None:
        self.key_path = directory / "ca.key"
        self.cert_path = directory / "ca.pem"
        if not self.key_path.exists():
            self._create()
        key = serialization.load_pem_private_key(self.key_path.read_bytes(), password=None)
        if not isinstance(key, ec.EllipticCurvePrivateKey):
            raise RuntimeError(f"{self.key_path} is not an EC key; move it away to make a new CA")
        self._key: CertificateIssuerPrivateKeyTypes = key
        self.cert = x509.load_pem_x509_certificate(self.cert_path.read_bytes())
        self.cert_pem = self.cert_path.read_text()

    def _create(self) -> None:
        key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name(
            [
                x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Worldland"),
                x509.NameAttribute(NameOID.COMMON_NAME, "Worldland hub CA"),
            ]
        )
        now = _now()
        cert = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=3650))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(_key_usage(signs_certificates=True), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), False)
            .sign(key, hashes.SHA256())
        )
        write_private(
            self.key_path,
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            ),
        )
        write_public(self.cert_path, cert.public_bytes(serialization.Encoding.PEM))

    def _sign(
        self,
        *,
        common_name: str,
        public_key: ec.EllipticCurvePublicKey | rsa.RSAPublicKey | ed25519.Ed25519PublicKey,
        san: list[x509.GeneralName],
        ekus: list[x509.ObjectIdentifier],
        lifetime: dt.timedelta,
    ) -> IssuedCert:
        now = _now()
        serial = x509.random_serial_number()
        not_after = now + lifetime
        is_rsa = isinstance(public_key, rsa.RSAPublicKey)
        cert = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)]))
            .issuer_name(self.cert.subject)
            .public_key(public_key)
            .serial_number(serial)
            # A minute of back-dating absorbs small clock differences between hub and node.
            .not_valid_before(now - dt.timedelta(minutes=1))
            .not_valid_after(not_after)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(_key_usage(key_encipherment=is_rsa), critical=True)
            .add_extension(x509.ExtendedKeyUsage(ekus), critical=False)
            .add_extension(x509.SubjectAlternativeName(san), critical=False)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), False)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(
                    self.cert.public_key()  # type: ignore[arg-type]
                ),
                critical=False,
            )
            .sign(self._key, hashes.SHA256())
        )
        return IssuedCert(
            pem=cert.public_bytes(serialization.Encoding.PEM).decode(),
            serial=serial,
            not_after=not_after,
        )

    def sign_client_csr(self, csr_pem: str, node_id: str, lifetime: dt.timedelta) -> IssuedCert:
        """Sign a node's CSR as a certificate for ``node_id``: clientAuth and serverAuth.

        The CSR's own subject is ignored: the hub decides the identity, the node only proves
        it holds the key. The node presents it to the hub (clientAuth) and serves its node
        API with it (serverAuth): a TLS client that checks the chain, such as doctor's
        ``daemon.health``, refuses a server certificate whose key usage leaves serverAuth out
        ("unsuitable certificate purpose"). Raises :class:`CsrRejected` with the reason.
        """
        try:
            csr = x509.load_pem_x509_csr(csr_pem.encode())
        except ValueError as exc:
            raise CsrRejected(f"csr is not a PEM certificate request: {exc}") from None
        try:
            valid = csr.is_signature_valid
            public_key = csr.public_key()
        except (ValueError, TypeError, x509.UnsupportedGeneralNameType) as exc:
            raise CsrRejected(f"csr cannot be read: {exc}") from None
        if not valid:
            raise CsrRejected("csr signature is invalid (the request was not signed by its key)")
        checked = check_key_policy(public_key)
        return self._sign(
            common_name=node_id,
            public_key=checked,
            san=[x509.DNSName(node_id)],
            ekus=[ExtendedKeyUsageOID.CLIENT_AUTH, ExtendedKeyUsageOID.SERVER_AUTH],
            lifetime=lifetime,
        )

    def issue_server_cert(self, host: str, directory: Path) -> tuple[Path, Path]:
        """Make (or reuse while valid for a day more) a serverAuth cert for ``host``."""
        cert_path, key_path = directory / "server.pem", directory / "server.key"
        if cert_path.exists() and key_path.exists():
            current = x509.load_pem_x509_certificate(cert_path.read_bytes())
            fresh = current.not_valid_after_utc - _now() > dt.timedelta(days=1)
            if fresh and current.issuer == self.cert.subject and _names(current) == _sans(host):
                return cert_path, key_path
        key = ec.generate_private_key(ec.SECP256R1())
        issued = self._sign(
            common_name=host,
            public_key=key.public_key(),
            san=_sans(host),
            ekus=[ExtendedKeyUsageOID.SERVER_AUTH],
            lifetime=dt.timedelta(days=365),
        )
        write_private(
            key_path,
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            ),
        )
        write_public(cert_path, issued.pem.encode())
        return cert_path, key_path


def _key_usage(
    *, signs_certificates: bool = False, key_encipherment: bool = False
) -> x509.KeyUsage:
    """The key usages of a hub certificate: the CA's also sign certificates and CRLs.

    One place for all nine flags, so the CA and its leaves cannot drift apart on the ones
    they share. An RSA leaf also enciphers keys, which TLS key exchange with RSA needs.
    """
    return x509.KeyUsage(
        digital_signature=True,
        key_cert_sign=signs_certificates,
        crl_sign=signs_certificates,
        key_encipherment=key_encipherment,
        content_commitment=False,
        data_encipherment=False,
        key_agreement=False,
        encipher_only=False,
        decipher_only=False,
    )


def _sans(host: str) -> list[x509.GeneralName]:
    names: list[x509.GeneralName] = []
    for name in dict.fromkeys([host, "localhost", "127.0.0.1"]):
        try:
            names.append(x509.IPAddress(ipaddress.ip_address(name)))
        except ValueError:
            names.append(x509.DNSName(name))
    return names


def _names(cert: x509.Certificate) -> list[x509.GeneralName]:
    try:
        ext = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName)
    except x509.ExtensionNotFound:
        return []
    return list(ext.value)


def check_key_policy(
    key: object,
) -> ec.EllipticCurvePublicKey | rsa.RSAPublicKey | ed25519.Ed25519PublicKey:
    """Allow EC P-256/P-384, Ed25519 and RSA >= 2048 bits; reject everything else."""
    if isinstance(key, ec.EllipticCurvePublicKey):
        if key.curve.name not in ALLOWED_CURVES:
            raise CsrRejected(f"EC curve {key.curve.name} not allowed (use P-256 or P-384)")
        return key
    if isinstance(key, rsa.RSAPublicKey):
        if key.key_size < MIN_RSA_BITS:
            raise CsrRejected(f"RSA key of {key.key_size} bits is too small (need >= 2048)")
        return key
    if isinstance(key, ed25519.Ed25519PublicKey):
        return key
    raise CsrRejected(f"key type {type(key).__name__} not allowed (use EC P-256, Ed25519 or RSA)")
