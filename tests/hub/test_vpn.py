"""WireGuard address allocation: one per node, stable per key, distinct under concurrency,
409 when full (tests/security/test_hub_vpn.py: moving keys, the per-wallet cap, release)."""

from __future__ import annotations

import base64
import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
from eth_account import Account
from eth_account.signers.local import LocalAccount

from tests.hub.conftest import bearer, login, register_node
from tests.support.hub import RunningHub, start_hub


def wg_key() -> str:
    return base64.b64encode(os.urandom(32)).decode()


def add(client: httpx.Client, token: str, key: str, node_id: str) -> httpx.Response:
    body = {"public_key": key, "node_id": node_id}
    return client.post("/v1/vpn/peers", json=body, headers=bearer(token))


def test_same_key_same_address_and_delete_frees(
    client: httpx.Client, stub_hub: RunningHub, wallet: LocalAccount
) -> None:
    token = login(client, wallet, stub_hub.siwe_domain)
    node = register_node(client, token)
    key = wg_key()
    first = add(client, token, key, node)
    assert first.status_code == 200
    body = first.json()
    assert body["address"].startswith("10.100.1.")
    assert body["allowed_ips"] == "10.100.0.0/16"
    assert body["persistent_keepalive"] == 25
    assert len(base64.b64decode(body["server_public_key"])) == 32
    assert add(client, token, key, node).json()["address"] == body["address"]
    gone = client.delete("/v1/vpn/peers", params={"public_key": key}, headers=bearer(token))
    assert gone.status_code == 204
    again = client.delete("/v1/vpn/peers", params={"public_key": key}, headers=bearer(token))
    assert again.status_code == 404


def test_another_wallet_cannot_take_or_delete_a_key(
    client: httpx.Client, stub_hub: RunningHub, wallet: LocalAccount
) -> None:
    token = login(client, wallet, stub_hub.siwe_domain)
    other = login(client, Account.create(), stub_hub.siwe_domain)
    key = wg_key()
    assert add(client, token, key, register_node(client, token)).status_code == 200
    taken = add(client, other, key, register_node(client, other))
    assert taken.status_code == 409
    assert taken.json()["detail"] == "this public key is registered to another wallet"
    assert (
        client.delete(
            "/v1/vpn/peers", params={"public_key": key}, headers=bearer(other)
        ).status_code
        == 404
    )


def test_public_keys_are_validated(
    client: httpx.Client, stub_hub: RunningHub, wallet: LocalAccount
) -> None:
    token = login(client, wallet, stub_hub.siwe_domain)
    node = register_node(client, token)
    for bad in ["", "not base64 at all!", base64.b64encode(os.urandom(31)).decode(), "A" * 44]:
        response = add(client, token, bad, node)
        assert response.status_code == 422, bad
        assert "public_key" in response.json()["detail"]


def test_fifty_concurrent_requests_get_fifty_distinct_addresses(tmp_path: Path) -> None:
    hub = start_hub(tmp_path / "hub", extra_args=["--vpn-peers-per-wallet", "50"])
    try:
        with hub.client() as client:
            token = login(client, Account.create(), hub.siwe_domain)
            nodes = [register_node(client, token) for _ in range(50)]
        with (
            hub.client(limits=httpx.Limits(max_connections=50)) as client,
            ThreadPoolExecutor(50) as pool,
        ):
            responses = list(pool.map(lambda n: add(client, token, wg_key(), n), nodes))
        assert [r.status_code for r in responses] == [200] * 50
        addresses = [r.json()["address"] for r in responses]
        assert len(set(addresses)) == 50
        assert all(a.startswith("10.100.1.") for a in addresses)
    finally:
        hub.stop()


def test_a_full_pool_is_409_until_a_peer_is_deleted(tmp_path: Path) -> None:
    hub = start_hub(tmp_path / "hub", extra_args=["--vpn-pool", "10.100.1.2-10.100.1.4"])
    try:
        with hub.client() as client:
            token = login(client, Account.create(), hub.siwe_domain)
            nodes = [register_node(client, token) for _ in range(4)]
            keys = [wg_key() for _ in range(3)]
            addresses = [
                add(client, token, k, n).json()["address"]
                for k, n in zip(keys, nodes[:3], strict=True)
            ]
            assert sorted(addresses) == ["10.100.1.2", "10.100.1.3", "10.100.1.4"]
            full = add(client, token, wg_key(), nodes[3])
            assert full.status_code == 409
            assert "is full" in full.json()["detail"]
            client.delete("/v1/vpn/peers", params={"public_key": keys[1]}, headers=bearer(token))
            reused = add(client, token, wg_key(), nodes[3])
            assert reused.json()["address"] == addresses[1]
    finally:
        hub.stop()


def test_another_spelling_of_a_key_is_refused(
    client: httpx.Client, stub_hub: RunningHub, wallet: LocalAccount
) -> None:
    # 32 bytes need 43 base64 digits: the last one carries 2 unused bits, so four strings
    # decode to the same key. Accepting them let another wallet hold a second address for
    # a key already registered (the 409 compares strings).
    token = login(client, wallet, stub_hub.siwe_domain)
    other = login(client, Account.create(), stub_hub.siwe_domain)
    raw = os.urandom(31) + b"\x00"
    key = base64.b64encode(raw).decode()
    variant = key[:42] + "B="
    assert base64.b64decode(variant) == raw
    assert add(client, token, key, register_node(client, token)).status_code == 200
    response = add(client, other, variant, register_node(client, other))
    assert response.status_code == 422
    assert "canonical" in response.json()["detail"]
    gone = client.delete("/v1/vpn/peers", params={"public_key": variant}, headers=bearer(token))
    assert gone.status_code == 422
