"""Transfer codes: made by the hub only, with at least 50 bits, and short-lived in every sense.

Before: four digits and three words (37.5 bits), guessable at the 2,000+ claims per second the
hub answered; and a client could choose its own code (``aaa-bb``), so a code was only as
strong as its sender's imagination.
"""

from __future__ import annotations

import hashlib
import math
import re
import sqlite3
from pathlib import Path

import httpx
import pytest
from eth_account import Account
from eth_account.signers.local import LocalAccount

from hub_stub import codes
from hub_stub.words import WORDS
from tests.hub.conftest import bearer, login, path_of, register_pod
from tests.support.hub import RunningHub, start_hub

SHAPE = re.compile(r"^([0-9]{4})((?:-[a-z]+){5})$")


def offer(client: httpx.Client, token: str, pod_id: str, **extra: object) -> httpx.Response:
    body = {"pod_id": pod_id, "path": "/w/f.bin", "name": "f.bin", "size": 1, "sha256": "a" * 64}
    return client.post("/v1/transfers", json={**body, **extra}, headers=bearer(token))


@pytest.fixture
def sender(client: httpx.Client, stub_hub: RunningHub, wallet: LocalAccount) -> tuple[str, str]:
    """(token, pod id) of a renter with one pod."""
    token = login(client, wallet, stub_hub.siwe_domain)
    return token, register_pod(client, stub_hub, wallet.address)


def test_the_word_list_gives_codes_of_at_least_50_bits() -> None:
    # The arithmetic holds only for distinct words that cannot run into each other.
    assert len(set(WORDS)) == len(WORDS) == 267
    assert all(re.fullmatch(r"[a-z]+", word) for word in WORDS)
    bits = math.log2(10**codes.DIGITS * len(WORDS) ** codes.WORDS_PER_CODE)
    assert bits >= 50
    assert math.isclose(codes.ENTROPY_BITS, bits)
    assert f"{codes.ENTROPY_BITS:.1f} bits" in (codes.__doc__ or "")


def test_created_codes_have_the_long_shape(client: httpx.Client, sender: tuple[str, str]) -> None:
    token, pod_id = sender
    made = [offer(client, token, pod_id).json()["code"] for _ in range(5)]
    for code in made:
        match = SHAPE.fullmatch(code)
        assert match is not None, code
        assert all(word in WORDS for word in match.group(2).split("-")[1:])
    assert len(set(made)) == len(made)


@pytest.mark.parametrize("chosen", ["aaa-bb", "1234-alpha-bravo-charlie-delta-echo"])
def test_a_chosen_code_is_refused(
    client: httpx.Client, sender: tuple[str, str], chosen: str
) -> None:
    token, pod_id = sender
    response = offer(client, token, pod_id, code=chosen)
    assert response.status_code == 422
    assert "the hub makes transfer codes" in response.json()["detail"]
    assert client.get(f"/v1/transfers/{chosen}", headers=bearer(token)).status_code == 404


def rows_of_pod(hub: RunningHub, pod_id: str) -> int:
    with sqlite3.connect(path_of(hub)) as db:
        return int(
            db.execute("SELECT count(*) FROM transfers WHERE pod_id = ?", (pod_id,)).fetchone()[0]
        )


def age_codes_of(hub: RunningHub, pod_id: str) -> None:
    """Make every code of ``pod_id`` expired, without sleeping through a TTL."""
    with sqlite3.connect(path_of(hub)) as db:
        db.execute("UPDATE transfers SET expires_at = 0 WHERE pod_id = ?", (pod_id,))


def test_the_database_holds_no_code_only_its_sha256(
    client: httpx.Client, stub_hub: RunningHub, sender: tuple[str, str]
) -> None:
    token, pod_id = sender
    code = offer(client, token, pod_id).json()["code"]
    files = [path_of(stub_hub).with_name(f"hub.sqlite3{s}") for s in ("", "-wal")]
    stored = b"".join(f.read_bytes() for f in files if f.exists())
    assert code.encode() not in stored
    assert hashlib.sha256(code.encode()).hexdigest().encode() in stored
    assert client.get(f"/v1/transfers/{code}", headers=bearer(token)).status_code == 200


