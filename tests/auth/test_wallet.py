"""Wallet key files: accepted formats, ssh-style mode refusal, creation, and no leaks."""

from __future__ import annotations

import json
import os
import pickle
import traceback
from pathlib import Path

import pytest
from eth_account import Account
from eth_account.messages import encode_defunct

from tests.auth.conftest import PLANTED_ADDRESS, PLANTED_KEY, cli, write_key
from worldland_cli.auth.wallet import WalletError, load_wallet, new_wallet
from worldland_cli.host import Host


@pytest.mark.parametrize(
    "text",
    [
        PLANTED_KEY,
        f"0x{PLANTED_KEY}\n",
        f"  \n\t{PLANTED_KEY.upper()}  \r\n",
        f"0X{PLANTED_KEY}",
    ],
)
def test_accepted_formats(tmp_path: Path, text: str) -> None:
    wallet = load_wallet(write_key(tmp_path / "key.txt", text))
    assert wallet.address == PLANTED_ADDRESS


def test_signature_recovers_to_the_address(tmp_path: Path) -> None:
    wallet = load_wallet(write_key(tmp_path / "key.txt", PLANTED_KEY))
    signature = wallet.sign_message("hello")
    recovered = Account.recover_message(encode_defunct(text="hello"), signature=signature)
    assert recovered == PLANTED_ADDRESS


@pytest.mark.parametrize("mode", [0o644, 0o640, 0o604, 0o660])
def test_readable_by_others_is_refused_with_chmod(tmp_path: Path, mode: int) -> None:
    path = write_key(tmp_path / "key.txt", PLANTED_KEY, mode)
    with pytest.raises(WalletError) as info:
        load_wallet(path)
    assert f"chmod 600 {path}" == info.value.hint
    assert f"mode {mode:04o}" in info.value.message
    assert PLANTED_KEY not in str(info.value)


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        (PLANTED_KEY[:-1], "found 63 characters"),
        (PLANTED_KEY + "00", "found 66 characters"),
        (PLANTED_KEY[:-1] + "g", "not hexadecimal"),
        ("", "found 0 characters"),
        ("word " * 12, "found 59 characters"),
    ],
)
def test_malformed_is_refused_without_echoing_it(tmp_path: Path, text: str, reason: str) -> None:
    path = write_key(tmp_path / "key.txt", text)
    with pytest.raises(WalletError, match=reason) as info:
        load_wallet(path)
    assert str(path) in info.value.message
    if text.strip():
        assert text.strip()[:10] not in info.value.message + (info.value.hint or "")
    rendered = "".join(traceback.format_exception(info.value))
    assert PLANTED_KEY[:20] not in rendered


def test_invalid_curve_scalar_does_not_leak(tmp_path: Path) -> None:
    path = write_key(tmp_path / "key.txt", "f" * 64)
    with pytest.raises(WalletError, match="not a valid secp256k1 key") as info:
        load_wallet(path)
    assert info.value.__cause__ is None and info.value.__suppress_context__


def test_missing_file_says_how_to_make_one(tmp_path: Path) -> None:
    with pytest.raises(WalletError, match="does not exist") as info:
        load_wallet(tmp_path / "nope.txt")
    assert "worldland wallet new" in (info.value.hint or "")


def test_wallet_repr_and_pickle_hide_the_key(tmp_path: Path) -> None:
    wallet = load_wallet(write_key(tmp_path / "key.txt", PLANTED_KEY))
    assert repr(wallet) == f"Wallet(address='{PLANTED_ADDRESS}')"
    assert PLANTED_KEY not in str(wallet)
    with pytest.raises(TypeError):
        pickle.dumps(wallet)


def test_new_wallet_is_0600_even_with_umask_0_and_never_overwrites(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "key.txt"
    old = os.umask(0)
    try:
        wallet = new_wallet(path)
    finally:
        os.umask(old)
    assert path.stat().st_mode & 0o777 == 0o600
    assert (tmp_path / "sub").stat().st_mode & 0o777 == 0o700
    assert load_wallet(path).address == wallet.address
    before = path.read_bytes()
    with pytest.raises(WalletError, match="already exists"):
        new_wallet(path)
    assert path.read_bytes() == before
    assert sorted(p.name for p in path.parent.iterdir()) == ["key.txt"]


def test_new_wallet_makes_its_directory_under_the_hosts_root(tmp_path: Path) -> None:
    """Every look at the disk goes through the Host: /etc exists here, but not under root,
    so the wallet makes it there, private (0700) like every directory it makes."""
    root = tmp_path / "root"
    root.mkdir()
    wallet = new_wallet("/etc/worldland-key.txt", Host(root=root))
    key_file = root / "etc" / "worldland-key.txt"
    assert load_wallet(key_file).address == wallet.address
    assert key_file.parent.stat().st_mode & 0o777 == 0o700


def test_wallet_new_and_address_cli(worldland_home: Path) -> None:
    created = cli("wallet", "new", "--json")
    assert created.exit_code == 0, created.output
    doc = json.loads(created.stdout)
    key_file = worldland_home / "private-key.txt"
    assert doc["key_file"] == str(key_file)
    key = key_file.read_text().strip()
    assert len(key) == 64 and key not in created.output
    assert Account.from_key(bytes.fromhex(key)).address == doc["address"]
    shown = cli("wallet", "address")
    assert shown.exit_code == 0 and shown.stdout.strip() == doc["address"]
    again = cli("wallet", "new")
    assert again.exit_code == 1 and "already exists" in again.stderr


def test_wallet_address_refuses_0644_with_exit_4(tmp_path: Path) -> None:
    path = write_key(tmp_path / "k.txt", PLANTED_KEY, 0o644)
    result = cli("wallet", "address", "--private-key-file", str(path))
    assert result.exit_code == 4
    assert f"chmod 600 {path}" in result.stderr
    assert PLANTED_KEY not in result.output
