"""Settlement tests: a real hub process settling on a real anvil chain.

Each test deploys its own token and payment contract (module-wide anvil) and uses fresh
wallets (settler, renters, providers) funded from anvil's accounts, so no test sees
another's balances, nonces or settlement ids. Usage reaches the ledger the way a node
sends it (``POST /v1/usage``); the chain's ``Paid`` events are the evidence of payment.
"""

from __future__ import annotations

import datetime as dt
import os
import sqlite3
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from eth_account import Account
from eth_account.signers.local import LocalAccount

from hub_stub.chain import Artifact, Contract, Event, deploy, gpu_type
from tests.hub.conftest import bearer, login
from tests.support.anvil import RunningAnvil, anvil
from tests.support.hub import RunningHub, start_hub

__all__ = ["anvil"]

GPU = "NVIDIA H100 80GB HBM3"
RATE = 1_000_000  # wei per GPU-second, the contract's and the nodes' price
MINTED = 10**21
ETHER = 10**18
HOST_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGJ0ZXN0a2V5Zm9ydGVzdHM"
EPOCH = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)


def write_key(path: Path, account: LocalAccount, mode: int = 0o600) -> Path:
    """A key file as an operator would keep the hot wallet's key: 64 hex characters."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    with os.fdopen(fd, "w") as handle:
        handle.write(bytes(account.key).hex() + "\n")
    path.chmod(mode)
    return path


@dataclass
class Market:
    """A deployed token and escrow, the operator, and a fresh funded hot wallet."""

    anvil: RunningAnvil
    token: Contract
    payments: Contract
    operator: LocalAccount
    settler: LocalAccount
    settler_key: Path
    funder: LocalAccount

    @property
    def url(self) -> str:
        return self.anvil.url

    def wallet(self, ether: int = 1) -> LocalAccount:
        """A fresh account with some gas money."""
        account: LocalAccount = Account.create()
        self.anvil.rpc.send(self.funder, b"", to=account.address, gas=21_000, value=ether * ETHER)
        return account

    def renter(self, deposit: int) -> LocalAccount:
        """A fresh renter wallet that has escrowed ``deposit`` wei of the token."""
        account = self.wallet()
        self.token.transact(self.operator, "mint", account.address, MINTED)
        if deposit:
            self.deposit(account, deposit)
        return account

    def deposit(self, account: LocalAccount, amount: int) -> None:
        self.token.transact(account, "approve", self.payments.address, amount)
        self.payments.transact(account, "deposit", amount)

    def paid(self) -> list[Event]:
        """Every ``Paid`` event of this contract."""
        return self.payments.logs("Paid")

    def deposit_of(self, account: LocalAccount) -> int:
        return int(self.payments.call("deposits", account.address))

    def earnings_of(self, address: str) -> int:
        return int(self.payments.call("earnings", address))


def new_market(anvil: RunningAnvil, tmp: Path) -> Market:
    """Deploy a fresh market; the settler is a new wallet with 10 ether for gas."""
    operator, funder = anvil.accounts[0], anvil.accounts[1]
    settler: LocalAccount = Account.create()
    anvil.rpc.send(funder, b"", to=settler.address, gas=21_000, value=10 * ETHER)
    token = deploy(anvil.rpc, Artifact.bundled("TestToken"), operator, "Test", "WLT", 18)
    payments = deploy(
        anvil.rpc,
        Artifact.bundled("WorldlandPayments"),
        operator,
        token.address,
        settler.address,
        3600,
    )
    payments.transact(operator, "setRate", gpu_type(GPU), RATE)
    key = write_key(tmp / f"settler-{uuid.uuid4().hex[:6]}.key", settler)
    return Market(anvil, token, payments, operator, settler, key, funder)


@pytest.fixture
def market(anvil: RunningAnvil, tmp_path: Path) -> Market:
    return new_market(anvil, tmp_path)


def settle_args(market: Market, rpc_url: str | None = None, **flags: object) -> list[str]:
    """The settlement flags, paced for tests (confirmations 1 unless given)."""
    options: dict[str, object] = {
        "confirmations": 1,
        "settle-interval": 0.2,
        "watch-interval": 0.5,
        "retry-after": 0.5,
        "chain-timeout": 2,
        "replace-after": 30,
        "min-balance": 1,
    }
    options.update({name.replace("_", "-"): value for name, value in flags.items()})
    args = [
        "--chain-rpc", rpc_url or market.url,
        "--payments-contract", market.payments.address,
        "--settler-key-file", str(market.settler_key),
    ]  # fmt: skip
    for name, value in options.items():
        args += [f"--{name}", str(value)]
    return args


def settling_hub(
    data_dir: Path, market: Market, rpc_url: str | None = None, **flags: object
) -> RunningHub:
    return start_hub(data_dir, extra_args=settle_args(market, rpc_url, **flags))


@dataclass
class Provider:
    """A provider's wallet, its bearer token on the hub, and one registered node."""

    account: LocalAccount
    token: str
    node_id: str
    price: int
    pods: list[str] = field(default_factory=list)


