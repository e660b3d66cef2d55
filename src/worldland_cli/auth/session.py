"""The login session: a bearer token bound to one hub and one wallet, kept in session.json.

The file is written 0600 from its first byte (it is as good as the wallet until it expires)
and is the only place the token lives. :func:`authenticated_client` is what every command
that talks to the hub as a person (register, send/receive codes, join) should call: it hands
back a client with a live token, logs in again silently when a wallet key file is configured,
and otherwise says "run worldland login" instead of letting the hub answer 401.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from worldland_cli import config as config_mod
from worldland_cli.config import Config
from worldland_cli.errors import ActionableError
from worldland_cli.host import Host
from worldland_cli.output import ExitCode

if TYPE_CHECKING:
    from worldland_cli.hubclient import HubClient, HubEndpoint

# A token this close to its expiry is treated as expired: the request it is for might land
# after the hub has stopped accepting it.
EXPIRY_MARGIN = dt.timedelta(seconds=60)


class NotLoggedIn(ActionableError):
    """No usable session for this hub and no key file to log in with silently."""

    exit_code = ExitCode.DENIED


@dataclass(frozen=True)
class Session:
    token: str = field(repr=False)
    address: str
    hub: str
    expires_at: dt.datetime

    def expired(self, now: dt.datetime | None = None) -> bool:
        current = now or dt.datetime.now(dt.UTC)
        return self.expires_at - EXPIRY_MARGIN <= current

    def to_json(self) -> dict[str, Any]:
        from worldland_cli.hubclient import format_time

        return {
            "token": self.token,
            "address": self.address,
            "hub": self.hub,
            "expires_at": format_time(self.expires_at),
        }

    def public(self, now: dt.datetime | None = None) -> dict[str, Any]:
        """What `whoami` may show: everything but the token."""
        doc = self.to_json()
        del doc["token"]
        doc["expired"] = self.expired(now)
        return doc


def _host(host: Host | None) -> Host:
    return host or Host(root=Path("/"))


def load_session(host: Host | None = None) -> Session | None:
    """The saved session, or None when there is none or the file is unreadable."""
    from worldland_cli.hubclient import parse_time

    text = _host(host).read_text(str(config_mod.session_file()))
    if not text:
        return None
    try:
        doc = json.loads(text)
        return Session(
            token=str(doc["token"]),
            address=str(doc["address"]),
            hub=str(doc["hub"]),
            expires_at=parse_time(str(doc["expires_at"])),
        )
    except (ValueError, KeyError, TypeError):
        return None


def save_session(session: Session, host: Host | None = None) -> Path:
    path = config_mod.session_file()
    _host(host).write_atomic(str(path), json.dumps(session.to_json(), indent=2) + "\n", 0o600)
    return path


def clear_session(host: Host | None = None) -> bool:
    """Forget the token; True when there was one."""
    h = _host(host)
    path = str(config_mod.session_file())
    existed = h.exists(path)
    h.remove(path)
    return existed


def key_file_for_relogin(cfg: Config, flag: str | None = None) -> str | None:
    """The wallet key file to log in with without asking: a configured one, or the default
    ``private-key.txt`` when it exists."""
    setting = cfg.resolve("private_key_file", flag)
    if setting.value is None:
        return None
    if setting.source != "default" or Path(setting.value).exists():
        return setting.value
    return None


def current_session(endpoint: HubEndpoint, host: Host | None = None) -> Session:
    """The saved session if it is for this hub and still live, else NotLoggedIn."""
    session = load_session(host)
    if session is None:
        raise NotLoggedIn(f"not logged in to the hub at {endpoint.url}", "run `worldland login`")
    if session.hub.rstrip("/") != endpoint.url.rstrip("/"):
        raise NotLoggedIn(
            f"logged in to {session.hub}, not to the hub at {endpoint.url}",
            f"run `worldland login --hub {endpoint.url}`",
        )
    if session.expired():
        from worldland_cli.hubclient import format_time

        raise NotLoggedIn(
            f"the login session expired at {format_time(session.expires_at)}",
            "run `worldland login`",
        )
    return session


def live_session(
    cfg: Config,
    *,
    hub: str | None = None,
    hub_ca: str | None = None,
    private_key_file: str | None = None,
    siwe_domain: str | None = None,
    host: Host | None = None,
    on_login: Callable[[Session], None] | None = None,
    **client_kwargs: Any,
) -> Session:
    """The saved session for this hub, or a fresh one from a silent login.

    When the saved session is missing, expired or for another hub and a wallet key file is
    configured, logs in again without asking (the way the seed's node daemon does on every
    start); otherwise raises NotLoggedIn with "run worldland login". ``on_login`` is told
    about a silent login (commands print the seed's "SIWE authentication successful").
    """
    endpoint = cfg.hub_endpoint(hub, hub_ca)
    try:
        return current_session(endpoint, host)
    except NotLoggedIn:
        key_file = key_file_for_relogin(cfg, private_key_file)
        if key_file is None:
            raise
    from worldland_cli.auth.login import login
    from worldland_cli.auth.wallet import load_wallet

    wallet = load_wallet(key_file, host)
    with endpoint.client(**client_kwargs) as anonymous:
        session = login(
            anonymous,
            wallet,
            siwe_domain=cfg.get("siwe_domain", siwe_domain),
            chain_id=cfg.get_int("chain_id"),
            host=host,
        )
    if on_login is not None:
        on_login(session)
    return session


def authenticated_client(
    cfg: Config,
    *,
    hub: str | None = None,
    hub_ca: str | None = None,
    private_key_file: str | None = None,
    siwe_domain: str | None = None,
    host: Host | None = None,
    on_login: Callable[[Session], None] | None = None,
    **client_kwargs: Any,
) -> tuple[HubClient, Session]:
    """A hub client carrying a live bearer token (see :func:`live_session`), and its session.

    The caller closes the client (it is a context manager).
    """
    session = live_session(
        cfg,
        hub=hub,
        hub_ca=hub_ca,
        private_key_file=private_key_file,
        siwe_domain=siwe_domain,
        host=host,
        on_login=on_login,
        **client_kwargs,
    )
    return cfg.hub_endpoint(hub, hub_ca).client(token=session.token, **client_kwargs), session
