"""The hub CA: issued certificates, key policy, real TLS handshakes, renewal over mTLS."""

from __future__ import annotations

import datetime as dt
import os
import socket
import ssl
import stat
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from eth_account import Account
from eth_account.signers.local import LocalAccount

from hub_stub.ca import CertificateAuthority
from tests.hub.conftest import bearer, login, make_csr, register_node, write_identity
from tests.support.hub import RunningHub


def issue(client: httpx.Client, token: str, node_id: str, csr: str) -> httpx.Response:
    return client.post("/v1/certs", json={"node_id": node_id, "csr": csr}, headers=bearer(token))


@pytest.fixture
def owner(client: httpx.Client, stub_hub: RunningHub, wallet: LocalAccount) -> tuple[str, str]:
    token = login(client, wallet, stub_hub.siwe_domain)
    return token, register_node(client, token)


def test_issued_cert_verifies_against_the_ca_with_client_auth_and_lifetime(
    client: httpx.Client, stub_hub: RunningHub, owner: tuple[str, str]
) -> None:
    token, node_id = owner
    response = issue(client, token, node_id, make_csr(cn="spoofed-name")[1])
    assert response.status_code == 200, response.text
    body = response.json()
    cert = x509.load_pem_x509_certificate(body["certificate"].encode())
    ca = x509.load_pem_x509_certificate(stub_hub.ca_cert.read_bytes())
    assert body["ca_certificate"] == stub_hub.ca_cert.read_text()
    cert.verify_directly_issued_by(ca)
    # The hub, not the CSR, decides the identity.
    assert cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == node_id
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == [node_id]
    eku = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(eku) == [ExtendedKeyUsageOID.CLIENT_AUTH, ExtendedKeyUsageOID.SERVER_AUTH]
    basic = cert.extensions.get_extension_for_class(x509.BasicConstraints).value
    assert basic.ca is False
    lifetime = cert.not_valid_after_utc - dt.datetime.now(dt.UTC)
    assert dt.timedelta(days=6, hours=23) < lifetime <= dt.timedelta(days=7)
    assert body["not_after"] == cert.not_valid_after_utc.strftime("%Y-%m-%dT%H:%M:%SZ")


@pytest.mark.parametrize(
    "key",
    [
        ec.generate_private_key(ec.SECP384R1()),
        ed25519.Ed25519PrivateKey.generate(),
        rsa.generate_private_key(public_exponent=65537, key_size=2048),
    ],
    ids=["p384", "ed25519", "rsa2048"],
)
def test_allowed_key_types_are_signed(
    client: httpx.Client, owner: tuple[str, str], key: Any
) -> None:
    token, node_id = owner
    builder = x509.CertificateSigningRequestBuilder().subject_name(
        x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "n")])
    )
    algorithm = None if isinstance(key, ed25519.Ed25519PrivateKey) else hashes.SHA256()
    csr = builder.sign(key, algorithm).public_bytes(serialization.Encoding.PEM).decode()
    assert issue(client, token, node_id, csr).status_code == 200


@pytest.mark.parametrize(
    ("key", "reason"),
    [
        (rsa.generate_private_key(public_exponent=65537, key_size=1024), "too small"),
        (ec.generate_private_key(ec.SECP521R1()), "curve secp521r1 not allowed"),
        (ec.generate_private_key(ec.SECP256K1()), "curve secp256k1 not allowed"),
    ],
    ids=["rsa1024", "p521", "secp256k1"],
)
def test_keys_outside_policy_are_rejected(
    client: httpx.Client, owner: tuple[str, str], key: Any, reason: str
) -> None:
    token, node_id = owner
    response = issue(client, token, node_id, make_csr(key)[1])
    assert response.status_code == 400
    assert reason in response.json()["detail"]


def test_csr_with_a_bad_signature_is_rejected(client: httpx.Client, owner: tuple[str, str]) -> None:
    token, node_id = owner
    _, pem = make_csr()
    der = bytearray(x509.load_pem_x509_csr(pem.encode()).public_bytes(serialization.Encoding.DER))
    der[-5] ^= 0xFF  # inside the signature bit string
    broken = x509.load_der_x509_csr(bytes(der)).public_bytes(serialization.Encoding.PEM).decode()
    response = issue(client, token, node_id, broken)
    assert response.status_code == 400
    assert "signature is invalid" in response.json()["detail"]


