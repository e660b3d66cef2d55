"""The node API over TLS: /health for anyone who can reach the port, /v1/* for the hub CA's.

A small threaded HTTP server: each connection is accepted as plain TCP and wrapped in the
TLS context of the certificate on disk at that moment (:mod:`worldland_cli.daemon.tls`), in
its own thread, so a slow handshake never blocks the accept loop and a renewed certificate
is served without a restart. Connections are capped, and every read has a timeout, so a
client that holds connections open cannot starve the next one.
"""

from __future__ import annotations

import json
import socket
import ssl
import threading
from collections.abc import Callable, Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

from worldland_cli import __version__
from worldland_cli.auth.certs import CertError
from worldland_cli.daemon.logs import EventLog
from worldland_cli.daemon.tls import ServerIdentity

MAX_CONNECTIONS = 32
IO_TIMEOUT = 10.0


# A route: whether it needs a client certificate from the hub CA, and what it answers.
Route = tuple[bool, Callable[[], Mapping[str, Any]]]


class NodeApi(ThreadingHTTPServer):
    """Serve ``routes`` on ``address`` until :meth:`shutdown`."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(
        self,
        address: tuple[str, int],
        identity: ServerIdentity,
        routes: Mapping[str, Route],
        log: EventLog,
    ) -> None:
        if ":" in address[0]:
            self.address_family = socket.AF_INET6
        self.identity = identity
        self.routes = dict(routes)
        self.log = log
        self._slots = threading.BoundedSemaphore(MAX_CONNECTIONS)
        super().__init__(address, _Handler)

    @property
    def port(self) -> int:
        return int(self.server_address[1])

    def process_request(self, request: Any, client_address: Any) -> None:
        if not self._slots.acquire(blocking=False):
            self.log.debug("api.busy", client=client_address[0])
            self.shutdown_request(request)
            return
        try:
            super().process_request(request, client_address)
        except BaseException:
            self._slots.release()
            raise

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            self._slots.release()

    def finish_request(self, request: Any, client_address: Any) -> None:
        """The TLS handshake (in this connection's thread), then the request."""
        request.settimeout(IO_TIMEOUT)
        try:
            tls = self.identity.current().context.wrap_socket(request, server_side=True)
        except (ssl.SSLError, OSError, CertError) as e:
            self.log.debug("api.handshake_failed", client=client_address[0], error=str(e))
            return
        try:
            _Handler(tls, client_address, self)
        finally:
            tls.close()


class _Handler(BaseHTTPRequestHandler):
    server: NodeApi
    server_version = f"worldland-daemon/{__version__}"
    sys_version = ""

    def log_message(self, format: str, *args: Any) -> None:
        self.server.log.debug("api.request", client=self.client_address[0], line=format % args)

    def _answer(self, status: int, doc: Mapping[str, Any]) -> None:
        body = (json.dumps(doc, default=str) + "\n").encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        path = urlsplit(self.path).path
        route = self.server.routes.get(path)
        if route is None:
            self._answer(404, {"detail": f"no such path: {path}"})
            return
        needs_cert, answer = route
        if needs_cert and not self.connection.getpeercert():
            self._answer(
                403,
                {"detail": "present a client certificate issued by the hub CA (node.crt)"},
            )
            return
        try:
            doc = answer()
        except Exception as e:  # one failing part must not take the API down with it
            self.server.log.error("api.failed", path=path, error=f"{type(e).__name__}: {e}")
            self._answer(500, {"detail": f"{path} failed: {type(e).__name__}"})
            return
        self._answer(200, doc)

    def _not_allowed(self) -> None:
        self._answer(405, {"detail": "the node API only answers GET"})

    do_POST = do_PUT = do_DELETE = do_PATCH = _not_allowed
