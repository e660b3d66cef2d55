"""Hub tests: real hub subprocesses, real wallet keys, real certificates.

Hubs are module-scoped where tests do not interfere (each test uses its own fresh wallet),
because starting one costs about two seconds.
"""

from __future__ import annotations

import datetime as dt
import ssl
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from eth_account import Account
from eth_account.messages import encode_defunct
from eth_account.signers.local import LocalAccount

from tests.support.hub import RunningHub, hub, module_hub, start_hub

__all__ = ["hub", "module_hub"]

HOST_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGJ0ZXN0a2V5Zm9ydGVzdHM"
STUB_JOIN = [
    "--kube-api-server", "10.0.0.1:6443",
    "--kube-token", "abcdef.0123456789abcdef",
    "--kube-ca-hash", "sha256:" + "ab" * 32,
]  # fmt: skip


def siwe_message(
    domain: str,
    address: str,
    nonce: str,
    *,
    chain_id: int = 1,
    issued_at: dt.datetime | None = None,
    expires_in: dt.timedelta | None = dt.timedelta(minutes=10),
    uri: str | None = None,
) -> str:
    """An EIP-4361 message as a wallet would be asked to sign it (URI default http://DOMAIN)."""
    from siwe import SiweMessage

    issued = issued_at or dt.datetime.now(dt.UTC)
    fields: dict[str, Any] = {
        "domain": domain,
        "address": address,
        "statement": "Sign in to Worldland",
        "uri": uri or f"http://{domain}",
        "version": "1",
        "chain_id": chain_id,
        "nonce": nonce,
        "issued_at": issued.strftime("%Y-%m-%dT%H:%M:%S.000Z"),
    }
    if expires_in is not None:
        fields["expiration_time"] = (issued + expires_in).strftime("%Y-%m-%dT%H:%M:%S.000Z")
    return str(SiweMessage(**fields).prepare_message())


def sign(account: LocalAccount, message: str) -> str:
    """EIP-191 personal_sign, as wallets do for SIWE."""
    return "0x" + account.sign_message(encode_defunct(text=message)).signature.hex().removeprefix(
        "0x"
    )


def nonce(client: httpx.Client) -> str:
    response = client.post("/v1/auth/nonce")
    assert response.status_code == 200
    return str(response.json()["nonce"])


def login(client: httpx.Client, account: LocalAccount, domain: str) -> str:
    """Log in with a real signature; return the bearer token."""
    uri = str(client.base_url).rstrip("/")
    message = siwe_message(domain, account.address, nonce(client), uri=uri)
    response = client.post(
        "/v1/auth/login", json={"message": message, "signature": sign(account, message)}
    )
    assert response.status_code == 200, response.text
    return str(response.json()["token"])


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def register_node(client: httpx.Client, token: str, host: str | None = None, gpus: int = 1) -> str:
    """A node with ``gpus`` fresh Tesla T4s at 1000 wei per GPU-second."""
    body = {
        "host": host or f"gpu-{uuid.uuid4().hex[:8]}",
        "gpus": [
            {"name": "Tesla T4", "memory_mib": 15360, "uuid": f"GPU-{uuid.uuid4()}"}
            for _ in range(gpus)
        ],
        "price_per_sec_wei": "1000",
    }
    response = client.post("/v1/nodes", json=body, headers=bearer(token))
    assert response.status_code == 201, response.text
    return str(response.json()["node_id"])


def register_pod(
    client: httpx.Client,
    hub: RunningHub,
    renter: str,
    node_id: str | None = None,
    **changes: object,
) -> str:
    """The operator records a pod rented by ``renter`` (on ``node_id`` when given)."""
    pod_id = f"pod-{uuid.uuid4().hex[:8]}"
    body: dict[str, object] = {
        "pod_id": pod_id,
        "renter_address": renter,
        "ssh_host": "127.0.0.1",
        "ssh_port": 2222,
        "ssh_user": "root",
        "host_key": HOST_KEY,
        **changes,
    }
    if node_id is not None:
        body["node_id"] = node_id
    response = client.post("/v1/admin/pods", json=body, headers=bearer(hub.admin_token))
    assert response.status_code in (200, 201), response.text
    return str(body["pod_id"])


def make_csr(key: Any = None, cn: str = "ignored") -> tuple[Any, str]:
    """A CSR (and its key) signed by a fresh P-256 key unless one is given."""
    key = key or ec.generate_private_key(ec.SECP256R1())
    csr = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(x509.Name([x509.NameAttribute(x509.NameOID.COMMON_NAME, cn)]))
        .sign(key, hashes.SHA256())
    )
    return key, csr.public_bytes(serialization.Encoding.PEM).decode()


def write_identity(directory: Path, name: str, key: Any, cert_pem: str) -> tuple[str, str]:
    """Write a client certificate and its key where an SSL context can load them."""
    cert_path, key_path = directory / f"{name}.pem", directory / f"{name}.key"
    cert_path.write_text(cert_pem)
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return str(cert_path), str(key_path)


def mtls_client(hub: RunningHub, identity: tuple[str, str]) -> httpx.Client:
    """A client of the TLS hub that presents ``identity`` (cert, key) as a node."""
    context = ssl.create_default_context(cafile=str(hub.ca_cert))
    context.load_cert_chain(*identity)
    return httpx.Client(base_url=hub.url, verify=context, timeout=10.0)


@pytest.fixture
def wallet() -> LocalAccount:
    """A fresh wallet per test, so tests sharing a hub never see each other's state."""
    return Account.create()


@pytest.fixture(scope="module")
def stub_hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningHub]:
    """A plain-HTTP hub with stub join configuration, shared by a module."""
    running = start_hub(tmp_path_factory.mktemp("hub"), extra_args=STUB_JOIN)
    yield running
    running.stop()


@pytest.fixture(scope="module")
def tls_hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningHub]:
    """An HTTPS hub (certificate from its own CA) shared by a module."""
    running = start_hub(tmp_path_factory.mktemp("tlshub"), tls=True, extra_args=STUB_JOIN)
    yield running
    running.stop()


@pytest.fixture
def client(stub_hub: RunningHub) -> Iterator[httpx.Client]:
    with stub_hub.client() as c:
        yield c


def path_of(hub: RunningHub) -> Path:
    """The hub's SQLite file (tests age rows in it to test expiry without sleeping)."""
    return hub.data_dir / "hub.sqlite3"
