"""The hub's configuration: what ``worldland-hub`` flags become, in one frozen object."""

from __future__ import annotations

import datetime as dt
import ipaddress
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

from hub_stub.limits import AUTH_RATE, CLAIM_RATE, OPEN_RATE, Rate
from hub_stub.settlement.config import SettlementConfig
from worldland_cli.auth.origin import Origin, origin

DEFAULT_VPN_POOL = (ipaddress.IPv4Address("10.100.1.2"), ipaddress.IPv4Address("10.100.1.254"))


@dataclass(frozen=True)
class HubConfig:
    """Everything the app needs; defaults follow the seed documents and docs/hub-api.md."""

    data_dir: Path
    host: str = "127.0.0.1"
    port: int = 8080
    # The URL people and nodes use to reach the hub (behind a proxy, say); None: what it
    # serves, scheme://host:port. SIWE messages must name it (domain and URI).
    public_url: str | None = None
    chain_ids: tuple[int, ...] = (1,)
    admin_token_file: Path | None = None
    tls_cert: Path | None = None
    tls_key: Path | None = None
    tls_self: bool = False
    cert_lifetime: dt.timedelta = dt.timedelta(days=7)
    token_ttl: dt.timedelta = dt.timedelta(hours=24)
    nonce_ttl: dt.timedelta = dt.timedelta(minutes=5)
    transfer_ttl: dt.timedelta = dt.timedelta(hours=24)
    online_window: dt.timedelta = dt.timedelta(seconds=90)
    # How far a SIWE issued-at may lie in the future (clients' clocks drift a little).
    clock_skew: dt.timedelta = dt.timedelta(seconds=60)
    # Per client address: /health, /v1/info and the API schema; nonces and logins (each
    # login costs a signature recovery); transfer-code claims (also per wallet).
    open_rate: Rate = OPEN_RATE
    auth_rate: Rate = AUTH_RATE
    claim_rate: Rate = CLAIM_RATE
    # Unspent, unexpired nonces the hub holds at most (a flood from many addresses).
    max_pending_nonces: int = 100_000
    vpn_pool: tuple[ipaddress.IPv4Address, ipaddress.IPv4Address] = DEFAULT_VPN_POOL
    # Nodes with a VPN address per wallet: enough for a rack of GPU boxes, far from the pool.
    vpn_peers_per_wallet: int = 16
    vpn_server_public_key: str | None = None
    vpn_endpoint: str | None = None
    kube_api_server: str | None = None
    kube_token: str | None = None
    kube_ca_hashes: tuple[str, ...] = field(default_factory=tuple)
    kubeconfig: Path | None = None
    bootstrap_token_ttl: dt.timedelta = dt.timedelta(hours=24)
    # On-chain settlement (docs/settlement.md); None: the ledger is kept, nothing is paid.
    settlement: SettlementConfig | None = None

    @cached_property
    def origin(self) -> Origin:
        """The public URL, normalised: what a login message must name."""
        if self.public_url is not None:
            return origin(self.public_url)
        host = f"[{self.host}]" if ":" in self.host else self.host
        return origin(f"{'https' if self.tls else 'http'}://{host}:{self.port}")

    @property
    def siwe_domain(self) -> str:
        """The EIP-4361 domain of this hub: its public URL's authority."""
        return self.origin.domain

    @property
    def tls(self) -> bool:
        """Whether the hub serves HTTPS (and therefore can see node client certificates)."""
        return self.tls_self or self.tls_cert is not None
