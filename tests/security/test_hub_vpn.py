"""VPN addresses: one per registered node, a cap per wallet, released when the node goes.

Before: any logged-in wallet got a fresh address for every public key it posted, so one
wallet could take all 253 addresses of the pool and no provider could join.
"""

from __future__ import annotations

import base64
import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from eth_account import Account

from tests.hub.conftest import (
    bearer,
    login,
    make_csr,
    mtls_client,
    register_node,
    write_identity,
)
from tests.support.hub import RunningHub, start_hub
from worldland_cli.hubclient import HubClient, HubRejected


def wg_key() -> str:
    return base64.b64encode(os.urandom(32)).decode()


def add(
    client: httpx.Client, token: str | None, key: str, node_id: str | None = None
) -> httpx.Response:
    body = {"public_key": key} if node_id is None else {"public_key": key, "node_id": node_id}
    headers = bearer(token) if token else {}
    return client.post("/v1/vpn/peers", json=body, headers=headers)


@pytest.fixture
def small_pool(tmp_path: Path) -> Iterator[RunningHub]:
    """A hub with five addresses and a cap of two per wallet."""
    hub = start_hub(
        tmp_path / "hub",
        extra_args=["--vpn-pool", "10.100.1.2-10.100.1.6", "--vpn-peers-per-wallet", "2"],
    )
    yield hub
    hub.stop()


def test_one_wallet_cannot_take_the_pool(tmp_path: Path) -> None:
    hub = start_hub(tmp_path / "hub", extra_args=["--vpn-pool", "10.100.1.2-10.100.1.6"])
    try:
        with hub.client() as client:
            hoarder = login(client, Account.create(), hub.siwe_domain)
            node = register_node(client, hoarder)
            taken = set()
            for _ in range(8):  # every way of asking, with a new key each time
                for answer in (
                    add(client, hoarder, wg_key()),
                    add(client, hoarder, wg_key(), node),
                ):
                    if answer.status_code == 200:
                        taken.add(answer.json()["address"])
            assert len(taken) == 1
            provider = login(client, Account.create(), hub.siwe_domain)
            theirs = add(client, provider, wg_key(), register_node(client, provider))
            assert theirs.status_code == 200, theirs.text
    finally:
        hub.stop()


def test_a_bearer_names_the_node_and_a_new_key_moves_its_address(
    client: httpx.Client, stub_hub: RunningHub
) -> None:
    token = login(client, Account.create(), stub_hub.siwe_domain)
    node = register_node(client, token)
    no_node = add(client, token, wg_key())
    assert no_node.status_code == 422
    assert "node_id" in no_node.json()["detail"]
    old_key, new_key = wg_key(), wg_key()
    first = add(client, token, old_key, node)
    assert first.status_code == 200
    assert first.json()["node_id"] == node
    moved = add(client, token, new_key, node)
    assert moved.json()["address"] == first.json()["address"]
    assert moved.json()["public_key"] == new_key
    # The old key no longer holds anything.
    gone = client.delete("/v1/vpn/peers", params={"public_key": old_key}, headers=bearer(token))
    assert gone.status_code == 404
    # A key serves one node.
    other = register_node(client, token)
    reused = add(client, token, new_key, other)
    assert reused.status_code == 409
    assert node in reused.json()["detail"]


def test_strangers_cannot_add_peers_for_a_node(client: httpx.Client, stub_hub: RunningHub) -> None:
    owner = login(client, Account.create(), stub_hub.siwe_domain)
    node = register_node(client, owner)
    stranger = login(client, Account.create(), stub_hub.siwe_domain)
    assert add(client, stranger, wg_key(), node).status_code == 403
    assert add(client, stranger, wg_key(), str(uuid.uuid4())).status_code == 404


