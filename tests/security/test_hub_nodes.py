"""A GPU belongs to one wallet: another wallet cannot register it as its own node.

Before: wallet B could post wallet A's host and GPU UUIDs and get a node of its own for
them (a second claim on the same hardware, to be paid for A's GPUs).
"""

from __future__ import annotations

import uuid

import httpx
import pytest
from eth_account import Account
from eth_account.signers.local import LocalAccount

from tests.hub.conftest import bearer, login
from tests.support.hub import RunningHub


def node_body(*uuids: str, host: str = "gpu-box") -> dict[str, object]:
    return {
        "host": host,
        "gpus": [{"name": "Tesla T4", "memory_mib": 15360, "uuid": u} for u in uuids],
        "price_per_sec_wei": "1000",
    }


@pytest.fixture
def owners(
    client: httpx.Client, stub_hub: RunningHub, wallet: LocalAccount
) -> tuple[str, str, str]:
    """(A's token, B's token, a GPU UUID registered by A)."""
    a = login(client, wallet, stub_hub.siwe_domain)
    b = login(client, Account.create(), stub_hub.siwe_domain)
    gpu = f"GPU-{uuid.uuid4()}"
    created = client.post("/v1/nodes", json=node_body(gpu), headers=bearer(a))
    assert created.status_code == 201
    return a, b, gpu


def test_another_wallet_cannot_register_a_registered_gpu(
    client: httpx.Client, owners: tuple[str, str, str]
) -> None:
    _, b, gpu = owners
    for body in (
        node_body(gpu),  # the same host and GPU
        node_body(gpu, host="elsewhere"),
        node_body(f"GPU-{uuid.uuid4()}", gpu),  # hidden among GPUs of its own
        node_body(gpu.upper()),  # another spelling of the same UUID
    ):
        response = client.post("/v1/nodes", json=body, headers=bearer(b))
        assert response.status_code == 409, body
        assert "registered to another wallet" in response.json()["detail"]
    assert client.get("/v1/nodes", headers=bearer(b)).json() == {"nodes": []}


def test_the_owner_can_still_update_its_node_and_name_its_gpu_elsewhere(
    client: httpx.Client, owners: tuple[str, str, str]
) -> None:
    a, b, gpu = owners
    again = client.post("/v1/nodes", json=node_body(gpu), headers=bearer(a))
    assert again.status_code == 200
    elsewhere = client.post("/v1/nodes", json=node_body(gpu, host="new-host"), headers=bearer(a))
    assert elsewhere.status_code == 201
    # B's own GPUs on the same host name are B's business.
    mine = client.post("/v1/nodes", json=node_body(f"GPU-{uuid.uuid4()}"), headers=bearer(b))
    assert mine.status_code == 201


def test_a_deregistered_node_frees_its_gpus_and_can_come_back(
    client: httpx.Client, stub_hub: RunningHub, owners: tuple[str, str, str]
) -> None:
    a, b, gpu = owners
    node = client.post("/v1/nodes", json=node_body(gpu), headers=bearer(a)).json()["node_id"]
    assert client.delete(f"/v1/nodes/{node}", headers=bearer(a)).status_code == 204
    # Registered again by its owner: the same node, listed, holding its GPU again.
    back = client.post("/v1/nodes", json=node_body(gpu), headers=bearer(a))
    assert back.status_code == 200
    assert back.json() == {"node_id": node, "created": False}
    assert [n["node_id"] for n in client.get("/v1/nodes", headers=bearer(a)).json()["nodes"]] == [
        node
    ]
    assert client.post("/v1/nodes", json=node_body(gpu), headers=bearer(b)).status_code == 409
    # Deregistered and taken by another wallet: now the first owner is refused.
    assert client.delete(f"/v1/nodes/{node}", headers=bearer(a)).status_code == 204
    assert client.post("/v1/nodes", json=node_body(gpu), headers=bearer(b)).status_code == 201
    assert client.post("/v1/nodes", json=node_body(gpu), headers=bearer(a)).status_code == 409