def test_expired_codes_are_deleted_when_codes_are_made(
    client: httpx.Client, stub_hub: RunningHub, sender: tuple[str, str]
) -> None:
    token, pod_id = sender
    offer(client, token, pod_id)
    offer(client, token, pod_id)
    age_codes_of(stub_hub, pod_id)
    assert rows_of_pod(stub_hub, pod_id) == 2
    fresh = offer(client, token, pod_id).json()["code"]
    assert rows_of_pod(stub_hub, pod_id) == 1
    assert client.get(f"/v1/transfers/{fresh}", headers=bearer(token)).status_code == 200


def test_an_expired_code_is_refused_and_deleted_when_claimed(
    client: httpx.Client, stub_hub: RunningHub, sender: tuple[str, str]
) -> None:
    token, pod_id = sender
    code = offer(client, token, pod_id).json()["code"]
    age_codes_of(stub_hub, pod_id)
    response = client.get(f"/v1/transfers/{code}", headers=bearer(token))
    assert response.status_code == 410
    assert "expired" in response.json()["detail"]
    assert rows_of_pod(stub_hub, pod_id) == 0


def test_a_code_dies_when_its_pod_changes_renter(
    client: httpx.Client, stub_hub: RunningHub, wallet: LocalAccount, sender: tuple[str, str]
) -> None:
    token, pod_id = sender
    kept = offer(client, token, pod_id).json()["code"]
    # The operator updates the pod's endpoint for the same renter: codes stay.
    register_pod(client, stub_hub, wallet.address, pod_id=pod_id, ssh_port=2200)
    assert rows_of_pod(stub_hub, pod_id) == 1
    # The pod goes to another renter: what the old renter offered from it must not leak.
    successor = Account.create()
    register_pod(client, stub_hub, successor.address, pod_id=pod_id)
    assert rows_of_pod(stub_hub, pod_id) == 0
    claimant = login(client, successor, stub_hub.siwe_domain)
    assert client.get(f"/v1/transfers/{kept}", headers=bearer(claimant)).status_code == 404


def test_a_claim_checks_the_pods_renter_is_still_the_codes_creator(
    client: httpx.Client, stub_hub: RunningHub, sender: tuple[str, str]
) -> None:
    token, pod_id = sender
    code = offer(client, token, pod_id).json()["code"]
    with sqlite3.connect(path_of(stub_hub)) as db:  # a renter change that left the code behind
        db.execute(
            "UPDATE pods SET renter = ? WHERE pod_id = ?", (Account.create().address, pod_id)
        )
    response = client.get(f"/v1/transfers/{code}", headers=bearer(token))
    assert response.status_code == 404
    assert rows_of_pod(stub_hub, pod_id) == 0


def test_claims_are_rate_limited_per_address_and_per_wallet(tmp_path: Path) -> None:
    """Guessing gets about one try a second per address and per wallet (here: 3 at once)."""
    hub = start_hub(tmp_path / "hub", extra_args=["--claim-rate", "1/s:3"])
    guess = "/v1/transfers/0000-" + "-".join(WORDS[:5])

    def claims(wallet: LocalAccount, source: str, times: int) -> list[int]:
        transport = httpx.HTTPTransport(local_address=source)
        with httpx.Client(base_url=hub.url, transport=transport) as c:
            token = login(c, wallet, hub.siwe_domain)
            return [c.get(guess, headers=bearer(token)).status_code for _ in range(times)]

    first, second = Account.create(), Account.create()
    try:
        assert claims(first, "127.0.0.1", 4) == [404, 404, 404, 429]
        assert claims(first, "127.0.0.2", 1) == [429]  # the wallet's bucket is empty
        assert claims(second, "127.0.0.1", 1) == [429]  # and so is the address's
        assert claims(second, "127.0.0.3", 1) == [404]  # a fresh pair of buckets
    finally:
        hub.stop()
