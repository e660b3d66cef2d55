"""The node API's TLS identity: the node's certificate, reloaded without a restart.

The server presents node.crt (issued by the hub CA for the node id, with serverAuth) and asks
every client for a certificate, verifying one that is offered against ca.crt: a certificate
from another CA fails the handshake, none at all gets through to /health only (the API refuses
/v1/* without one). A context is made per certificate: each new connection gets the context
of the certificate on disk at that moment (checked at most once a second), so a renewal,
by the daemon or by `worldland certs renew`, is served from the next connection on.
"""

from __future__ import annotations

import datetime as dt
import ssl
import threading
import time
from dataclasses import dataclass

from worldland_cli.auth.certs import CertError, CertPaths
from worldland_cli.host import Host

RECHECK_SECONDS = 1.0


@dataclass(frozen=True)
class Served:
    """The certificate being served."""

    context: ssl.SSLContext
    pem: bytes
    not_after: dt.datetime


def describe(pem: bytes) -> tuple[dt.datetime, bool]:
    """(expiry, whether its key usage allows serving TLS) of a certificate."""
    from cryptography import x509
    from cryptography.x509.oid import ExtendedKeyUsageOID

    cert = x509.load_pem_x509_certificate(pem)
    try:
        usages = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
        server_auth = ExtendedKeyUsageOID.SERVER_AUTH in list(usages)
    except x509.ExtensionNotFound:
        server_auth = True  # no EKU: any purpose
    return cert.not_valid_after_utc, server_auth


class ServerIdentity:
    """Hands each new connection the context for the certificate on disk now."""

    def __init__(self, host: Host, paths: CertPaths) -> None:
        self.host = host
        self.paths = paths
        self._lock = threading.Lock()
        self._served: Served | None = None
        self._checked = 0.0

    def current(self) -> Served:
        """The context to accept a connection with (made again after node.crt changed)."""
        with self._lock:
            now = time.monotonic()
            if self._served is not None and now - self._checked < RECHECK_SECONDS:
                return self._served
            self._checked = now
            pem = self.host.read_bytes(self.paths.cert)
            if pem is None:
                if self._served is not None:
                    return self._served
                raise CertError(
                    f"no node certificate at {self.paths.cert}", "run `worldland register`"
                )
            if self._served is None or pem != self._served.pem:
                self._served = self._load(pem)
            return self._served

    def _load(self, pem: bytes) -> Served:
        ca = self.host.read_text(self.paths.ca)
        if ca is None:
            raise CertError(f"no hub CA at {self.paths.ca}", "run `worldland certs bootstrap`")
        try:
            not_after, _ = describe(pem)
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.minimum_version = ssl.TLSVersion.TLSv1_2
            context.load_cert_chain(
                str(self.host.path(self.paths.cert)), str(self.host.path(self.paths.key))
            )
            context.load_verify_locations(cadata=ca)
            context.verify_mode = ssl.CERT_OPTIONAL
        except (ValueError, OSError, ssl.SSLError) as e:
            raise CertError(
                f"cannot serve TLS with {self.paths.cert}: {e}",
                "check it with `worldland certs status`; `worldland certs renew` replaces it",
            ) from None
        return Served(context, pem, not_after)
