"""Usage is billed only for a pod the hub placed on that node, at the node's price, once.

Before: the ledger took overlapping 300-day intervals for a pod that did not exist, at 1e30
wei/s, from a node registered at 1000 wei/s.
"""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

import httpx
import pytest
from eth_account.signers.local import LocalAccount

from tests.hub.conftest import bearer, login, register_node, register_pod
from tests.support.hub import RunningHub
from worldland_cli.hubclient import HubClient, PodSsh, UsageEvent

T0 = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)


def at(seconds: float) -> str:
    return (T0 + dt.timedelta(seconds=seconds)).strftime("%Y-%m-%dT%H:%M:%SZ")


class Provider:
    """A wallet with a one-GPU node at 1000 wei/s, and a pod placed on it."""

    def __init__(self, client: httpx.Client, hub: RunningHub, wallet: LocalAccount) -> None:
        self.client = client
        self.hub = hub
        self.token = login(client, wallet, hub.siwe_domain)
        self.node = register_node(client, self.token)
        self.pod = register_pod(client, hub, wallet.address, node_id=self.node)

    def event(self, start: float, end: float, **changes: Any) -> dict[str, Any]:
        return {
            "event_id": str(uuid.uuid4()),
            "node_id": self.node,
            "pod_id": self.pod,
            "gpu_count": 1,
            "start": at(start),
            "end": at(end),
            "price_per_sec_wei": "1000",
            **changes,
        }

    def post(self, *events: dict[str, Any]) -> httpx.Response:
        return self.client.post("/v1/usage", json=list(events), headers=bearer(self.token))

    def billed(self) -> dict[str, Any]:
        response = self.client.get(
            "/v1/usage", params={"node_id": self.node}, headers=bearer(self.token)
        )
        return dict(response.json())


@pytest.fixture
def provider(client: httpx.Client, stub_hub: RunningHub, wallet: LocalAccount) -> Provider:
    return Provider(client, stub_hub, wallet)


def test_the_reported_abuse_is_refused(provider: Provider) -> None:
    days = 300 * 86400
    abuse = [
        provider.event(0, days, pod_id="no-such-pod", price_per_sec_wei=str(10**30)),
        provider.event(1, days + 1, pod_id="no-such-pod", price_per_sec_wei=str(10**30)),
    ]
    assert provider.post(*abuse).status_code == 422
    assert provider.billed()["events"] == 0


def test_the_pod_must_be_known(provider: Provider) -> None:
    response = provider.post(provider.event(0, 10, pod_id="no-such-pod"))
    assert response.status_code == 422
    assert "pod no-such-pod is unknown" in response.json()["detail"]


def test_the_pod_must_run_on_that_node(
    client: httpx.Client, stub_hub: RunningHub, wallet: LocalAccount, provider: Provider
) -> None:
    other_node = register_node(client, provider.token)
    elsewhere = register_pod(client, stub_hub, wallet.address, node_id=other_node)
    nowhere = register_pod(client, stub_hub, wallet.address)
    for pod, said in ((elsewhere, "does not run on node"), (nowhere, "is not placed on a node")):
        response = provider.post(provider.event(0, 10, pod_id=pod))
        assert response.status_code == 422
        assert said in response.json()["detail"]
    assert provider.billed()["events"] == 0


def test_the_price_is_the_nodes_registered_price(provider: Provider) -> None:
    response = provider.post(provider.event(0, 10, price_per_sec_wei=str(10**30)))
    assert response.status_code == 422
    assert "registered price 1000 wei/s" in response.json()["detail"]
    cheaper = provider.post(provider.event(0, 10, price_per_sec_wei="1"))
    assert cheaper.status_code == 422
    assert provider.post(provider.event(0, 10)).status_code == 200


def test_no_more_gpus_than_the_node_registered(provider: Provider) -> None:
    response = provider.post(provider.event(0, 10, gpu_count=1024))
    assert response.status_code == 422
    assert "1 GPU" in response.json()["detail"]


def test_intervals_of_a_pod_never_overlap(provider: Provider) -> None:
    first = provider.event(0, 100)
    assert provider.post(first).json() == {"accepted": 1, "duplicates": 0}
    for start, end in ((50, 150), (-50, 1), (10, 20), (-10, 200)):
        response = provider.post(provider.event(start, end))
        assert response.status_code == 409, (start, end)
        assert first["event_id"] in response.json()["detail"]
    # Back to back is fine, and a resent event stays a duplicate, not an overlap.
    assert provider.post(provider.event(100, 160), first).json() == {"accepted": 1, "duplicates": 1}
    # Two events of one batch may not overlap each other either.
    batch = provider.post(provider.event(200, 300), provider.event(250, 260))
    assert batch.status_code == 409
    assert provider.billed() == {
        "node_id": provider.node,
        "seconds": 160,
        "wei": str(160 * 1000),
        "events": 2,
    }


def test_a_node_with_pods_is_not_deregistered(
    client: httpx.Client, stub_hub: RunningHub, wallet: LocalAccount, provider: Provider
) -> None:
    refused = client.delete(f"/v1/nodes/{provider.node}", headers=bearer(provider.token))
    assert refused.status_code == 409
    assert provider.pod in refused.json()["detail"]
    register_pod(client, stub_hub, wallet.address, pod_id=provider.pod)  # moved off the node
    gone = client.delete(f"/v1/nodes/{provider.node}", headers=bearer(provider.token))
    assert gone.status_code == 204
    # A pod cannot be placed on a deregistered (or unknown) node.
    for node in (provider.node, str(uuid.uuid4())):
        body = {
            "pod_id": provider.pod,
            "renter_address": wallet.address,
            "ssh_host": "127.0.0.1",
            "ssh_port": 22,
            "ssh_user": "root",
            "host_key": "ssh-ed25519 AAAA",
            "node_id": node,
        }
        placed = client.post("/v1/admin/pods", json=body, headers=bearer(stub_hub.admin_token))
        assert placed.status_code == 422
        assert f"node {node} is not a registered node" in placed.json()["detail"]


def test_the_hub_client_places_pods_and_bills_them(
    client: httpx.Client, stub_hub: RunningHub, wallet: LocalAccount
) -> None:
    token = login(client, wallet, stub_hub.siwe_domain)
    node = register_node(client, token)
    pod = PodSsh("pod-" + uuid.uuid4().hex[:8], "127.0.0.1", 22, "root", "ssh-ed25519 AAAA")
    usage = UsageEvent("ev-1", node, pod.pod_id, 1, T0, T0 + dt.timedelta(seconds=5), 1000)
    with HubClient(stub_hub.url, token=token) as hub:
        hub.admin_register_pod(stub_hub.admin_token, pod, wallet.address, node_id=node)
        assert hub.post_usage([usage]).accepted == 1
        assert hub.usage(node).wei == 5000
