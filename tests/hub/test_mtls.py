"""Node identity over mTLS against the HTTPS hub: renewal, heartbeat, and strangers refused."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from cryptography import x509
from eth_account import Account

from hub_stub.ca import CertificateAuthority
from tests.hub.conftest import (
    bearer,
    login,
    make_csr,
    mtls_client,
    register_node,
    register_pod,
    write_identity,
)
from tests.support.hub import RunningHub


@pytest.fixture
def node(tls_hub: RunningHub, tmp_path: Path) -> Iterator[tuple[str, str, tuple[str, str]]]:
    """(owner token, node id, client cert identity) on the TLS hub."""
    with tls_hub.client() as client:
        token = login(client, Account.create(), tls_hub.siwe_domain)
        node_id = register_node(client, token)
        key, csr = make_csr()
        response = client.post(
            "/v1/certs", json={"node_id": node_id, "csr": csr}, headers=bearer(token)
        )
        assert response.status_code == 200
    yield token, node_id, write_identity(tmp_path, "node", key, response.json()["certificate"])


def test_https_serves_a_cert_from_the_hub_ca(tls_hub: RunningHub) -> None:
    with tls_hub.client() as client:
        assert client.get("/health").json()["status"] == "ok"
        assert client.get("/v1/info").json()["tls"] is True


def test_renewal_is_authenticated_by_the_current_cert(
    tls_hub: RunningHub, node: tuple[str, str, tuple[str, str]], tmp_path: Path
) -> None:
    _, node_id, identity = node
    new_key, csr = make_csr()
    with mtls_client(tls_hub, identity) as client:
        response = client.post("/v1/certs", json={"node_id": node_id, "csr": csr})
    assert response.status_code == 200, response.text
    renewed = x509.load_pem_x509_certificate(response.json()["certificate"].encode())
    assert renewed.public_key() == new_key.public_key()
    renewed_identity = write_identity(tmp_path, "renewed", new_key, response.json()["certificate"])
    with mtls_client(tls_hub, renewed_identity) as client:
        beat = client.post(f"/v1/nodes/{node_id}/heartbeat", json={})
    assert beat.status_code == 200
    assert beat.json()["node_id"] == node_id


def test_a_node_cert_cannot_act_for_another_node(
    tls_hub: RunningHub, node: tuple[str, str, tuple[str, str]]
) -> None:
    token, _, identity = node
    with tls_hub.client() as client:
        other = register_node(client, token)
    with mtls_client(tls_hub, identity) as client:
        assert client.post(f"/v1/nodes/{other}/heartbeat", json={}).status_code == 403
        renewal = client.post("/v1/certs", json={"node_id": other, "csr": make_csr()[1]})
        assert renewal.status_code == 403


def test_without_cert_or_token_node_calls_are_401(
    tls_hub: RunningHub, node: tuple[str, str, tuple[str, str]]
) -> None:
    _, node_id, _ = node
    with tls_hub.client() as client:
        assert client.post(f"/v1/nodes/{node_id}/heartbeat", json={}).status_code == 401


def test_cert_from_another_ca_fails_the_handshake(
    tls_hub: RunningHub, node: tuple[str, str, tuple[str, str]], tmp_path: Path
) -> None:
    _, node_id, _ = node
    rogue_ca = CertificateAuthority(tmp_path / "rogue")
    key, csr = make_csr()
    import datetime as dt

    forged = rogue_ca.sign_client_csr(csr, node_id, dt.timedelta(days=1))
    identity = write_identity(tmp_path, "forged", key, forged.pem)
    with mtls_client(tls_hub, identity) as client, pytest.raises(httpx.TransportError):
        client.post(f"/v1/nodes/{node_id}/heartbeat", json={})


def test_a_node_cert_posts_its_own_usage_and_vpn_peer(
    tls_hub: RunningHub, node: tuple[str, str, tuple[str, str]]
) -> None:
    import base64
    import os

    token, node_id, identity = node
    with tls_hub.client() as client:
        other = register_node(client, token)
        pod_id = register_pod(client, tls_hub, Account.create().address, node_id=node_id)
    usage = {
        "event_id": f"ev-{node_id}",
        "node_id": node_id,
        "pod_id": pod_id,
        "gpu_count": 1,
        "start": "2026-01-01T00:00:00Z",
        "end": "2026-01-01T00:00:10Z",
        "price_per_sec_wei": 1000,
    }
    with mtls_client(tls_hub, identity) as client:
        assert client.post("/v1/usage", json=[usage]).json() == {"accepted": 1, "duplicates": 0}
        foreign = dict(usage, event_id=f"ev-{other}", node_id=other)
        assert client.post("/v1/usage", json=[foreign]).status_code == 403
        peer = client.post(  # the certificate names the node: no node_id needed
            "/v1/vpn/peers", json={"public_key": base64.b64encode(os.urandom(32)).decode()}
        )
        assert peer.status_code == 200
        assert peer.json()["node_id"] == node_id
    with tls_hub.client() as client:
        total = client.get("/v1/usage", params={"node_id": node_id}, headers=bearer(token))
    assert total.json()["wei"] == "10000"
