"""`worldland-hub vpn server-config`: the VPN server's wg-quick config, from the hub's peers.

Rendered from the real hub's database after real allocations, then brought up for real:
`wg-quick up` in a network namespace, on userspace WireGuard (wireguard-go), must end with
the hub's server key and one /32 per node.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from eth_account import Account

from hub_stub.vpn_config import ServerPeer, render_server_config
from tests.hub.conftest import bearer, login, register_node
from tests.support.hub import REPO, RunningHub
from tests.support.netns import in_netns, namespace, skip_reason


def server_config(hub: RunningHub, *extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "hub_stub", "vpn", "server-config", "--data-dir",
         str(hub.data_dir), *extra],
        capture_output=True, text=True, cwd=REPO, timeout=60,
    )  # fmt: skip


def wg_keypair() -> tuple[str, str]:
    private = subprocess.run(["wg", "genkey"], capture_output=True, text=True, check=True).stdout
    public = subprocess.run(
        ["wg", "pubkey"], input=private, capture_output=True, text=True, check=True
    ).stdout
    return private.strip(), public.strip()


def test_the_config_has_one_peer_per_node_and_no_secret() -> None:
    peers = [
        ServerPeer("n-2", "B" * 43 + "=", "10.100.1.3"),
        ServerPeer("n-1", "A" * 43 + "=", "10.100.1.2"),
    ]
    text = render_server_config(peers, Path("/srv/hub/vpn/server.key"), 41820)
    assert text.splitlines()[1:] == [
        "[Interface]",
        "Address = 10.100.0.1/16",
        "ListenPort = 41820",
        "PostUp = wg set %i private-key /srv/hub/vpn/server.key",
        "",
        "[Peer]",
        "# node n-2",
        f"PublicKey = {'B' * 43}=",
        "AllowedIPs = 10.100.1.3/32",
        "",
        "[Peer]",
        "# node n-1",
        f"PublicKey = {'A' * 43}=",
        "AllowedIPs = 10.100.1.2/32",
    ]


def test_a_missing_database_or_key_is_one_line(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "hub_stub", "vpn", "server-config", "--data-dir", str(tmp_path)],
        capture_output=True, text=True, cwd=REPO,
    )  # fmt: skip
    assert result.returncode == 1
    expected = f"worldland-hub: no hub database in {tmp_path} (start the hub once)"
    assert result.stderr.strip() == expected


def test_wg_quick_brings_up_the_server_with_every_allocated_peer(
    stub_hub: RunningHub, client: httpx.Client, tmp_path: Path
) -> None:
    reason = skip_reason("wg", "wg-quick", "wireguard-go")
    if reason:
        pytest.skip(reason)
    token = login(client, Account.create(), stub_hub.siwe_domain)
    keys = {}
    for _ in range(2):
        node = register_node(client, token)
        _, public = wg_keypair()
        answer = client.post(
            "/v1/vpn/peers", json={"public_key": public, "node_id": node}, headers=bearer(token)
        )
        assert answer.status_code == 200, answer.text
        keys[public] = answer.json()["address"]
    conf = tmp_path / "wlsrv.conf"
    written = server_config(stub_hub, "--output", str(conf), "--listen-port", "51820")
    assert written.returncode == 0, written.stderr
    assert conf.stat().st_mode & 0o777 == 0o600
    text = conf.read_text()
    secret = (stub_hub.data_dir / "vpn" / "server.key").read_text().strip()
    assert secret not in text
    assert server_config(stub_hub, "--listen-port", "51820").stdout == text  # printed alike
    with namespace("wl-vpn") as ns:
        up = in_netns(ns, "wg-quick", "up", str(conf))
        assert up.returncode == 0, up.stderr
        shown = in_netns(ns, "wg", "show", "wlsrv", "dump").stdout.splitlines()
    interface, *peers = (line.split("\t") for line in shown)
    server_public = client.get("/v1/info").json()["vpn_server_public_key"]
    assert interface[1:3] == [server_public, "51820"]
    allocated = {peer[0]: peer[3] for peer in peers}
    for public, address in keys.items():
        assert allocated[public] == f"{address}/32"
