"""Transfer codes: made by the hub only, with at least 50 bits, and short-lived in every sense.

Before: four digits and three words (37.5 bits), guessable at the 2,000+ claims per second the
hub answered; and a client could choose its own code (``aaa-bb``), so a code was only as
strong as its sender's imagination.
"""

from __future__ import annotations

import math
import re

import httpx
import pytest
from eth_account.signers.local import LocalAccount

from hub_stub import codes
from hub_stub.words import WORDS
from tests.hub.conftest import bearer, login, register_pod
from tests.support.hub import RunningHub

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
