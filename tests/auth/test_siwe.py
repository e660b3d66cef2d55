"""The EIP-4361 text the CLI signs, checked against the `siwe` package and eth_account."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from eth_account import Account
from eth_account.messages import encode_defunct
from siwe import InvalidSignature, SiweMessage

from tests.auth.conftest import PLANTED_ADDRESS, PLANTED_KEY, write_key
from worldland_cli.auth.siwe import _remedy, build_message
from worldland_cli.auth.wallet import load_wallet

ISSUED = dt.datetime(2026, 11, 23, 4, 48, 39, tzinfo=dt.UTC)


def _message(
    *,
    chain_id: int = 1,
    issued_at: dt.datetime = ISSUED,
    expiration_time: dt.datetime | None = ISSUED + dt.timedelta(minutes=10),
) -> str:
    return build_message(
        domain="35.193.237.225:3000",
        address=PLANTED_ADDRESS,
        uri="https://hub.example:8443",
        chain_id=chain_id,
        nonce="a1b2c3d4e5f6a7b8c9d0e1f2",
        issued_at=issued_at,
        expiration_time=expiration_time,
    )


def test_message_parses_with_every_field() -> None:
    parsed = SiweMessage.from_message(_message())
    assert parsed.domain == "35.193.237.225:3000"
    assert parsed.address == PLANTED_ADDRESS
    assert parsed.statement == "Sign in to Worldland"
    assert parsed.uri == "https://hub.example:8443"
    assert parsed.version == "1"
    assert parsed.chain_id == 1
    assert parsed.nonce == "a1b2c3d4e5f6a7b8c9d0e1f2"
    assert parsed.issued_at == "2026-11-23T04:48:39Z"
    assert parsed.expiration_time == "2026-11-23T04:58:39Z"


def test_message_is_what_siwe_itself_would_write() -> None:
    ours = _message(chain_id=11155111)
    assert SiweMessage.from_message(ours).prepare_message() == ours


def test_times_are_written_in_utc() -> None:
    seoul = dt.timezone(dt.timedelta(hours=9))
    text = _message(issued_at=ISSUED.astimezone(seoul), expiration_time=None)
    assert "Issued At: 2026-11-23T04:48:39Z" in text
    assert "Expiration Time" not in text


def test_signature_verifies_with_siwe_and_recovers_the_address(tmp_path: Path) -> None:
    wallet = load_wallet(write_key(tmp_path / "key.txt", f"0x{PLANTED_KEY}"))
    now = dt.datetime.now(dt.UTC)
    text = _message(issued_at=now, expiration_time=now + dt.timedelta(minutes=10))
    signature = wallet.sign_message(text)
    assert Account.recover_message(encode_defunct(text=text), signature=signature) == (
        PLANTED_ADDRESS
    )
    SiweMessage.from_message(text).verify(signature, domain="35.193.237.225:3000")
    other = Account.create()
    forged = "0x" + other.sign_message(encode_defunct(text=text)).signature.hex().removeprefix("0x")
    with pytest.raises(InvalidSignature):
        SiweMessage.from_message(text).verify(forged)


@pytest.mark.parametrize(
    ("reason", "expected"),
    [
        (
            "domain mismatch: expected hub.example, got evil:1",
            "the hub's public URL is at hub.example, not at evil:1",
        ),
        ("chain id 5 not allowed (allowed: 1)", "--chain-id"),
        ("issued-at is in the future (check the signer's clock)", "timedatectl"),
        ("message expired", "timedatectl"),
        ("signature does not match address", "private key"),
    ],
)
def test_each_rejection_has_its_remedy(reason: str, expected: str) -> None:
    assert expected in _remedy(reason, "evil:1")
