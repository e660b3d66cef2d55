"""Node registry: idempotent registration, heartbeat, online/offline, ownership, join params."""

from __future__ import annotations

import sqlite3
import uuid

import httpx
from eth_account import Account
from eth_account.signers.local import LocalAccount

from tests.hub.conftest import bearer, login, path_of, register_node
from tests.support.hub import RunningHub

NODE = {
    "host": "gpu-box-1",
    "gpus": [
        {"name": "Tesla T4", "memory_mib": 15360, "uuid": "GPU-aaaa"},
        {"name": "Tesla T4", "memory_mib": 15360, "uuid": "GPU-bbbb"},
    ],
    "price_per_sec_wei": "1000000000",
    "labels": {"zone": "us-central1-a"},
}


def fresh_node() -> dict[str, object]:
    """NODE with GPU UUIDs of its own: a GPU can be registered by one wallet only."""
    gpus = [
        {"name": "Tesla T4", "memory_mib": 15360, "uuid": f"GPU-{uuid.uuid4()}"} for _ in range(2)
    ]
    return dict(NODE, gpus=gpus)


def test_reregistering_the_same_host_and_gpus_updates(
    client: httpx.Client, stub_hub: RunningHub, wallet: LocalAccount
) -> None:
    token = login(client, wallet, stub_hub.siwe_domain)
    node = fresh_node()
    first = client.post("/v1/nodes", json=node, headers=bearer(token))
    assert first.status_code == 201
    assert first.json()["created"] is True
    # Same GPUs in another order and a new price: the same node, updated.
    again = dict(node, gpus=list(reversed(node["gpus"])), price_per_sec_wei=7)  # type: ignore[call-overload]
    second = client.post("/v1/nodes", json=again, headers=bearer(token))
    assert second.status_code == 200
    assert second.json() == {"node_id": first.json()["node_id"], "created": False}
    nodes = client.get("/v1/nodes", headers=bearer(token)).json()["nodes"]
    assert len(nodes) == 1
    assert nodes[0]["price_per_sec_wei"] == "7"
    assert nodes[0]["labels"] == {"zone": "us-central1-a"}
    # Another wallet registering the same host with GPUs of its own gets its own node; with
    # the first wallet's GPUs it gets a 409 (tests/security/test_hub_nodes.py).
    other = login(client, Account.create(), stub_hub.siwe_domain)
    third = client.post("/v1/nodes", json=fresh_node(), headers=bearer(other))
    assert third.status_code == 201
    assert third.json()["node_id"] != first.json()["node_id"]


def test_heartbeat_makes_a_node_online_and_age_makes_it_offline(
    client: httpx.Client, stub_hub: RunningHub, wallet: LocalAccount
) -> None:
    token = login(client, wallet, stub_hub.siwe_domain)
    node_id = register_node(client, token)
    listed = client.get("/v1/nodes", headers=bearer(token)).json()["nodes"]
    assert listed[0]["online"] is False
    assert listed[0]["last_seen"] is None
    beat = client.post(f"/v1/nodes/{node_id}/heartbeat", json={}, headers=bearer(token))
    assert beat.status_code == 200
    listed = client.get("/v1/nodes", headers=bearer(token)).json()["nodes"]
    assert listed[0]["online"] is True
    assert listed[0]["last_seen"] == beat.json()["last_seen"]
    with sqlite3.connect(path_of(stub_hub)) as db:
        db.execute("UPDATE nodes SET last_seen = last_seen - 91 WHERE node_id = ?", (node_id,))
    listed = client.get("/v1/nodes", headers=bearer(token)).json()["nodes"]
    assert listed[0]["online"] is False


def test_heartbeat_without_body_is_accepted(
    client: httpx.Client, stub_hub: RunningHub, wallet: LocalAccount
) -> None:
    token = login(client, wallet, stub_hub.siwe_domain)
    node_id = register_node(client, token)
    assert client.post(f"/v1/nodes/{node_id}/heartbeat", headers=bearer(token)).status_code == 200


def test_other_wallets_cannot_touch_a_node(
    client: httpx.Client, stub_hub: RunningHub, wallet: LocalAccount
) -> None:
    node_id = register_node(client, login(client, wallet, stub_hub.siwe_domain))
    stranger = login(client, Account.create(), stub_hub.siwe_domain)
    beat = client.post(f"/v1/nodes/{node_id}/heartbeat", json={}, headers=bearer(stranger))
    assert beat.status_code == 403
    assert client.get("/v1/nodes", headers=bearer(stranger)).json() == {"nodes": []}
    missing = client.post(f"/v1/nodes/{uuid.uuid4()}/heartbeat", json={}, headers=bearer(stranger))
    assert missing.status_code == 404


def test_join_returns_the_stub_configuration(
    client: httpx.Client, stub_hub: RunningHub, wallet: LocalAccount
) -> None:
    token = login(client, wallet, stub_hub.siwe_domain)
    node_id = register_node(client, token)
    response = client.post(f"/v1/nodes/{node_id}/join", headers=bearer(token))
    assert response.status_code == 200
    assert response.json() == {
        "api_server": "10.0.0.1:6443",
        "token": "abcdef.0123456789abcdef",
        "ca_cert_hashes": ["sha256:" + "ab" * 32],
    }


def test_join_without_configuration_says_how_to_configure(hub: RunningHub) -> None:
    with hub.client() as client:
        token = login(client, Account.create(), hub.siwe_domain)
        node_id = register_node(client, token)
        response = client.post(f"/v1/nodes/{node_id}/join", headers=bearer(token))
    assert response.status_code == 503
    assert "--kubeconfig" in response.json()["detail"]


def test_bad_bodies_get_a_readable_422_and_write_nothing(
    client: httpx.Client, stub_hub: RunningHub, wallet: LocalAccount
) -> None:
    token = login(client, wallet, stub_hub.siwe_domain)
    bad_bodies = [
        dict(NODE, price_per_sec_wei="-1"),
        dict(NODE, price_per_sec_wei=1.5),
        dict(NODE, price_per_sec_wei=str(2**256)),
        dict(NODE, gpus=[NODE["gpus"][0], NODE["gpus"][0]]),  # type: ignore[index]
        dict(NODE, host="bad host\n"),
        dict(NODE, surprise=True),
    ]
    for body in bad_bodies:
        response = client.post("/v1/nodes", json=body, headers=bearer(token))
        assert response.status_code == 422, body
        assert isinstance(response.json()["detail"], str)
    broken = client.post(
        "/v1/nodes",
        content=b"{not json",
        headers={**bearer(token), "content-type": "application/json"},
    )
    assert broken.status_code == 422
    assert isinstance(broken.json()["detail"], str)
    assert client.get("/v1/nodes", headers=bearer(token)).json() == {"nodes": []}


def test_wei_as_integer_is_accepted_and_returned_as_string(
    client: httpx.Client, stub_hub: RunningHub, wallet: LocalAccount
) -> None:
    token = login(client, wallet, stub_hub.siwe_domain)
    body = dict(fresh_node(), price_per_sec_wei=2**70)
    assert client.post("/v1/nodes", json=body, headers=bearer(token)).status_code == 201
    nodes = client.get("/v1/nodes", headers=bearer(token)).json()["nodes"]
    assert nodes[0]["price_per_sec_wei"] == str(2**70)


def test_openapi_is_served(client: httpx.Client) -> None:
    spec = client.get("/openapi.json").json()
    assert "/v1/auth/login" in spec["paths"]
    assert "/v1/vpn/peers" in spec["paths"]
