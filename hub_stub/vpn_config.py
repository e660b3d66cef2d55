"""The VPN server's side: its wg-quick config, with a peer for every address the hub gave out.

Seed 002's VPN manager keeps the WireGuard server (10.100.0.1 in 10.100.0.0/16, UDP 41820)
in step with its address book; here the hub's database is the address book
(``POST /v1/vpn/peers`` allocates, deregistering a node releases), and
``worldland-hub vpn server-config`` renders it for ``wg-quick``. Re-rendering after nodes
come and go and running ``wg syncconf`` (or restarting ``wg-quick@wg0``) keeps the server
current.

The private key never appears in the text: ``PostUp`` loads it from the hub's own key file
(``wg set %i private-key FILE``), so the config can be printed, diffed and put in a support
bundle without leaking it.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from pathlib import Path

from hub_stub.store import Store

SERVER_ADDRESS = "10.100.0.1/16"
LISTEN_PORT = 41820


def server_key_path(data_dir: Path) -> Path:
    """Where the hub keeps the VPN server's private key (made 0600 on first start)."""
    return data_dir / "vpn" / "server.key"


@dataclass(frozen=True)
class ServerPeer:
    """One node's WireGuard key and the one address the hub gave it."""

    node_id: str
    public_key: str
    address: str


def server_peers(store: Store) -> list[ServerPeer]:
    """Every allocated peer, in address order (so the rendered config is stable)."""
    with store.read() as db:
        rows = db.execute("SELECT node_id, public_key, address FROM vpn_peers").fetchall()
    peers = [ServerPeer(str(r["node_id"]), str(r["public_key"]), str(r["address"])) for r in rows]
    return sorted(peers, key=lambda p: ipaddress.IPv4Address(p.address))


def render_server_config(
    peers: list[ServerPeer], key_file: Path, listen_port: int = LISTEN_PORT
) -> str:
    """The wg-quick text of the server interface: no secret in it, one [Peer] per node."""
    lines = [
        "# Written by `worldland-hub vpn server-config`; render it again when nodes change.",
        "[Interface]",
        f"Address = {SERVER_ADDRESS}",
        f"ListenPort = {listen_port}",
        f"PostUp = wg set %i private-key {key_file}",
    ]
    for peer in peers:
        lines += [
            "",
            "[Peer]",
            f"# node {peer.node_id}",
            f"PublicKey = {peer.public_key}",
            f"AllowedIPs = {peer.address}/32",
        ]
    return "\n".join(lines) + "\n"
