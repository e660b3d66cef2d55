"""Wallet private key files: the seed's ``~/.worldland/private-key.txt`` and friends.

The rules are ssh's: a key file that group or others can read is refused (with the
``chmod 600 FILE`` that fixes it), as is one owned by another user. The key itself never
leaves this module in readable form: :class:`Wallet` shows only its address in ``repr``, and
no error message or exception chain carries the file's contents (errors are raised
``from None`` so a traceback cannot show them either).
"""

from __future__ import annotations

import os
import string
from pathlib import Path

from worldland_cli.errors import ActionableError, ExitCode
from worldland_cli.host import Host, HostError

_HEX = frozenset(string.hexdigits)


class WalletError(ActionableError):
    """A key file that cannot be used; the message names the file, never its contents."""

    exit_code = ExitCode.DENIED


class Wallet:
    """An Ethereum account whose private key stays inside this object.

    Only :meth:`sign_message` uses the key; ``repr``/``str`` show the address alone.
    """

    __slots__ = ("_key", "address")

    def __init__(self, key: bytes) -> None:
        from eth_account import Account

        try:
            self.address: str = Account.from_key(key).address
        except Exception:
            raise WalletError(
                "the private key is not a valid secp256k1 key (zero or above the curve order)",
                "create a new wallet with `worldland wallet new`",
            ) from None
        self._key = key

    def __repr__(self) -> str:
        return f"Wallet(address={self.address!r})"

    __str__ = __repr__

    def __reduce__(self) -> str | tuple[object, ...]:
        raise TypeError("a Wallet holds a private key and cannot be pickled")

    def sign_message(self, text: str) -> str:
        """EIP-191 ``personal_sign`` of ``text`` (what wallets do for SIWE), as 0x-hex."""
        from eth_account import Account
        from eth_account.messages import encode_defunct

        signed = Account.sign_message(encode_defunct(text=text), private_key=self._key)
        return "0x" + bytes(signed.signature).hex()


def parse_private_key(text: str, path: str) -> bytes:
    """64 hex characters, optionally 0x-prefixed, surrounding whitespace ignored."""
    value = text.strip()
    if value[:2] in ("0x", "0X"):
        value = value[2:]
    hint = (
        f"put the wallet's private key in {path} as 64 hex characters, or create a new "
        "wallet with `worldland wallet new`"
    )
    if len(value) != 64:
        raise WalletError(
            f"{path} does not hold a wallet private key: expected 64 hex characters "
            f"(with or without 0x), found {len(value)} characters",
            hint,
        )
    if not set(value) <= _HEX:
        raise WalletError(
            f"{path} does not hold a wallet private key: it contains characters that are "
            "not hexadecimal",
            hint,
        )
    return bytes.fromhex(value)


def check_private_file(host: Host, path: str, what: str = "key file") -> None:
    """Refuse a secret file others could read or that belongs to someone else (like ssh)."""
    mode = host.mode(path)
    if mode is None:
        raise WalletError(
            f"{what} {path} does not exist",
            "create one with `worldland wallet new`, or point at yours with "
            "--private-key-file FILE",
            exit_code=ExitCode.FAILED,
        )
    if mode & 0o077:
        raise WalletError(
            f"{what} {path} is readable by group or others (mode {mode:04o}); refusing to use it",
            f"chmod 600 {path}",
        )
    owner = host.owner_uid(path)
    if owner is not None and owner != os.getuid():
        raise WalletError(
            f"{what} {path} belongs to uid {owner}, not to you (uid {os.getuid()}); "
            "refusing to use it",
            f"chown {os.getuid()} {path} && chmod 600 {path}",
        )


def load_wallet(path: str | Path, host: Host | None = None) -> Wallet:
    """Check the file's mode and owner, then read the key; every failure is a WalletError."""
    h = host or Host(root=Path("/"))
    system_path = str(Path(path).expanduser().absolute())
    check_private_file(h, system_path)
    try:
        text = h.read_text(system_path)
    except HostError as e:
        raise WalletError(str(e), f"check the permissions of {system_path}") from None
    if text is None:
        raise WalletError(f"key file {system_path} does not exist", exit_code=ExitCode.FAILED)
    return Wallet(parse_private_key(text, system_path))


def new_wallet(path: str | Path, host: Host | None = None) -> Wallet:
    """Create a fresh key file: 0600 from its first byte, atomically, never over a file.

    The key is written as 64 hex characters without 0x, the format the seed's Go node reads.
    """
    from eth_account import Account

    h = host or Host(root=Path("/"))
    target = Path(path).expanduser().absolute()
    if not h.exists(str(target.parent)):
        h.makedirs(str(target.parent), mode=0o700)
    key = bytes(Account.create().key)
    wallet = Wallet(key)
    try:
        h.create_exclusive(str(target), key.hex() + "\n", mode=0o600)
    except HostError as e:
        raise WalletError(
            str(e),
            "keep the existing wallet, or choose another file: worldland wallet new FILE",
            exit_code=ExitCode.FAILED,
        ) from None
    return wallet
