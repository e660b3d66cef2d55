"""The node's mTLS identity: an EC P-256 key that never leaves the host, and the hub's cert.

Layout of the cert directory (default ``$WORLDLAND_HOME/certs``, the seed's ``-cert-dir``):
``node.key`` (0600), ``node.crt`` and ``ca.crt``.

Crash safety: a new key is generated in memory and written only after the hub has answered,
then ``ca.crt`` and finally ``node.crt``, each by atomic rename. An unreachable hub therefore
leaves nothing behind, and a bootstrap interrupted between the key and the certificate leaves
a complete key and no certificate; the next run reuses that key. Renewals keep the key: two
files cannot be replaced in one rename, and a node.key that did not match node.crt would
take the node offline.

:func:`ensure_certificate` is the single entry point for "make sure this node has a usable
certificate" that ``worldland register``, ``worldland certs`` and the daemon's renewal loop
share: it keeps a healthy certificate, renews one with less than a third of its lifetime left
(over mTLS with the current certificate when the hub speaks TLS), and issues one otherwise.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from worldland_cli import config as config_mod
from worldland_cli.auth.wallet import check_private_file
from worldland_cli.errors import ActionableError, ExitCode
from worldland_cli.host import Host
from worldland_cli.times import format_time

if TYPE_CHECKING:
    from cryptography import x509
    from cryptography.hazmat.primitives.asymmetric.types import CertificateIssuerPrivateKeyTypes

    from worldland_cli.hubclient import HubClient, HubEndpoint, IssuedCert

KEY_NAME = "node.key"
CERT_NAME = "node.crt"
CA_NAME = "ca.crt"
RENEW_FRACTION = 1 / 3

Action = Literal["kept", "issued", "renewed"]


class CertError(ActionableError):
    """The certificate directory holds something unusable, or the hub sent a bad cert."""

    exit_code = ExitCode.FAILED


@dataclass(frozen=True)
class CertPaths:
    directory: Path

    @property
    def key(self) -> str:
        return str(self.directory / KEY_NAME)

    @property
    def cert(self) -> str:
        return str(self.directory / CERT_NAME)

    @property
    def ca(self) -> str:
        return str(self.directory / CA_NAME)

    @classmethod
    def of(cls, cert_dir: str | Path | None) -> CertPaths:
        base = Path(cert_dir).expanduser() if cert_dir else config_mod.default_cert_dir()
        return cls(base.absolute())


@dataclass(frozen=True)
class CertStatus:
    """What `certs status` shows; ``present`` False means no node.crt yet."""

    cert_dir: str
    present: bool
    key_present: bool
    ca_present: bool
    subject: str | None = None
    node_id: str | None = None
    serial: str | None = None
    not_before: dt.datetime | None = None
    not_after: dt.datetime | None = None
    key_matches: bool | None = None
    issued_by_ca: bool | None = None
    expired: bool = False
    renew_after: dt.datetime | None = None
    needs_renewal: bool = False

    @property
    def usable(self) -> bool:
        """Present, in date, matching node.key and signed by ca.crt: what the hub accepts."""
        return (
            self.present
            and not self.expired
            and self.key_matches is True
            and self.issued_by_ca is True
        )

    def to_json(self) -> dict[str, Any]:
        def t(value: dt.datetime | None) -> str | None:
            return format_time(value) if value else None

        return {
            "cert_dir": self.cert_dir,
            "present": self.present,
            "key_present": self.key_present,
            "ca_present": self.ca_present,
            "subject": self.subject,
            "node_id": self.node_id,
            "serial": self.serial,
            "not_before": t(self.not_before),
            "not_after": t(self.not_after),
            "key_matches": self.key_matches,
            "issued_by_ca": self.issued_by_ca,
            "expired": self.expired,
            "renew_after": t(self.renew_after),
            "needs_renewal": self.needs_renewal,
        }


@dataclass(frozen=True)
class CertOutcome:
    action: Action
    status: CertStatus


def _host(host: Host | None) -> Host:
    return host or Host(root=Path("/"))


def renew_after(not_before: dt.datetime, not_after: dt.datetime) -> dt.datetime:
    """When a third of the lifetime is left (a 7-day cert: 2 days 8 hours before expiry)."""
    return not_after - (not_after - not_before) * RENEW_FRACTION


def _public_der(key: Any) -> bytes:
    """SubjectPublicKeyInfo DER of a public key, or of a private key's public half."""
    from cryptography.hazmat.primitives import serialization

    public = key if hasattr(key, "public_bytes") else key.public_key()
    return bytes(
        public.public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )


