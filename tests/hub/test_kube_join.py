"""``--kubeconfig`` join: a real bootstrap token Secret minted through the kubernetes client.

The cluster is tests/support/fakekube.py over TLS (its certificate from a throwaway CA), so the
hub's kubernetes client really parses the kubeconfig, verifies the API server and POSTs the
Secret; the test then reads the Secret back from the fake cluster's state.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from eth_account import Account

from hub_stub.ca import CertificateAuthority
from tests.hub.conftest import bearer, login, register_node
from tests.support.fakekube import Cluster, FakeKube, start_fake_kube
from tests.support.hub import RunningHub, start_hub


@pytest.fixture(scope="module")
def cluster_ca(tmp_path_factory: pytest.TempPathFactory) -> CertificateAuthority:
    return CertificateAuthority(tmp_path_factory.mktemp("cluster-ca"))


@pytest.fixture(scope="module")
def fake_kube(
    cluster_ca: CertificateAuthority, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[FakeKube]:
    cert, key = cluster_ca.issue_server_cert("127.0.0.1", tmp_path_factory.mktemp("apiserver"))
    with start_fake_kube(Cluster(), tls=(cert, key, cluster_ca.cert_pem)) as kube:
        yield kube


@pytest.fixture(scope="module")
def kube_hub(fake_kube: FakeKube, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningHub]:
    data = tmp_path_factory.mktemp("kubehub")
    kubeconfig = fake_kube.write_kubeconfig(data / "admin.conf")
    running = start_hub(data / "hub", extra_args=["--kubeconfig", str(kubeconfig)])
    yield running
    running.stop()


def test_join_mints_a_bootstrap_token_secret(
    kube_hub: RunningHub, fake_kube: FakeKube, cluster_ca: CertificateAuthority
) -> None:
    with kube_hub.client() as client:
        token = login(client, Account.create(), kube_hub.siwe_domain)
        node_id = register_node(client, token)
        response = client.post(f"/v1/nodes/{node_id}/join", headers=bearer(token))
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["api_server"] == fake_kube.url.removeprefix("https://")
    token_id, _, secret_part = body["token"].partition(".")
    assert len(token_id) == 6 and len(secret_part) == 16
    spki = (
        x509.load_pem_x509_certificate(cluster_ca.cert_pem.encode())
        .public_key()
        .public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    assert body["ca_cert_hashes"] == ["sha256:" + hashlib.sha256(spki).hexdigest()]

    secret = fake_kube.cluster.secrets[("kube-system", f"bootstrap-token-{token_id}")]
    assert secret["type"] == "bootstrap.kubernetes.io/token"
    data = {k: base64.b64decode(v).decode() for k, v in secret["data"].items()}
    assert data["token-id"] == token_id
    assert data["token-secret"] == secret_part
    assert data["usage-bootstrap-authentication"] == "true"
    assert data["usage-bootstrap-signing"] == "true"
    assert data["auth-extra-groups"] == "system:bootstrappers:kubeadm:default-node-token"
    expires = dt.datetime.fromisoformat(data["expiration"].replace("Z", "+00:00"))
    remaining = expires - dt.datetime.now(dt.UTC)
    assert dt.timedelta(hours=23) < remaining <= dt.timedelta(hours=24)
    assert node_id in data["description"]


def test_each_join_gets_its_own_token(kube_hub: RunningHub, fake_kube: FakeKube) -> None:
    with kube_hub.client() as client:
        token = login(client, Account.create(), kube_hub.siwe_domain)
        node_id = register_node(client, token)
        first = client.post(f"/v1/nodes/{node_id}/join", headers=bearer(token)).json()["token"]
        second = client.post(f"/v1/nodes/{node_id}/join", headers=bearer(token)).json()["token"]
    assert first != second
    for value in (first, second):
        assert ("kube-system", f"bootstrap-token-{value[:6]}") in fake_kube.cluster.secrets


def test_unreachable_cluster_is_503_with_reason(
    cluster_ca: CertificateAuthority, tmp_path: Path
) -> None:
    cert, key = cluster_ca.issue_server_cert("127.0.0.1", tmp_path / "apiserver")
    with start_fake_kube(Cluster(), tls=(cert, key, cluster_ca.cert_pem)) as kube:
        kubeconfig = kube.write_kubeconfig(tmp_path / "admin.conf")
    hub = start_hub(tmp_path / "hub", extra_args=["--kubeconfig", str(kubeconfig)])
    try:
        with hub.client() as client:
            token = login(client, Account.create(), hub.siwe_domain)
            node_id = register_node(client, token)
            response = client.post(f"/v1/nodes/{node_id}/join", headers=bearer(token))
        assert response.status_code == 503
        assert "cannot reach the Kubernetes API" in response.json()["detail"]
    finally:
        hub.stop()
