"""SIWE login with real eth-account keys: one good login and each rejection with its reason."""

from __future__ import annotations

import datetime as dt

import httpx
import pytest
from eth_account import Account
from eth_account.signers.local import LocalAccount

from tests.hub.conftest import bearer, login, nonce, sign, siwe_message
from tests.support.hub import RunningHub


def post_login(client: httpx.Client, message: str, signature: str) -> httpx.Response:
    return client.post("/v1/auth/login", json={"message": message, "signature": signature})


def test_good_login_returns_a_token_that_authenticates(
    client: httpx.Client, stub_hub: RunningHub, wallet: LocalAccount
) -> None:
    message = siwe_message(stub_hub.siwe_domain, wallet.address, nonce(client))
    response = post_login(client, message, sign(wallet, message))
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["address"] == wallet.address
    assert body["expires_at"].endswith("Z")
    listed = client.get("/v1/nodes", headers=bearer(body["token"]))
    assert listed.status_code == 200
    assert listed.json() == {"nodes": []}


def test_replayed_nonce_is_rejected(
    client: httpx.Client, stub_hub: RunningHub, wallet: LocalAccount
) -> None:
    message = siwe_message(stub_hub.siwe_domain, wallet.address, nonce(client))
    signature = sign(wallet, message)
    assert post_login(client, message, signature).status_code == 200
    replay = post_login(client, message, signature)
    assert replay.status_code == 401
    assert replay.json() == {"detail": "nonce already used"}


def test_unknown_nonce_is_rejected(
    client: httpx.Client, stub_hub: RunningHub, wallet: LocalAccount
) -> None:
    message = siwe_message(stub_hub.siwe_domain, wallet.address, "neverissued123")
    response = post_login(client, message, sign(wallet, message))
    assert response.status_code == 401
    assert response.json()["detail"].startswith("unknown nonce")


def test_wrong_domain_names_both_domains(
    client: httpx.Client, stub_hub: RunningHub, wallet: LocalAccount
) -> None:
    message = siwe_message("evil.example:3000", wallet.address, nonce(client))
    response = post_login(client, message, sign(wallet, message))
    assert response.status_code == 401
    assert response.json() == {
        "detail": f"domain mismatch: expected {stub_hub.siwe_domain}, got evil.example:3000"
    }


def test_expired_message_is_rejected(
    client: httpx.Client, stub_hub: RunningHub, wallet: LocalAccount
) -> None:
    issued = dt.datetime.now(dt.UTC) - dt.timedelta(hours=1)
    message = siwe_message(
        stub_hub.siwe_domain,
        wallet.address,
        nonce(client),
        issued_at=issued,
        expires_in=dt.timedelta(minutes=5),
    )
    response = post_login(client, message, sign(wallet, message))
    assert response.status_code == 401
    assert response.json() == {"detail": "message expired"}


def test_issued_in_the_future_is_rejected(
    client: httpx.Client, stub_hub: RunningHub, wallet: LocalAccount
) -> None:
    issued = dt.datetime.now(dt.UTC) + dt.timedelta(minutes=10)
    message = siwe_message(stub_hub.siwe_domain, wallet.address, nonce(client), issued_at=issued)
    response = post_login(client, message, sign(wallet, message))
    assert response.status_code == 401
    assert response.json()["detail"].startswith("issued-at is in the future")


def test_tampered_message_is_rejected(
    client: httpx.Client, stub_hub: RunningHub, wallet: LocalAccount
) -> None:
    message = siwe_message(stub_hub.siwe_domain, wallet.address, nonce(client))
    signature = sign(wallet, message)
    tampered = message.replace("Sign in to Worldland", "Sign in to Worldland and pay 100 ETH")
    response = post_login(client, tampered, signature)
    assert response.status_code == 401
    assert response.json() == {"detail": "signature does not match address"}


def test_signature_from_another_key_is_rejected(
    client: httpx.Client, stub_hub: RunningHub, wallet: LocalAccount
) -> None:
    message = siwe_message(stub_hub.siwe_domain, wallet.address, nonce(client))
    response = post_login(client, message, sign(Account.create(), message))
    assert response.status_code == 401
    assert response.json() == {"detail": "signature does not match address"}


def test_failed_login_does_not_spend_the_nonce(
    client: httpx.Client, stub_hub: RunningHub, wallet: LocalAccount
) -> None:
    message = siwe_message(stub_hub.siwe_domain, wallet.address, nonce(client))
    assert post_login(client, message, sign(Account.create(), message)).status_code == 401
    assert post_login(client, message, sign(wallet, message)).status_code == 200


def test_chain_id_outside_the_allowed_set_is_rejected(
    client: httpx.Client, stub_hub: RunningHub, wallet: LocalAccount
) -> None:
    message = siwe_message(stub_hub.siwe_domain, wallet.address, nonce(client), chain_id=5)
    response = post_login(client, message, sign(wallet, message))
    assert response.status_code == 401
    assert response.json() == {"detail": "chain id 5 not allowed (allowed: 1)"}


@pytest.mark.parametrize(
    ("header", "reason"),
    [
        ("Bearer not-a-real-token", "token unknown or expired: log in again"),
        ("Basic dXNlcjpwYXNz", "Authorization must be 'Bearer <token>'"),
    ],
)
def test_bad_bearer_tokens_are_401(client: httpx.Client, header: str, reason: str) -> None:
    response = client.get("/v1/nodes", headers={"Authorization": header})
    assert response.status_code == 401
    assert response.json() == {"detail": reason}


def test_expired_token_is_rejected(client: httpx.Client, stub_hub: RunningHub) -> None:
    import sqlite3

    wallet = Account.create()
    token = login(client, wallet, stub_hub.siwe_domain)
    with sqlite3.connect(stub_hub.data_dir / "hub.sqlite3") as db:
        db.execute("UPDATE tokens SET expires_at = 0 WHERE address = ?", (wallet.address,))
    response = client.get("/v1/nodes", headers=bearer(token))
    assert response.status_code == 401


def test_malformed_message_is_401_with_reason(client: httpx.Client) -> None:
    response = post_login(client, "hello", "0x" + "11" * 65)
    assert response.status_code == 401
    assert response.json()["detail"].startswith("malformed SIWE message")


def test_info_announces_domain_and_ca(client: httpx.Client, stub_hub: RunningHub) -> None:
    info = client.get("/v1/info").json()
    assert info["siwe_domain"] == stub_hub.siwe_domain
    assert info["public_url"] == stub_hub.url
    assert info["chain_ids"] == [1]
    assert info["ca_certificate"] == stub_hub.ca_cert.read_text()
    assert info["api_version"] == "v1"


@pytest.mark.parametrize(
    "signature",
    [
        "0x" + "00" * 65,  # r = s = 0: no point to recover
        "0x" + "ff" * 64 + "1b",  # r and s above the curve order
        "0x" + "ff" * 32 + "00" * 32 + "1c",  # r out of range, s zero
    ],
)
def test_unrecoverable_signature_is_401_and_keeps_the_nonce(
    client: httpx.Client, stub_hub: RunningHub, wallet: LocalAccount, signature: str
) -> None:
    # eth_keys raises BadSignature for these, which siwe does not translate: it was a 500.
    message = siwe_message(stub_hub.siwe_domain, wallet.address, nonce(client))
    response = post_login(client, message, signature)
    assert response.status_code == 401
    assert response.json() == {"detail": "signature does not match address"}
    assert post_login(client, message, sign(wallet, message)).status_code == 200
