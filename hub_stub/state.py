"""The hub's state, built once per app: configuration, store, CA, secrets, limiters, join source,
metrics and, when configured, settlement.

One object, kept on ``app.state.hub``, so that every endpoint reaches the same store, token
cache and rate limiters through the request (:data:`hub_stub.deps.TheHub`) rather than through
module globals: two apps in one process (tests, a restart) never share a database.
Building it creates what a first start needs: the private data directory, the database, the
CA, the admin token and the WireGuard server key.
"""

from __future__ import annotations

import base64
import secrets
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import x25519

from hub_stub import auth
from hub_stub.ca import CertificateAuthority, write_private
from hub_stub.config import HubConfig
from hub_stub.kube import JoinSource, KubeconfigJoin, NotConfigured, StaticJoin
from hub_stub.limits import RateLimiter
from hub_stub.metrics import HubMetrics
from hub_stub.settlement.ledger import ContractMismatch
from hub_stub.settlement.service import Settlement
from hub_stub.signer import KeyFileError
from hub_stub.store import Store
from hub_stub.vpn_config import server_key_path

# Logins are verified on this many threads at most, so a burst of them (each a signature
# recovery in pure Python) cannot take the interpreter from the event loop.
LOGIN_WORKERS = 2


class Hub:
    """The app's state: configuration, store, CA, secrets and the join source."""

    def __init__(self, config: HubConfig) -> None:
        private_data_dir(config.data_dir)
        self.config = config
        self.store = Store(config.data_dir / "hub.sqlite3")
        self.ca = CertificateAuthority(config.data_dir / "ca")
        self.admin_token = load_admin_token(config)
        self.tokens = auth.TokenCache()
        self.limits = {
            "open": RateLimiter(config.open_rate),
            "auth": RateLimiter(config.auth_rate),
            "claim": RateLimiter(config.claim_rate),
            "claim-wallet": RateLimiter(config.claim_rate),
        }
        self.verifier = ThreadPoolExecutor(LOGIN_WORKERS, thread_name_prefix="hub-login")
        self.vpn_server_public_key = config.vpn_server_public_key or vpn_server_key(config)
        self.vpn_endpoint = config.vpn_endpoint or f"{config.host}:41820"
        self.join: JoinSource
        if config.kubeconfig is not None:
            self.join = KubeconfigJoin(config.kubeconfig, config.bootstrap_token_ttl)
        elif config.kube_api_server and config.kube_token and config.kube_ca_hashes:
            self.join = StaticJoin(config.kube_api_server, config.kube_token, config.kube_ca_hashes)
        else:
            self.join = NotConfigured()
        self.metrics = HubMetrics()
        self.settlement: Settlement | None = None
        if config.settlement is not None:
            try:
                self.settlement = Settlement(self.store, config.settlement, self.metrics)
            except (KeyFileError, ContractMismatch) as exc:
                raise SystemExit(f"worldland-hub: {exc}") from None


def private_data_dir(path: Path) -> None:
    """Make the data directory and its subdirectories 0700, whoever made them first.

    Everything in it is the hub's alone: the database, the CA key, the admin token, the
    WireGuard and TLS keys. Directories an older hub (or a launcher) made 0755 are closed
    at start, so even the public certificates inside cannot be reached by other users.
    """
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    path.chmod(0o700)
    for sub in ("ca", "vpn", "tls"):
        if (path / sub).is_dir():
            (path / sub).chmod(0o700)


def load_admin_token(config: HubConfig) -> str:
    """Read the operator token, creating one (0600) on first start; refuse a readable file."""
    path = config.admin_token_file or config.data_dir / "admin-token"
    if not path.exists():
        write_private(path, (secrets.token_urlsafe(32) + "\n").encode())
    if path.stat().st_mode & 0o077:
        raise SystemExit(f"{path} is readable by group or others: chmod 600 {path}")
    token = path.read_text().strip()
    if len(token) < 16:
        raise SystemExit(f"{path}: the admin token must be at least 16 characters")
    return token


def vpn_server_key(config: HubConfig) -> str:
    """The WireGuard server public key: made once (private half 0600) when none is given."""
    path = server_key_path(config.data_dir)
    if not path.exists():
        raw = x25519.X25519PrivateKey.generate().private_bytes(
            serialization.Encoding.Raw,
            serialization.PrivateFormat.Raw,
            serialization.NoEncryption(),
        )
        write_private(path, base64.b64encode(raw) + b"\n")
    private = x25519.X25519PrivateKey.from_private_bytes(base64.b64decode(path.read_text()))
    public = private.public_key().public_bytes(
        serialization.Encoding.Raw, serialization.PublicFormat.Raw
    )
    return base64.b64encode(public).decode()
