"""`worldland login`, `logout` and `whoami`.

Parsing and rendering only: the work is in worldland_cli.auth, imported inside each command
so `worldland --help` never loads eth_account or httpx.
"""

from __future__ import annotations

import typer

from worldland_cli.commands.common import progress, wants_json
from worldland_cli.commands.options import HubCa, HubUrl, JsonFlag, KeyFile, SiweDomain
from worldland_cli.output import Result


def login(
    ctx: typer.Context,
    hub: HubUrl = None,
    hub_ca: HubCa = None,
    siwe_domain: SiweDomain = None,
    private_key_file: KeyFile = None,
    chain_id: int | None = typer.Option(
        None, "--chain-id", min=0, metavar="ID", help="SIWE chain id (default: the hub's first)."
    ),
    json_output: JsonFlag = False,
) -> Result:
    """Sign in with the wallet (SIWE, EIP-4361) and keep the session token (0600).

    \b
    Examples:
      worldland login                                  # the configured hub and key file
      worldland login --hub https://hub.example.org:8443 --hub-ca ./hub-ca.crt
      worldland login --private-key-file ~/keys/provider.key --json

    Exit status: 0 logged in, 1 failed, 3 hub unreachable, 4 refused (key file or hub).
    """
    as_json = wants_json(ctx)
    from worldland_cli import config
    from worldland_cli.auth.siwe import login as do_login
    from worldland_cli.auth.wallet import load_wallet
    from worldland_cli.hubclient import HubEndpoint
    from worldland_cli.times import format_time

    cfg = config.load()
    key_file = cfg.get("private_key_file", private_key_file) or ""
    wallet = load_wallet(key_file)
    endpoint = HubEndpoint.from_config(cfg, hub, hub_ca)
    progress(as_json, f"Authenticating with wallet to Hub {endpoint.url}...")
    with endpoint.client() as client:
        session = do_login(
            client,
            wallet,
            siwe_domain=cfg.get("siwe_domain", siwe_domain),
            chain_id=cfg.get_int("chain_id", chain_id),
        )
    return Result(
        session.public(),
        [
            "SIWE authentication successful",
            f"Logged in as {session.address} to {session.hub} "
            f"until {format_time(session.expires_at)}",
        ],
    )


def logout(
    hub: HubUrl = None,
    hub_ca: HubCa = None,
    json_output: JsonFlag = False,
) -> Result:
    """End the session with the hub: revoke its token there, then forget it here.

    The wallet key file is left alone; sessions with other hubs stay.

    \b
    Examples:
      worldland logout
      worldland logout --hub https://hub.example.org:8443

    Exit status: 0 logged out (or not logged in), 1 or 3 forgotten here but the hub could not
    be told (the token stays valid there until it expires).
    """
    from worldland_cli import config
    from worldland_cli.auth.session import end_session
    from worldland_cli.hubclient import HubEndpoint

    endpoint = HubEndpoint.from_config(config.load(), hub, hub_ca)
    ended = end_session(endpoint)
    return Result(
        {"logged_out": ended is not None, "hub": endpoint.url},
        [
            f"Logged out of {endpoint.url}; the session token is revoked"
            if ended is not None
            else f"Not logged in to {endpoint.url}; nothing to do"
        ],
    )


def whoami(
    hub: HubUrl = None,
    json_output: JsonFlag = False,
) -> Result:
    """The wallet address, hub and token expiry of the session with the hub.

    \b
    Examples:
      worldland whoami
      worldland whoami --json | jq -r .address
      worldland whoami --hub https://hub.example.org:8443

    Exit status: 0 logged in, 4 not logged in or the session expired.
    """
    from worldland_cli import config
    from worldland_cli.auth.session import NotLoggedIn, load_sessions, session_key
    from worldland_cli.hubclient import HubEndpoint
    from worldland_cli.times import format_time

    url = HubEndpoint.from_config(config.load(), hub).url
    sessions = load_sessions()
    session = sessions.get(session_key(url))
    if session is None:
        others = sorted(s.hub for s in sessions.values())
        raise NotLoggedIn(
            f"not logged in to {url}" + (f" (logged in to: {', '.join(others)})" if others else ""),
            f"run `worldland whoami --hub {others[0]}`"
            if len(others) == 1
            else f"run `worldland login --hub {url}`",
        )
    if session.expired():
        raise NotLoggedIn(
            f"the session for {session.address} at {session.hub} expired at "
            f"{format_time(session.expires_at)}",
            "run `worldland login`",
        )
    return Result(
        session.public(),
        [
            f"address: {session.address}",
            f"hub:     {session.hub}",
            f"expires: {format_time(session.expires_at)}",
        ],
    )
