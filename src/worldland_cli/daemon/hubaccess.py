"""How the daemon reaches the hub: one client, kept until the credentials change.

On an HTTPS hub the daemon authenticates with the node's client certificate (no login, no
wallet key needed unattended); the client is made again when node.crt changes (a renewal),
since TLS credentials are loaded when a client is built. On a plain-HTTP hub there is no
client certificate to present, so the daemon uses the owner's session, logging in again
silently with the configured wallet key file when it is missing or refused
(:func:`worldland_cli.auth.relogin.live_session`, as the seed's daemon did at every start).
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

from worldland_cli.auth.certs import CertPaths
from worldland_cli.auth.relogin import SignIn, live_session
from worldland_cli.auth.session import clear_session
from worldland_cli.config import Config
from worldland_cli.daemon.logs import EventLog
from worldland_cli.host import Host
from worldland_cli.hubclient import HubEndpoint

if TYPE_CHECKING:
    from worldland_cli.hubclient import HubClient

# The daemon retries on its own schedule (backoff in the heartbeat and the sender), so a
# call fails fast instead of retrying inside the client.
CALL_TIMEOUT = 10.0


class HubAccess:
    """The hub client for heartbeats, usage and renewals; safe to share between threads."""

    def __init__(
        self,
        endpoint: HubEndpoint,
        certs: CertPaths,
        cfg: Config,
        sign_in: SignIn,
        host: Host,
        log: EventLog,
    ) -> None:
        self.endpoint = endpoint
        self.certs = certs
        self.cfg = cfg
        self.sign_in = sign_in
        self.host = host
        self.log = log
        self.mtls = endpoint.url.startswith("https://")
        self._lock = threading.Lock()
        self._client: HubClient | None = None
        self._made_with: bytes | None = None

    def client(self) -> HubClient:
        """The current client; a new one when node.crt changed since the last was made."""
        cert = self.host.read_bytes(self.certs.cert) if self.mtls else None
        with self._lock:
            if self._client is not None and cert == self._made_with:
                return self._client
            old, self._client = self._client, None
        if old is not None:
            old.close()
        if self.mtls:
            fresh = self.endpoint.client(
                client_cert=(self.certs.cert, self.certs.key), retries=0, timeout=CALL_TIMEOUT
            )
        else:
            fresh = self.endpoint.client(token=self.token(), retries=0, timeout=CALL_TIMEOUT)
        with self._lock:
            self._client, self._made_with = fresh, cert
        return fresh

    def token(self) -> str:
        """A live bearer token of the node's owner (a silent login when needed)."""
        session = live_session(
            self.cfg,
            self.sign_in,
            host=self.host,
            notice=lambda line: self.log.info("hub.login", detail=line),
            retries=0,
            timeout=CALL_TIMEOUT,
        )
        return session.token

    def refused(self) -> None:
        """The hub refused our credentials: drop them, so the next call makes new ones."""
        with self._lock:
            old, self._client = self._client, None
        if old is not None:
            old.close()
        if not self.mtls:
            clear_session(self.endpoint.url, self.host)

    def close(self) -> None:
        with self._lock:
            old, self._client = self._client, None
        if old is not None:
            old.close()