def provider(
    client: httpx.Client, hub: RunningHub, *, gpu: str = GPU, price: int = RATE
) -> Provider:
    """A fresh wallet that logs in and registers a one-GPU node at ``price``."""
    account: LocalAccount = Account.create()
    token = login(client, account, hub.siwe_domain)
    body = {
        "host": f"gpu-{uuid.uuid4().hex[:8]}",
        "gpus": [{"name": gpu, "memory_mib": 81559, "uuid": f"GPU-{uuid.uuid4()}"}],
        "price_per_sec_wei": str(price),
    }
    response = client.post("/v1/nodes", json=body, headers=bearer(token))
    assert response.status_code == 201, response.text
    return Provider(account, token, str(response.json()["node_id"]), price)


def place_pod(client: httpx.Client, hub: RunningHub, renter: str, node: Provider) -> str:
    """The operator places a pod rented by ``renter`` on the provider's node."""
    pod_id = f"pod-{uuid.uuid4().hex[:8]}"
    body = {
        "pod_id": pod_id,
        "renter_address": renter,
        "node_id": node.node_id,
        "ssh_host": "127.0.0.1",
        "ssh_port": 22,
        "ssh_user": "root",
        "host_key": HOST_KEY,
    }
    response = client.post("/v1/admin/pods", json=body, headers=bearer(hub.admin_token))
    assert response.status_code == 201, response.text
    node.pods.append(pod_id)
    return pod_id


def post_usage(
    client: httpx.Client, node: Provider, pod_id: str, count: int, seconds: int = 60
) -> int:
    """``count`` back-to-back intervals of ``seconds`` for the pod, as its node reports them;
    returns their total in wei (at the node's price)."""
    events = []
    start = EPOCH
    for index in range(count):
        end = start + dt.timedelta(seconds=seconds)
        events.append(
            {
                "event_id": f"{pod_id}-{index}",
                "node_id": node.node_id,
                "pod_id": pod_id,
                "gpu_count": 1,
                "start": start.isoformat(),
                "end": end.isoformat(),
                "price_per_sec_wei": str(node.price),
            }
        )
        start = end
    response = client.post("/v1/usage", json=events, headers=bearer(node.token))
    assert response.status_code == 200, response.text
    assert response.json()["accepted"] == count
    return count * seconds * node.price


def rows(hub: RunningHub) -> list[dict[str, Any]]:
    """The hub's settlement rows, read from its database (read-only, while it runs)."""
    uri = f"file:{hub.data_dir / 'hub.sqlite3'}?mode=ro"
    with sqlite3.connect(uri, uri=True) as db:
        db.row_factory = sqlite3.Row
        found = [dict(r) for r in db.execute("SELECT * FROM settlements ORDER BY settlement_id")]
    db.close()
    return found


def usage_count(hub: RunningHub) -> int:
    uri = f"file:{hub.data_dir / 'hub.sqlite3'}?mode=ro"
    with sqlite3.connect(uri, uri=True) as db:
        count = int(db.execute("SELECT count(*) FROM usage_events").fetchone()[0])
    db.close()
    return count


def wait_for(
    check: Callable[[], bool], timeout: float, what: str, hub: RunningHub | None = None
) -> None:
    """Poll ``check`` until true; fail naming ``what`` (and the hub's log tail)."""
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            tail = hub.log.read_text()[-3000:] if hub is not None else ""
            pytest.fail(f"{what} within {timeout} s\n{tail}")
        time.sleep(0.1)


def all_confirmed(hub: RunningHub, count: int) -> Callable[[], bool]:
    def check() -> bool:
        found = rows(hub)
        return len(found) == count and all(r["state"] == "confirmed" for r in found)

    return check


def assert_paid_exactly_once(market: Market, hub: RunningHub, expected_wei: int) -> None:
    """Every ledger row paid once on chain, for its ledger amount, and nothing else paid."""
    paid = market.paid()
    found = rows(hub)
    ids = [int(e.args["settlementId"]) for e in paid]
    assert sorted(ids) == [r["settlement_id"] for r in found]  # each id once, none missing
    assert len(set(ids)) == len(ids)
    by_id = {int(e.args["settlementId"]): e for e in paid}
    for row in found:
        event = by_id[row["settlement_id"]]
        assert int(event.args["amount"]) == int(row["amount_wei"]) == int(row["paid_wei"])
        assert event.tx_hash == row["tx_hash"] and event.block_number == row["block"]
    assert sum(int(e.args["amount"]) for e in paid) == expected_wei


def metric(hub: RunningHub, name: str, labels: str = "") -> float:
    """One sample from the hub's /metrics (``labels`` as in the exposition, e.g. kind="x")."""
    with hub.client() as client:
        text = client.get("/metrics").text
    wanted = f"{name}{{{labels}}}" if labels else name
    for line in text.splitlines():
        if line.startswith(wanted + " "):
            return float(line.split()[-1])
    return 0.0


def sign_transfer(account: LocalAccount, market: Market, to: str, value: int) -> None:
    """A plain transfer signed with ``account``'s key (outside the hub)."""
    market.anvil.rpc.send(account, b"", to=to, gas=21_000, value=value)


def usage_for(
    client: httpx.Client,
    hub: RunningHub,
    renters: Sequence[LocalAccount],
    node: Provider,
    each: int,
) -> int:
    """``each`` one-minute intervals on a pod of ``node`` per renter; their total in wei."""
    return sum(
        post_usage(client, node, place_pod(client, hub, r.address, node), each) for r in renters
    )