def _load_key(host: Host, paths: CertPaths) -> CertificateIssuerPrivateKeyTypes | None:
    """The existing node key (mode checked like a wallet key), or None when absent."""
    from cryptography.hazmat.primitives import serialization

    if not host.exists(paths.key):
        return None
    check_private_file(host, paths.key, "node key")
    data = host.read_bytes(paths.key) or b""
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError):
        raise CertError(
            f"{paths.key} is not an unencrypted PEM private key",
            f"move it away and bootstrap again: mv {paths.key} {paths.key}.bad && "
            "worldland certs bootstrap",
        ) from None
    return key  # type: ignore[return-value]


def _load_cert(host: Host, path: str) -> x509.Certificate | None:
    from cryptography import x509

    data = host.read_bytes(path)
    if data is None:
        return None
    try:
        return x509.load_pem_x509_certificate(data)
    except ValueError:
        raise CertError(
            f"{path} is not a PEM certificate",
            "issue a fresh one with `worldland certs bootstrap`",
        ) from None


def _signed_by(cert: x509.Certificate, ca: x509.Certificate) -> bool:
    from cryptography.exceptions import InvalidSignature

    try:
        cert.verify_directly_issued_by(ca)
    except (ValueError, TypeError, InvalidSignature):
        return False
    return True


def cert_status(
    cert_dir: str | Path | None = None, host: Host | None = None, now: dt.datetime | None = None
) -> CertStatus:
    """Subject, validity, renewal time and whether node.key matches node.crt."""
    from cryptography.x509.oid import NameOID

    h = _host(host)
    paths = CertPaths.of(cert_dir)
    current = now or dt.datetime.now(dt.UTC)
    key = _load_key(h, paths)
    cert = _load_cert(h, paths.cert)
    ca = _load_cert(h, paths.ca)
    base = CertStatus(
        cert_dir=str(paths.directory),
        present=cert is not None,
        key_present=key is not None,
        ca_present=ca is not None,
    )
    if cert is None:
        return base
    names = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    not_before, not_after = cert.not_valid_before_utc, cert.not_valid_after_utc
    due = renew_after(not_before, not_after)
    issued_by_ca = None if ca is None else _signed_by(cert, ca)
    return CertStatus(
        cert_dir=base.cert_dir,
        present=True,
        key_present=base.key_present,
        ca_present=base.ca_present,
        subject=cert.subject.rfc4514_string(),
        node_id=str(names[0].value) if names else None,
        serial=format(cert.serial_number, "x"),
        not_before=not_before,
        not_after=not_after,
        key_matches=None if key is None else _public_der(key) == _public_der(cert.public_key()),
        issued_by_ca=issued_by_ca,
        expired=current >= not_after,
        renew_after=due,
        needs_renewal=current >= due,
    )


