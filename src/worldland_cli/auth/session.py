"""Login sessions: bearer tokens, each bound to one hub and one wallet, kept in session.json.

The file is written 0600 from its first byte (a token is as good as the wallet until it
expires) and is the only place tokens live. It holds one session per hub, keyed by the hub's
normal URL (:mod:`worldland_cli.auth.origin`): a token is only ever sent to the hub that
issued it, and logging in to a second hub does not end the session with the first.

This module is the store only: :mod:`worldland_cli.auth.siwe` makes a session (the login
protocol) and :mod:`worldland_cli.auth.relogin` decides when to make one without asking.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from worldland_cli import config as config_mod
from worldland_cli.auth.origin import origin
from worldland_cli.errors import ActionableError, ExitCode
from worldland_cli.host import Host
from worldland_cli.hubclient import HubEndpoint
from worldland_cli.times import format_time, parse_time

if TYPE_CHECKING:
    pass

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


def session_key(hub: str) -> str:
    """Which entry of session.json belongs to ``hub``: its normal URL (the raw text if odd)."""
    try:
        return origin(hub).uri
    except ValueError:
        return hub.rstrip("/")


def _parse(doc: Any) -> Session | None:
    try:
        return Session(
            token=str(doc["token"]),
            address=str(doc["address"]),
            hub=str(doc["hub"]),
            expires_at=parse_time(str(doc["expires_at"])),
        )
    except (ValueError, KeyError, TypeError):
        return None


def load_sessions(host: Host | None = None) -> dict[str, Session]:
    """Every saved session by hub; a file of the one-session format is read as one entry."""
    text = _host(host).read_text(str(config_mod.session_file()))
    try:
        doc = json.loads(text) if text else {}
    except ValueError:
        return {}
    if not isinstance(doc, dict):
        return {}
    entries = doc.get("sessions") if "sessions" in doc else {"": doc}
    found = [_parse(entry) for entry in (entries or {}).values()]
    return {session_key(s.hub): s for s in found if s is not None}


def load_session(hub: str, host: Host | None = None) -> Session | None:
    """The saved session for ``hub``, or None when there is none."""
    return load_sessions(host).get(session_key(hub))


def _write(sessions: dict[str, Session], host: Host | None) -> Path:
    path = config_mod.session_file()
    doc = {"sessions": {key: s.to_json() for key, s in sorted(sessions.items())}}
    _host(host).write_atomic(str(path), json.dumps(doc, indent=2) + "\n", 0o600)
    return path


def save_session(session: Session, host: Host | None = None) -> Path:
    """Keep ``session`` as the one for its hub (sessions with other hubs stay)."""
    sessions = load_sessions(host)
    sessions[session_key(session.hub)] = session
    return _write(sessions, host)


def clear_session(hub: str, host: Host | None = None) -> Session | None:
    """Forget the session for ``hub``; the one forgotten, or None when there was none."""
    sessions = load_sessions(host)
    gone = sessions.pop(session_key(hub), None)
    if gone is not None:
        _write(sessions, host)
    return gone


class RevocationFailed(ActionableError):
    """The session was forgotten here, but the hub could not be told to end it."""

    exit_code = ExitCode.FAILED


def end_session(
    endpoint: HubEndpoint, host: Host | None = None, **client_kwargs: Any
) -> Session | None:
    """Log out of one hub: revoke the token there, then forget it here.

    The token is forgotten even when the hub cannot be reached (it should not outlive the
    person's wish on this disk), but then :class:`RevocationFailed` says it stays valid at
    the hub until it expires, with the exit code of the hub's failure. A token the hub
    already refuses (expired, revoked) counts as revoked. Returns the session ended, or None
    when there was none for this hub.
    """
    from worldland_cli.hubclient import HubDenied, HubError

    session = load_session(endpoint.url, host)
    if session is None:
        return None
    failure: HubError | None = None
    if not session.expired():
        try:
            with endpoint.client(token=session.token, **client_kwargs) as client:
                client.logout()
        except HubDenied:
            pass
        except HubError as e:
            failure = e
    clear_session(endpoint.url, host)
    if failure is not None:
        raise RevocationFailed(
            f"forgot the session here, but could not end it at the hub: {failure.message}; "
            f"its token stays valid there until {format_time(session.expires_at)}",
            failure.hint,
            exit_code=failure.exit_code,
        )
    return session


def current_session(endpoint: HubEndpoint, host: Host | None = None) -> Session:
    """The saved session for this hub if it is still live, else NotLoggedIn."""
    session = load_session(endpoint.url, host)
    if session is None:
        raise NotLoggedIn(
            f"not logged in to the hub at {endpoint.url}",
            f"run `worldland login --hub {endpoint.url}`",
        )
    if session.expired():
        raise NotLoggedIn(
            f"the login session expired at {format_time(session.expires_at)}",
            "run `worldland login`",
        )
    return session
