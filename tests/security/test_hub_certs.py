"""A node certificate stops working the moment another one is issued for its node.

Before: renewal issued a new certificate and left the old one valid until it expired, so a
stolen certificate kept working after the node renewed, and could renew itself forever.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

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
from tests.support.hub import RunningHub


class Node:
    """A node on the TLS hub: its owner's token and a way to get certificates for it."""

    def __init__(self, hub: RunningHub, directory: Path) -> None:
        self.hub = hub
        self.directory = directory
        with hub.client() as client:
            self.token = login(client, Account.create(), hub.siwe_domain)
            self.node_id = register_node(client, self.token)
        self.count = 0

    def save(self, key: Any, response: httpx.Response) -> tuple[str, str]:
        assert response.status_code == 200, response.text
        self.count += 1
        return write_identity(
            self.directory, f"cert{self.count}", key, response.json()["certificate"]
        )

    def bootstrap(self) -> tuple[str, str]:
        """A certificate issued on the owner's bearer token."""
        key, csr = make_csr()
        with self.hub.client() as client:
            body = {"node_id": self.node_id, "csr": csr}
            return self.save(key, client.post("/v1/certs", json=body, headers=bearer(self.token)))

    def renew(self, identity: tuple[str, str]) -> httpx.Response:
        """Renewal authenticated by ``identity`` alone, as the daemon does it."""
        with mtls_client(self.hub, identity) as client:
            return client.post("/v1/certs", json={"node_id": self.node_id, "csr": make_csr()[1]})

    def heartbeat(self, identity: tuple[str, str]) -> int:
        with mtls_client(self.hub, identity) as client:
            return client.post(f"/v1/nodes/{self.node_id}/heartbeat", json={}).status_code


@pytest.fixture
def node(tls_hub: RunningHub, tmp_path: Path) -> Node:
    return Node(tls_hub, tmp_path)


def test_a_renewed_certificate_is_revoked(node: Node) -> None:
    first = node.bootstrap()
    assert node.heartbeat(first) == 200
    assert node.renew(first).status_code == 200
    assert node.heartbeat(first) == 401
    again = node.renew(first)
    assert again.status_code == 401  # a replaced certificate cannot renew itself
    assert node.heartbeat(first) == 401


def test_a_new_bootstrap_revokes_the_certificate_in_use(node: Node) -> None:
    stolen = node.bootstrap()
    current = node.bootstrap()  # the owner re-registers after noticing the theft
    assert node.heartbeat(stolen) == 401
    assert node.heartbeat(current) == 200
    assert node.renew(stolen).status_code == 401


def test_revocation_applies_to_an_open_connection(node: Node) -> None:
    identity = node.bootstrap()
    with mtls_client(node.hub, identity) as client:  # one keep-alive connection throughout
        url = f"/v1/nodes/{node.node_id}/heartbeat"
        assert client.post(url, json={}).status_code == 200
        node.bootstrap()
        refused = client.post(url, json={})
        assert refused.status_code == 401
        event = {
            "event_id": "ev-1",
            "node_id": node.node_id,
            "pod_id": "pod-1",
            "gpu_count": 1,
            "start": "2026-01-01T00:00:00Z",
            "end": "2026-01-01T00:00:10Z",
            "price_per_sec_wei": "1000",
        }
        assert client.post("/v1/usage", json=[event]).status_code == 401


def test_the_renewed_certificate_works_and_renews(node: Node) -> None:
    first = node.bootstrap()
    key, csr = make_csr()
    with mtls_client(node.hub, first) as client:
        response = client.post("/v1/certs", json={"node_id": node.node_id, "csr": csr})
    second = node.save(key, response)
    assert node.heartbeat(second) == 200
    assert node.renew(second).status_code == 200


def test_a_certificate_renews_once_even_when_asked_concurrently(node: Node) -> None:
    first = node.bootstrap()
    with ThreadPoolExecutor(6) as pool:
        answers = list(pool.map(lambda _: node.renew(first).status_code, range(6)))
    assert sorted(answers) == [200] + [401] * 5