def build_csr(key: CertificateIssuerPrivateKeyTypes, node_id: str) -> str:
    """A CSR naming the node (the hub sets the subject itself, but says what we asked for)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.x509.oid import NameOID

    csr = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, node_id)]))
        .sign(key, hashes.SHA256())
    )
    return csr.public_bytes(serialization.Encoding.PEM).decode()


def _new_key() -> CertificateIssuerPrivateKeyTypes:
    from cryptography.hazmat.primitives.asymmetric import ec

    return ec.generate_private_key(ec.SECP256R1())


def _key_pem(key: CertificateIssuerPrivateKeyTypes) -> bytes:
    from cryptography.hazmat.primitives import serialization

    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _check_issued(issued: IssuedCert, key: Any, node_id: str) -> None:
    """Refuse a certificate that is not for our key or not signed by the CA sent with it."""
    from cryptography import x509

    try:
        cert = x509.load_pem_x509_certificate(issued.certificate.encode())
        ca = x509.load_pem_x509_certificate(issued.ca_certificate.encode())
    except ValueError:
        raise CertError("the hub sent a certificate that is not PEM") from None
    if _public_der(cert.public_key()) != _public_der(key):
        raise CertError("the hub sent a certificate for another key; nothing was saved")
    if not _signed_by(cert, ca):
        raise CertError("the hub's certificate is not signed by the CA it sent; nothing was saved")
    names = cert.subject.get_attributes_for_oid(x509.oid.NameOID.COMMON_NAME)
    if not names or names[0].value != node_id:
        raise CertError(f"the hub sent a certificate for another node (expected {node_id})")


def _save(
    host: Host,
    paths: CertPaths,
    key: CertificateIssuerPrivateKeyTypes,
    key_is_new: bool,
    issued: IssuedCert,
) -> None:
    """key (if new, never over an existing one), then CA, then certificate, each atomic."""
    if not host.exists(str(paths.directory)):
        host.makedirs(str(paths.directory), mode=0o700)
    if key_is_new:
        host.create_exclusive(paths.key, _key_pem(key), mode=0o600)
    host.write_atomic(paths.ca, issued.ca_certificate, mode=0o644)
    host.write_atomic(paths.cert, issued.certificate, mode=0o644)


def _issue(
    client: HubClient,
    host: Host,
    paths: CertPaths,
    node_id: str,
    key: CertificateIssuerPrivateKeyTypes | None,
) -> None:
    key_is_new = key is None
    use = key if key is not None else _new_key()
    issued = client.issue_cert(node_id, build_csr(use, node_id))
    _check_issued(issued, use, node_id)
    _save(host, paths, use, key_is_new, issued)


def ensure_certificate(
    endpoint: HubEndpoint,
    node_id: str,
    *,
    cert_dir: str | Path | None = None,
    token: str | Callable[[], str] | None = None,
    host: Host | None = None,
    now: dt.datetime | None = None,
    force: bool = False,
    **client_kwargs: Any,
) -> CertOutcome:
    """Keep, renew or issue the node certificate so that it is valid for ``node_id``.

    - a certificate for this node, matching node.key, with more than a third of its life
      left is kept (unless ``force``);
    - one that is due is renewed over mutual TLS with itself when the hub serves HTTPS (no
      login needed: what the daemon does unattended), else with the bearer token;
    - a missing, expired, foreign or mismatched one is issued afresh with the bearer token.

    ``token`` is a bearer token or a callable that produces one (e.g. a silent re-login),
    asked for only when it is needed. Raises HubError/CertError/NotLoggedIn.
    """
    from worldland_cli.auth.session import NotLoggedIn
    from worldland_cli.hubclient import HubDenied, HubUnreachable

    h = _host(host)
    paths = CertPaths.of(cert_dir)
    status = cert_status(paths.directory, h, now)
    key = _load_key(h, paths)
    usable = (
        status.present
        and status.node_id == node_id
        and status.key_matches is True
        and not status.expired
    )
    if usable and not status.needs_renewal and not force:
        return CertOutcome("kept", status)
    if usable and endpoint.url.startswith("https://"):
        try:
            with endpoint.client(client_cert=(paths.cert, paths.key), **client_kwargs) as mtls:
                _issue(mtls, h, paths, node_id, key)
            return CertOutcome("renewed", cert_status(paths.directory, h, now))
        except (HubDenied, HubUnreachable):
            if token is None:
                raise
    bearer = token() if callable(token) else token
    if bearer is None:
        raise NotLoggedIn(
            f"node {node_id} needs a certificate and that needs a login",
            "run `worldland login`, then `worldland certs bootstrap`",
        )
    with endpoint.client(token=bearer, **client_kwargs) as client:
        _issue(client, h, paths, node_id, key)
    return CertOutcome("renewed" if usable else "issued", cert_status(paths.directory, h, now))
