"""The hub's configuration: what ``worldland-hub`` flags become, in one frozen object."""

from __future__ import annotations

import datetime as dt
import ipaddress
from dataclasses import dataclass, field
from pathlib import Path

DEFAULT_VPN_POOL = (ipaddress.IPv4Address("10.100.1.2"), ipaddress.IPv4Address("10.100.1.254"))


@dataclass(frozen=True)
class HubConfig:
    """Everything the app needs; defaults follow the seed documents and docs/hub-api.md."""

    data_dir: Path
    siwe_domain: str
    host: str = "127.0.0.1"
    port: int = 8080
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

    @property
    def tls(self) -> bool:
        """Whether the hub serves HTTPS (and therefore can see node client certificates)."""
        return self.tls_self or self.tls_cert is not None
