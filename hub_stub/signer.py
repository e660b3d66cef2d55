"""Who signs the settlement worker's transactions: an interface, and the key-file signer.

The worker never touches a private key: it asks a :class:`Signer` for its address and for
a signed transaction. :class:`KeyFileSigner` is the hot wallet as a file (64 hex characters,
mode 0600 like the hub's admin token and every wallet file in this project). An HSM or a
Vault transit key replaces it by implementing the same two members: the worker keeps
nonces, gas prices and the write-ahead record itself, so a remote signer only signs.
"""

from __future__ import annotations

import string
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from eth_account import Account
from eth_account.signers.local import LocalAccount

_HEX = frozenset(string.hexdigits)


class KeyFileError(Exception):
    """A key file that cannot be used; the message names the file, never its contents."""


@dataclass(frozen=True)
class SignedTx:
    """A signed transaction as broadcast (``raw``) and its hash (0x-hex)."""

    raw: bytes
    tx_hash: str


class Signer(Protocol):
    """Signs the settler's transactions; implement it to keep the key in an HSM or Vault."""

    @property
    def address(self) -> str:
        """The settler's checksummed address (the contract's ``settler``)."""
        ...

    def sign_transaction(self, tx: Mapping[str, Any]) -> SignedTx:
        """Sign a legacy (EIP-155) transaction: nonce, gasPrice, gas, to, data, value, chainId."""
        ...


class KeyFileSigner:
    """The hot wallet read from a 0600 key file; ``repr`` shows the address alone."""

    __slots__ = ("_account",)

    def __init__(self, account: LocalAccount) -> None:
        self._account = account

    @classmethod
    def from_file(cls, path: Path) -> KeyFileSigner:
        """Read the key, refusing a file that group or others can read."""
        return cls(Account.from_key(read_key_file(path)))

    @property
    def address(self) -> str:
        return str(self._account.address)

    def sign_transaction(self, tx: Mapping[str, Any]) -> SignedTx:
        signed = self._account.sign_transaction(dict(tx))
        return SignedTx(bytes(signed.raw_transaction), f"0x{bytes(signed.hash).hex()}")

    def __repr__(self) -> str:
        return f"KeyFileSigner(address={self.address!r})"

    def __reduce__(self) -> str | tuple[object, ...]:
        raise TypeError("a KeyFileSigner holds a private key and cannot be pickled")


def read_key_file(path: Path) -> bytes:
    """The 32-byte key in ``path`` (64 hex characters, 0x optional), after the mode check."""
    try:
        if path.stat().st_mode & 0o077:
            raise KeyFileError(f"{path} is readable by group or others: chmod 600 {path}")
        text = path.read_text(encoding="ascii")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) else "not ASCII text"
        raise KeyFileError(f"cannot read key file {path}: {reason}") from None
    value = text.strip().removeprefix("0x").removeprefix("0X")
    if len(value) != 64 or not set(value) <= _HEX:
        raise KeyFileError(f"{path} does not hold a private key (64 hex characters, 0x optional)")
    key = bytes.fromhex(value)
    try:
        Account.from_key(key)
    except Exception:
        raise KeyFileError(f"{path} holds no valid secp256k1 key") from None
    return key