def test_garbage_csr_is_400(client: httpx.Client, owner: tuple[str, str]) -> None:
    token, node_id = owner
    response = issue(client, token, node_id, "-----BEGIN CERTIFICATE REQUEST-----\nxx\n")
    assert response.status_code == 400


def test_only_the_owner_gets_a_cert_for_a_node(
    client: httpx.Client, stub_hub: RunningHub, owner: tuple[str, str]
) -> None:
    _, node_id = owner
    stranger = login(client, Account.create(), stub_hub.siwe_domain)
    response = issue(client, stranger, node_id, make_csr()[1])
    assert response.status_code == 403
    assert (
        client.post("/v1/certs", json={"node_id": node_id, "csr": make_csr()[1]}).status_code == 401
    )


def test_ca_key_is_0600(stub_hub: RunningHub) -> None:
    mode = stat.S_IMODE(os.stat(stub_hub.data_dir / "ca" / "ca.key").st_mode)
    assert mode == 0o600


def _serve_once(context: ssl.SSLContext) -> tuple[int, threading.Thread, list[str]]:
    """A one-connection TLS server; records 'ok' or the handshake error."""
    listener = socket.create_server(("127.0.0.1", 0))
    outcome: list[str] = []

    def run() -> None:
        with listener:
            conn, _ = listener.accept()
            try:
                with context.wrap_socket(conn, server_side=True) as tls:
                    tls.sendall(b"hi")
                    outcome.append("ok")
            except (ssl.SSLError, OSError) as exc:
                outcome.append(type(exc).__name__)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return listener.getsockname()[1], thread, outcome


@pytest.fixture
def node_credentials(
    client: httpx.Client, owner: tuple[str, str], tmp_path: Path
) -> Iterator[tuple[Path, Path]]:
    token, node_id = owner
    key, csr = make_csr()
    cert_pem = issue(client, token, node_id, csr).json()["certificate"]
    cert_path, key_path = write_identity(tmp_path, "node", key, cert_pem)
    yield Path(cert_path), Path(key_path)


@pytest.mark.parametrize("server_trusts_hub_ca", [True, False])
def test_handshake_with_issued_cert(
    stub_hub: RunningHub,
    node_credentials: tuple[Path, Path],
    tmp_path: Path,
    server_trusts_hub_ca: bool,
) -> None:
    # The server's own identity comes from an unrelated CA the client trusts; only the
    # server's trust in the client's issuer varies.
    server_ca = CertificateAuthority(tmp_path / "server-ca")
    server_cert, server_key = server_ca.issue_server_cert("127.0.0.1", tmp_path / "server")
    other_ca = CertificateAuthority(tmp_path / "other-ca")
    server_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_ctx.load_cert_chain(server_cert, server_key)
    server_ctx.verify_mode = ssl.CERT_REQUIRED
    trusted = stub_hub.ca_cert if server_trusts_hub_ca else other_ca.cert_path
    server_ctx.load_verify_locations(trusted)
    # TLS 1.2 makes the server's verdict part of the handshake the client sees.
    server_ctx.maximum_version = ssl.TLSVersion.TLSv1_2
    port, thread, outcome = _serve_once(server_ctx)

    client_ctx = ssl.create_default_context(cafile=server_ca.cert_path)
    client_ctx.load_cert_chain(*node_credentials)
    try:
        with (
            socket.create_connection(("127.0.0.1", port)) as raw,
            client_ctx.wrap_socket(raw, server_hostname="127.0.0.1") as tls,
        ):
            client_saw = tls.recv(2).decode()
    except (ssl.SSLError, OSError):
        client_saw = "failed"
    thread.join(10)
    if server_trusts_hub_ca:
        assert (outcome, client_saw) == (["ok"], "hi")
    else:
        assert outcome == ["SSLCertVerificationError"]
        assert client_saw == "failed"
