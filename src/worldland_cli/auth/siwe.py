"""Sign-In with Ethereum (EIP-4361) against the hub: nonce -> message -> signature -> token.

What the wallet signs names the hub the CLI is connected to, derived from that URL
(:mod:`worldland_cli.auth.origin`) and never from what the server says about itself: a
server that relays our signed message to another hub gets nothing there, since that hub
only accepts messages naming its own URL. A server that announces another hub's domain,
or a configured ``siwe_domain`` that is not the hub's, is refused before anything is signed.

The message text is built here rather than with the ``siwe`` package: the format is a few
fixed lines, and ``siwe`` pulls in web3 (over a second of start-up on every login). The
tests parse every message this module builds with ``siwe`` and verify the signature with
it, so the two cannot drift apart unnoticed.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import TYPE_CHECKING

from worldland_cli.auth.origin import origin
from worldland_cli.auth.session import Session, save_session
from worldland_cli.errors import ActionableError, ExitCode
from worldland_cli.times import format_time

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


class WrongHub(ActionableError):
    """Nothing was signed: the server is not the hub its URL (or the config) names."""

    exit_code = ExitCode.DENIED


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
        f"Issued At: {format_time(issued_at)}",
    ]
    if expiration_time is not None:
        lines.append(f"Expiration Time: {format_time(expiration_time)}")
    return "\n".join(lines)


def _remedy(reason: str, domain: str) -> str:
    """What to do about each rejection the hub names (docs/hub-api.md)."""
    mismatch = _MISMATCH.search(reason)
    if mismatch:
        expected = mismatch.group(1)
        return (
            f"the hub's public URL is at {expected}, not at {domain}: use that URL "
            "(--hub, WORLDLAND_HUB or `worldland config set hub URL`), or, if you run the "
            "hub, start it with --public-url set to the URL its users reach"
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

    The message's domain and URI are the hub URL's own (its ``host:port`` and the URL); a
    configured ``siwe_domain`` (the seed's ``-siwe-domain``) must agree with them, and so
    must the domain the server announces on ``/v1/info``. The chain id defaults to the
    hub's first.
    """
    from worldland_cli.hubclient import HubDenied

    try:
        own = origin(client.url)
    except ValueError as e:
        raise WrongHub(str(e), "use the hub's http:// or https:// URL") from None
    if siwe_domain is not None and siwe_domain.strip().lower() != own.domain:
        raise WrongHub(
            f"the configured SIWE domain {siwe_domain} is not the hub's address {own.domain}; "
            "nothing was signed",
            f"use the hub at {siwe_domain} (--hub), or drop the setting "
            "(--siwe-domain, WORLDLAND_SIWE_DOMAIN, siwe_domain in config.toml)",
        )
    info = client.info()
    if info.siwe_domain.lower() != own.domain:
        raise WrongHub(
            f"the server at {client.url} says it is the hub at {info.siwe_domain}; a login "
            "signed for it could be replayed there, so nothing was signed",
            f"use that hub's own URL if you trust it (--hub), or check where {client.url} "
            "came from",
        )
    if chain_id is None:
        chain_id = info.chain_ids[0] if info.chain_ids else 1
    issued = now or dt.datetime.now(dt.UTC)
    nonce = client.nonce()
    message = build_message(
        domain=own.domain,
        address=wallet.address,
        uri=own.uri,
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
            f"SIWE authentication failed: {reason}", _remedy(reason, own.domain)
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
