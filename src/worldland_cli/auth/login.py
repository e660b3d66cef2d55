"""Sign-In with Ethereum (EIP-4361) against the hub: nonce -> message -> signature -> token.

The message text is built here rather than with the ``siwe`` package: the format is a few
fixed lines, and ``siwe`` pulls in web3 (over a second of start-up on every login). The
tests parse every message this module builds with ``siwe`` and verify the signature with
it, so the two cannot drift apart unnoticed.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import TYPE_CHECKING

from worldland_cli.auth.session import Session, save_session
from worldland_cli.errors import ActionableError
from worldland_cli.output import ExitCode

if TYPE_CHECKING:
    from worldland_cli.auth.wallet import Wallet
    from worldland_cli.host import Host
    from worldland_cli.hubclient import HubClient

STATEMENT = "Sign in to Worldland"
MESSAGE_LIFETIME = dt.timedelta(minutes=10)
_MISMATCH = re.compile(r"domain mismatch: expected (\S+), got (\S+)")


class LoginFailed(ActionableError):
    """The hub rejected the signed message; the message is the hub's reason."""

    exit_code = ExitCode.DENIED


def _iso(value: dt.datetime) -> str:
    return value.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def build_message(
    *,
    domain: str,
    address: str,
    uri: str,
    chain_id: int,
    nonce: str,
    issued_at: dt.datetime,
    expiration_time: dt.datetime | None,
    statement: str = STATEMENT,
) -> str:
    """The EIP-4361 text a wallet signs (address EIP-55 checksummed, times in UTC)."""
    lines = [
        f"{domain} wants you to sign in with your Ethereum account:",
        address,
        "",
        statement,
        "",
        f"URI: {uri}",
        "Version: 1",
        f"Chain ID: {chain_id}",
        f"Nonce: {nonce}",
        f"Issued At: {_iso(issued_at)}",
    ]
    if expiration_time is not None:
        lines.append(f"Expiration Time: {_iso(expiration_time)}")
    return "\n".join(lines)


def _remedy(reason: str, domain: str) -> str:
    """What to do about each rejection the hub names (docs/hub-api.md)."""
    mismatch = _MISMATCH.search(reason)
    if mismatch:
        expected = mismatch.group(1)
        return (
            f"the SIWE domain must equal the hub's SIWE_DOMAIN ({expected}): "
            f"run `worldland login --siwe-domain {expected}`, or leave --siwe-domain, "
            "WORLDLAND_SIWE_DOMAIN and config siwe_domain unset to use what the hub announces"
        )
    if reason.startswith("chain id"):
        return "pass one of the allowed chain ids with --chain-id"
    if "future" in reason or "expired" in reason:
        return "check this machine's clock (timedatectl), then run `worldland login` again"
    if "signature" in reason:
        return "the key file must hold the wallet's own private key; run `worldland login` again"
    return f"run `worldland login` again (domain used: {domain})"


def login(
    client: HubClient,
    wallet: Wallet,
    *,
    siwe_domain: str | None = None,
    chain_id: int | None = None,
    now: dt.datetime | None = None,
    host: Host | None = None,
) -> Session:
    """Log in, save the session (0600) and return it.

    The domain and chain id default to what the hub announces on ``/v1/info``, so a person
    only names them to override (the seed's ``-siwe-domain``).
    """
    from worldland_cli.hubclient import HubDenied

    if siwe_domain is None or chain_id is None:
        info = client.info()
        siwe_domain = siwe_domain or info.siwe_domain
        if chain_id is None:
            chain_id = info.chain_ids[0] if info.chain_ids else 1
    issued = now or dt.datetime.now(dt.UTC)
    nonce = client.nonce()
    message = build_message(
        domain=siwe_domain,
        address=wallet.address,
        uri=client.url,
        chain_id=chain_id,
        nonce=nonce.nonce,
        issued_at=issued,
        expiration_time=issued + MESSAGE_LIFETIME,
    )
    try:
        result = client.login(message, wallet.sign_message(message))
    except HubDenied as e:
        reason = e.detail or e.message
        raise LoginFailed(
            f"SIWE authentication failed: {reason}", _remedy(reason, siwe_domain)
        ) from None
    if result.address.lower() != wallet.address.lower():
        raise LoginFailed(
            f"the hub logged in {result.address}, but the key file is for {wallet.address}",
            "is --hub pointing at a genuine Worldland hub?",
        )
    session = Session(
        token=result.token, address=result.address, hub=client.url, expires_at=result.expires_at
    )
    save_session(session, host)
    return session
