"""Expose the TLS peer certificate to the app through the ASGI ``tls`` extension.

uvicorn verifies client certificates (``ssl_cert_reqs=CERT_OPTIONAL`` + ``ssl_ca_certs``: a
certificate is requested, one that does not chain to the hub CA fails the handshake, none at
all is allowed so people can still log in), but it does not tell the app *who* the peer is.
This h11 protocol subclass reads the verified peer certificate once per connection, right
after the handshake, and wraps the app so every request's scope carries
``scope["extensions"]["tls"]`` as the ASGI TLS extension specifies (``client_cert_chain`` is a
list of PEM strings, leaf first). The app then never touches transports or sockets.
"""

from __future__ import annotations

import asyncio
import ssl
from typing import Any

from uvicorn.protocols.http.h11_impl import H11Protocol


class PeerCertH11Protocol(H11Protocol):
    """uvicorn's h11 protocol plus the ASGI TLS extension in each request scope."""

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        ssl_object = transport.get_extra_info("ssl_object")
        if not isinstance(ssl_object, ssl.SSLObject | ssl.SSLSocket):
            return
        der = ssl_object.getpeercert(binary_form=True)
        chain = [ssl.DER_cert_to_PEM_cert(der)] if der else []
        cipher = ssl_object.cipher()
        tls: dict[str, Any] = {
            "server_cert": None,
            "client_cert_chain": chain,
            "client_cert_name": None,
            "client_cert_error": None,
            "tls_version": None,
            "cipher_suite": None,
            "version_name": ssl_object.version(),
            "cipher_name": cipher[0] if cipher else None,
        }
        inner = self.app

        async def with_tls(scope: Any, receive: Any, send: Any) -> None:
            scope.setdefault("extensions", {})["tls"] = tls
            await inner(scope, receive, send)

        self.app = with_tls
