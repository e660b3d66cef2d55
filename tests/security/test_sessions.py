"""Item 7: `worldland logout` ends the session at the hub, not only on this disk."""

from __future__ import annotations

import json
from pathlib import Path

from tests.hub.conftest import bearer
from tests.security.conftest import cli, flat
from tests.support.hub import RunningHub, start_hub
from worldland_cli.auth.session import load_session


def logged_in(hub: RunningHub) -> str:
    assert cli("wallet", "new").exit_code == 0
    assert cli("login", "--hub", hub.url).exit_code == 0
    session = load_session(hub.url)
    assert session is not None
    return session.token


def test_logout_revokes_the_token_at_the_hub_at_once(real_hub: RunningHub) -> None:
    token = logged_in(real_hub)
    with real_hub.client() as client:
        assert client.get("/v1/nodes", headers=bearer(token)).status_code == 200  # now cached
        result = cli("logout", "--hub", real_hub.url, "--json")
        assert result.exit_code == 0, result.output
        assert json.loads(result.stdout) == {"ok": True, "logged_out": True, "hub": real_hub.url}
        after = client.get("/v1/nodes", headers=bearer(token))
    assert after.status_code == 401
    assert after.json()["detail"] == "token unknown or expired: log in again"
    assert load_session(real_hub.url) is None


def test_revoking_needs_the_token_itself(real_hub: RunningHub) -> None:
    with real_hub.client() as client:
        assert client.delete("/v1/auth/session").status_code == 401
        assert client.delete("/v1/auth/session", headers=bearer("made-up")).status_code == 401


def test_a_hub_out_of_reach_is_named_and_the_token_still_forgotten(tmp_path: Path) -> None:
    hub = start_hub(tmp_path / "hub")
    try:
        logged_in(hub)
    finally:
        hub.stop()
    result = cli("logout", "--hub", hub.url)
    assert result.exit_code == 3, result.output
    assert "forgot the session here, but could not end it at the hub" in flat(result.stderr)
    assert "stays valid there until" in flat(result.stderr)
    assert load_session(hub.url) is None


def test_logging_out_of_one_hub_keeps_the_session_with_another(
    real_hub: RunningHub, tmp_path: Path
) -> None:
    logged_in(real_hub)
    other = start_hub(tmp_path / "other")
    try:
        assert cli("login", "--hub", other.url).exit_code == 0
        assert cli("logout", "--hub", other.url).exit_code == 0
    finally:
        other.stop()
    assert load_session(other.url) is None
    assert load_session(real_hub.url) is not None
