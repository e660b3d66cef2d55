"""When to log in again without asking, and the hub client every person-facing call uses.

:func:`authenticated_client` is what every command that talks to the hub as a person
(register, send/receive codes, join) should call: it hands back a client with a live token,
logs in again silently when a wallet key file is configured (saying so on stderr, and naming
the configured hub when another one is used), and otherwise says "run worldland login"
instead of letting the hub answer 401. The policy sits above both the session store
(:mod:`worldland_cli.auth.session`) and the SIWE protocol (:mod:`worldland_cli.auth.siwe`),
which therefore never import each other in a circle.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from worldland_cli import config as config_mod
from worldland_cli.auth.session import NotLoggedIn, Session, current_session, session_key
from worldland_cli.auth.siwe import login
from worldland_cli.auth.wallet import load_wallet
from worldland_cli.config import Config
from worldland_cli.host import Host
from worldland_cli.hubclient import HubEndpoint

if TYPE_CHECKING:
    from worldland_cli.hubclient import HubClient


@dataclass(frozen=True, kw_only=True)  # four strings: by name, never by position
class SignIn:
    """Which hub, and which wallet to sign in with, for a call made as a person.

    The ``--hub``, ``--hub-ca``, ``--private-key-file`` and ``--siwe-domain`` flags as given;
    each None when not given, and then the environment and config.toml decide.
    """

    hub: str | None = None
    hub_ca: str | None = None
    private_key_file: str | None = None
    siwe_domain: str | None = None

    def endpoint(self, cfg: Config) -> HubEndpoint:
        return HubEndpoint.from_config(cfg, self.hub, self.hub_ca)


def key_file_for_relogin(
    cfg: Config, flag: str | None = None, host: Host | None = None
) -> str | None:
    """The wallet key file to log in with without asking: a configured one, or the default
    ``private-key.txt`` when it exists."""
    setting = cfg.resolve("private_key_file", flag)
    if setting.value is None:
        return None
    if setting.source != "default" or (host or Host(root=Path("/"))).exists(setting.value):
        return setting.value
    return None


def live_session(
    cfg: Config,
    sign_in: SignIn = SignIn(),
    *,
    host: Host | None = None,
    on_login: Callable[[Session], None] | None = None,
    notice: Callable[[str], None] | None = None,
    **client_kwargs: Any,
) -> Session:
    """The saved session for this hub, or a fresh one from a silent login.

    When the saved session is missing or expired and a wallet key file is configured, logs
    in again without asking (the way the seed's node daemon does on every start); otherwise
    raises NotLoggedIn with "run worldland login". A silent login is never silent about
    where it signs: ``notice`` (default: a line on stderr) names the hub and the wallet, and
    says so when the hub is not the configured one (a ``--hub`` pasted from someone else's
    message, say). ``on_login`` is told about it afterwards (commands print the seed's "SIWE
    authentication successful").
    """
    endpoint = sign_in.endpoint(cfg)
    try:
        return current_session(endpoint, host)
    except NotLoggedIn:
        key_file = key_file_for_relogin(cfg, sign_in.private_key_file, host)
        if key_file is None:
            raise
    wallet = load_wallet(key_file, host)
    line = f"Signing in to the hub at {endpoint.url} as {wallet.address} (wallet key {key_file})"
    configured = cfg.get("hub") or config_mod.DEFAULT_HUB
    if session_key(configured) != session_key(endpoint.url):
        line += f"; this is not your configured hub {configured}"
    (notice or _to_stderr)(line)
    with endpoint.client(**client_kwargs) as anonymous:
        session = login(
            anonymous,
            wallet,
            siwe_domain=cfg.get("siwe_domain", sign_in.siwe_domain),
            chain_id=cfg.get_int("chain_id"),
            host=host,
        )
    if on_login is not None:
        on_login(session)
    return session


def _to_stderr(line: str) -> None:
    from worldland_cli.output import err_console

    err_console().print(line, markup=False, highlight=False, soft_wrap=True)


def authenticated_client(
    cfg: Config,
    sign_in: SignIn = SignIn(),
    *,
    host: Host | None = None,
    on_login: Callable[[Session], None] | None = None,
    **client_kwargs: Any,
) -> tuple[HubClient, Session]:
    """A hub client carrying a live bearer token (see :func:`live_session`), and its session.

    The caller closes the client (it is a context manager).
    """
    session = live_session(cfg, sign_in, host=host, on_login=on_login, **client_kwargs)
    return sign_in.endpoint(cfg).client(token=session.token, **client_kwargs), session
