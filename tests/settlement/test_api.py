"""The read side: GET /v1/earnings and /v1/balance, `worldland earnings` and `worldland
balance` through the CLI's SIWE session, and how the hub refuses a bad settlement setup."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

from eth_account import Account
from typer.testing import CliRunner, Result

from hub_stub.chain import Artifact, Contract, gpu_type
from tests.support.anvil import REPO
from tests.support.hub import start_hub
from worldland_cli.main import app

from .conftest import (
    GPU,
    RATE,
    Market,
    all_confirmed,
    bearer,
    provider,
    settle_args,
    settling_hub,
    usage_for,
    wait_for,
    write_key,
)


def cli(*args: str) -> Result:
    return CliRunner().invoke(app, list(args))


def test_cli_earnings_and_balance_show_a_confirmed_payment(market: Market, tmp_path: Path) -> None:
    renter = market.renter(deposit=10**15)
    hub = settling_hub(tmp_path / "hub", market)
    try:
        with hub.client() as client:
            node = provider(client, hub)
            total = usage_for(client, hub, [renter], node, 3)
            wait_for(all_confirmed(hub, 3), 20, "3 rows confirmed", hub)
        provider_key = write_key(tmp_path / "provider.key", node.account)
        signed_in = cli("login", "--hub", hub.url, "--private-key-file", str(provider_key))
        assert signed_in.exit_code == 0, signed_in.output
        shown = cli("earnings", "--hub", hub.url, "--json")
        assert shown.exit_code == 0, shown.output
        doc = json.loads(shown.stdout)
        assert doc["address"] == node.account.address
        assert doc["settlement"]["enabled"] is True
        assert doc["settlement"]["contract"] == market.payments.address
        assert doc["settlement"]["token"]["symbol"] == "WLT"
        (group,) = doc["groups"]
        assert group["node_id"] == node.node_id and group["gpu_type"] == GPU
        assert group["seconds"] == 180 and group["intervals"] == 3
        assert group["billed_wei"] == group["paid_wei"] == str(total)
        assert doc["withdrawable_wei"] == str(total) and doc["chain_error"] is None
        assert group["last_paid_tx"] == market.paid()[-1].tx_hash
        assert group["last_paid_block"] == market.paid()[-1].block_number
        text = cli("earnings", "--hub", hub.url)
        assert text.exit_code == 0, text.output
        assert (
            f"paid:   0.00000000018 WLT ({total} wei), confirmed on chain (1 block); latest in "
            f"block {group['last_paid_block']}, transaction {group['last_paid_tx']}"
        ) in text.stdout
        assert f"withdrawable now: 0.00000000018 WLT ({total} wei)" in text.stdout

        # The renter, with a session of its own (a fresh WORLDLAND_HOME would do as well).
        renter_key = write_key(tmp_path / "renter.key", renter)
        assert cli("login", "--hub", hub.url, "--private-key-file", str(renter_key)).exit_code == 0
        owed = cli("balance", "--hub", hub.url, "--json")
        assert owed.exit_code == 0, owed.output
        doc = json.loads(owed.stdout)
        assert doc["address"] == renter.address
        assert doc["deposit_wei"] == str(10**15 - total)
        assert doc["total"]["paid_wei"] == str(total) and doc["owed_wei"] == "0"
        assert doc["withdrawal_requested_wei"] == "0"
    finally:
        hub.stop()


def test_without_settlement_the_ledger_still_answers(tmp_path: Path) -> None:
    hub = start_hub(tmp_path / "hub")
    try:
        with hub.client() as client:
            assert client.get("/v1/earnings").status_code == 401
            assert client.get("/v1/balance").status_code == 401
            node = provider(client, hub)
            renter = Account.create()
            usage_for(client, hub, [renter], node, 2)
            doc = client.get("/v1/earnings", headers=bearer(node.token)).json()
            assert doc["settlement"] == {
                "enabled": False,
                "contract": None,
                "chain_id": None,
                "confirmations": None,
                "token": None,
            }
            assert doc["total"]["billed_wei"] == doc["total"]["pending_wei"] == str(120 * RATE)
            assert doc["withdrawable_wei"] is None
            assert doc["chain_error"] == "settlement is not configured on this hub"
            metrics = client.get("/metrics")
            assert metrics.status_code == 200
            assert "worldland_settlement_enabled 0.0" in metrics.text
            assert "worldland_hub_info{" in metrics.text
    finally:
        hub.stop()


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_an_unreachable_chain_leaves_the_chain_figures_unknown(
    market: Market, tmp_path: Path
) -> None:
    dead = f"http://127.0.0.1:{_closed_port()}/v3/api-key-in-the-path"
    hub = settling_hub(tmp_path / "hub", market, rpc_url=dead)
    try:
        with hub.client() as client:
            node = provider(client, hub)
            usage_for(client, hub, [Account.create()], node, 1)
            doc = client.get("/v1/earnings", headers=bearer(node.token)).json()
        assert doc["total"]["pending_wei"] == str(60 * RATE)
        assert doc["withdrawable_wei"] is None and doc["settlement"]["chain_id"] is None
        assert doc["chain_error"].startswith("the chain at http://127.0.0.1:")
        assert "api-key" not in json.dumps(doc)
        log = hub.log.read_text()
        assert "did not answer" in log and "api-key" not in log
    finally:
        hub.stop()


def _hub_refuses(data: Path, args: list[str]) -> str:
    """Start the hub with ``args``; it must exit at once. Its output."""
    data.mkdir(parents=True, exist_ok=True)
    token = write_admin_token(data)
    command = [sys.executable, "-m", "hub_stub", "--data-dir", str(data), "--port", "0"]
    done = subprocess.run(
        [*command, "--admin-token-file", str(token), *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode != 0
    return done.stdout + done.stderr


def write_admin_token(data: Path) -> Path:
    path = data / "admin-token"
    if not path.exists():
        fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o600)
        os.write(fd, b"x" * 32)
        os.close(fd)
    return path


def test_a_settler_key_others_can_read_is_refused(market: Market, tmp_path: Path) -> None:
    loose = write_key(tmp_path / "loose.key", market.settler, mode=0o644)
    args = settle_args(market)
    args[args.index("--settler-key-file") + 1] = str(loose)
    output = _hub_refuses(tmp_path / "hub", args)
    assert f"{loose} is readable by group or others: chmod 600 {loose}" in output
    assert bytes(market.settler.key).hex() not in output
    partial = _hub_refuses(tmp_path / "hub2", ["--chain-rpc", market.url])
    assert "settlement needs all of --chain-rpc, --payments-contract, --settler-key-file" in partial


def test_chain_deploy_makes_a_market_the_hub_can_settle_on(market: Market, tmp_path: Path) -> None:
    operator = write_key(tmp_path / "operator.key", market.operator)
    settler = Account.create()
    settler_key = write_key(tmp_path / "settler.key", settler)
    renter = Account.create()
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "hub_stub",
            "chain",
            "deploy",
            "--chain-rpc",
            market.url,
            "--operator-key-file",
            str(operator),
            "--settler-key-file",
            str(settler_key),
            "--withdrawal-delay",
            "60",
            "--rate",
            f"{GPU}={RATE}",
            "--mint",
            f"{renter.address}=5000",
            "--output",
            str(tmp_path / "deployed.json"),
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    made = json.loads(done.stdout)
    assert json.loads((tmp_path / "deployed.json").read_text()) == made
    assert made["settler"] == settler.address and made["operator"] == market.operator.address
    payments = Contract(
        market.anvil.rpc, Artifact.bundled("WorldlandPayments"), made["payments_contract"]
    )
    assert payments.call("settler") == settler.address
    assert payments.call("operator") == market.operator.address
    assert payments.call("token") == made["token"]
    assert payments.call("withdrawalDelay") == 60
    assert payments.call("ratePerSecond", gpu_type(GPU)) == RATE
    token = Contract(market.anvil.rpc, Artifact.bundled("TestToken"), made["token"])
    assert token.call("balanceOf", renter.address) == 5000
    assert bytes(market.operator.key).hex() not in done.stdout + done.stderr