def test_a_wallet_holds_at_most_its_cap(small_pool: RunningHub) -> None:
    with small_pool.client() as client:
        token = login(client, Account.create(), small_pool.siwe_domain)
        nodes = [register_node(client, token) for _ in range(3)]
        assert add(client, token, wg_key(), nodes[0]).status_code == 200
        assert add(client, token, wg_key(), nodes[1]).status_code == 200
        third = add(client, token, wg_key(), nodes[2])
        assert third.status_code == 409
        assert "at most 2" in third.json()["detail"]
        # Another key for a node that has an address is no new address: within the cap.
        assert add(client, token, wg_key(), nodes[1]).status_code == 200
        # Deregistering a node gives its address back.
        gone = client.delete(f"/v1/nodes/{nodes[0]}", headers=bearer(token))
        assert gone.status_code == 204
        assert add(client, token, wg_key(), nodes[2]).status_code == 200


def test_the_cap_defaults_to_16(client: httpx.Client, stub_hub: RunningHub) -> None:
    token = login(client, Account.create(), stub_hub.siwe_domain)
    answers = [add(client, token, wg_key(), register_node(client, token)) for _ in range(17)]
    assert [a.status_code for a in answers] == [200] * 16 + [409]


def test_deregistration_releases_everything_the_node_held(
    tls_hub: RunningHub, tmp_path: Path
) -> None:
    with tls_hub.client() as client:
        owner = login(client, Account.create(), tls_hub.siwe_domain)
        gpu = f"GPU-{uuid.uuid4()}"
        body = {
            "host": "box",
            "gpus": [{"name": "Tesla T4", "memory_mib": 15360, "uuid": gpu}],
            "price_per_sec_wei": "1000",
        }
        node = client.post("/v1/nodes", json=body, headers=bearer(owner)).json()["node_id"]
        key, csr = make_csr()
        issued = client.post("/v1/certs", json={"node_id": node, "csr": csr}, headers=bearer(owner))
        identity = write_identity(tmp_path, "node", key, issued.json()["certificate"])
        with mtls_client(tls_hub, identity) as as_node:
            peer = add(as_node, None, wg_key())  # the node's own certificate names the node
            assert peer.status_code == 200, peer.text
            assert peer.json()["node_id"] == node
            # The node itself may not deregister (a stolen certificate must not either).
            assert as_node.delete(f"/v1/nodes/{node}").status_code == 401
        stranger = login(client, Account.create(), tls_hub.siwe_domain)
        assert client.delete(f"/v1/nodes/{node}", headers=bearer(stranger)).status_code == 403

        assert client.delete(f"/v1/nodes/{node}", headers=bearer(owner)).status_code == 204

        assert client.get("/v1/nodes", headers=bearer(owner)).json() == {"nodes": []}
        beat = client.post(f"/v1/nodes/{node}/heartbeat", json={}, headers=bearer(owner))
        assert beat.status_code == 404
        assert "deregistered" in beat.json()["detail"]
        with mtls_client(tls_hub, identity) as as_node:  # its certificate is revoked
            assert as_node.post(f"/v1/nodes/{node}/heartbeat", json={}).status_code == 401
        # Its GPU may now be registered by another wallet.
        taken = client.post("/v1/nodes", json=body, headers=bearer(stranger))
        assert taken.status_code == 201
        # Its address is free: the pool hands it out again.
        address = add(client, stranger, wg_key(), taken.json()["node_id"]).json()["address"]
        assert address == peer.json()["address"]
        again = client.delete(f"/v1/nodes/{node}", headers=bearer(owner))
        assert again.status_code == 204  # a retry changes nothing


def test_the_hub_client_names_the_node_and_deregisters_it(stub_hub: RunningHub) -> None:
    with stub_hub.client() as client:
        token = login(client, Account.create(), stub_hub.siwe_domain)
        node = register_node(client, token)
    key = wg_key()
    with HubClient(stub_hub.url, token=token) as hub:
        peer = hub.add_vpn_peer(key, node)
        assert (peer.node_id, peer.public_key) == (node, key)
        assert hub.add_vpn_peer(key, node).address == peer.address
        hub.delete_node(node)
        hub.delete_node(node)  # a retried DELETE after a lost answer
        with pytest.raises(HubRejected) as refused:
            hub.add_vpn_peer(key, node)
    assert refused.value.status == 404
    assert "deregistered" in (refused.value.detail or "")
