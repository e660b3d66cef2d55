"""Item 1: a fake hub must not turn a victim's signature into a session on the real hub.

The attack: a stranger sends `worldland receive ... --hub http://FAKE`. FAKE relays every
request to the real hub and announces the real hub's SIWE domain, so a CLI that took the
domain from /v1/info signed a message the real hub accepted, and FAKE kept the token.
"""

from __future__ import annotations

from pathlib import Path

from tests.hub.conftest import nonce, sign, siwe_message
from tests.security.conftest import cli, flat
from tests.security.relay import relay_to
from tests.support.hub import RunningHub
from worldland_cli.auth.session import load_session


def victim(hub: RunningHub) -> None:
    """A person with a wallet key file (silent login) whose configured hub is ``hub``."""
    assert cli("wallet", "new").exit_code == 0
    assert cli("config", "set", "hub", hub.url).exit_code == 0


def test_a_relay_announcing_the_real_domain_gets_nothing_signed(real_hub: RunningHub) -> None:
    victim(real_hub)
    with real_hub.client() as upstream, relay_to(upstream) as fake:
        result = cli("receive", "pod-1:/workspace/model.pt", "--hub", fake.url)
    assert result.exit_code == 4, result.output
    assert f"says it is the hub at {real_hub.siwe_domain}" in flat(result.stderr)
    assert "nothing was signed" in flat(result.stderr)
    assert fake.stolen_tokens == []
    assert "POST /v1/auth/login" not in fake.paths
    assert load_session(fake.url) is None


def test_a_relay_announcing_itself_is_refused_by_the_real_hub(real_hub: RunningHub) -> None:
    victim(real_hub)
    with real_hub.client() as upstream, relay_to(upstream, announce="self") as fake:
        # The CLI signs for the relay's own address, which the real hub is not.
        result = cli("receive", "pod-1:/workspace/model.pt", "--hub", fake.url)
    assert result.exit_code == 4, result.output
    assert fake.stolen_tokens == []
    fake_domain = fake.url.removeprefix("http://")
    mismatch = f"domain mismatch: expected {real_hub.siwe_domain}, got {fake_domain}"
    assert fake.logins == [(401, {"detail": mismatch})]


def test_the_hub_refuses_a_message_naming_another_uri(real_hub: RunningHub) -> None:
    from eth_account import Account

    wallet = Account.create()
    with real_hub.client() as client:
        message = siwe_message(
            real_hub.siwe_domain, wallet.address, nonce(client), uri="http://127.0.0.1:9/"
        )
        answer = client.post(
            "/v1/auth/login", json={"message": message, "signature": sign(wallet, message)}
        )
    assert answer.status_code == 401
    assert answer.json() == {
        "detail": f"URI mismatch: expected {real_hub.url}, got http://127.0.0.1:9/"
    }


def test_the_hub_refuses_a_message_for_its_address_over_another_scheme(
    real_hub: RunningHub,
) -> None:
    from eth_account import Account

    wallet = Account.create()
    with real_hub.client() as client:
        https = real_hub.url.replace("http://", "https://")
        plain = siwe_message(real_hub.siwe_domain, wallet.address, nonce(client), uri=https)
        answer = client.post(
            "/v1/auth/login", json={"message": plain, "signature": sign(wallet, plain)}
        )
        assert answer.status_code == 401
        assert answer.json()["detail"].startswith("URI mismatch")
        prefixed = "https://" + siwe_message(
            real_hub.siwe_domain, wallet.address, nonce(client), uri=real_hub.url
        )
        answer = client.post(
            "/v1/auth/login", json={"message": prefixed, "signature": sign(wallet, prefixed)}
        )
    assert answer.status_code == 401
    assert answer.json() == {"detail": "scheme mismatch: expected http, got https"}


def test_a_silent_login_to_another_hub_says_so_and_keeps_the_first_session(
    real_hub: RunningHub, tmp_path: Path
) -> None:
    from tests.support.hub import start_hub

    victim(real_hub)
    assert cli("login").exit_code == 0
    first = load_session(real_hub.url)
    other = start_hub(tmp_path / "other")
    try:
        result = cli("receive", "pod-1:/workspace/model.pt", "--hub", other.url)
    finally:
        other.stop()
    assert f"Signing in to the hub at {other.url} as " in flat(
        result.stderr
    ) and f"this is not your configured hub {real_hub.url}" in flat(result.stderr), result.stderr
    assert load_session(real_hub.url) == first
    assert load_session(other.url) is not None
