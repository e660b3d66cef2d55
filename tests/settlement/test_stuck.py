"""A transaction stuck in the pool (anvil's mining paused) is replaced at a higher gas price."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.hub import RunningHub

from .conftest import (
    Market,
    all_confirmed,
    assert_paid_exactly_once,
    metric,
    provider,
    rows,
    settling_hub,
    usage_for,
    wait_for,
)


def attempts(hub: RunningHub) -> list[tuple[str, int]]:
    """(hash, gas price) of every signed version of the hub's transactions, oldest first."""
    uri = f"file:{hub.data_dir / 'hub.sqlite3'}?mode=ro"
    with sqlite3.connect(uri, uri=True) as db:
        found = db.execute(
            "SELECT tx_hash, gas_price FROM settle_attempts ORDER BY sent_at, rowid"
        ).fetchall()
    db.close()
    return [(str(h), int(p)) for h, p in found]


@pytest.fixture
def automine_after(market: Market) -> Iterator[None]:
    """Whatever the test pauses, the module's anvil mines again afterwards."""
    yield
    market.anvil.rpc.request("evm_setAutomine", True)


def test_a_stuck_transaction_is_replaced_and_the_replacement_pays(
    market: Market, automine_after: None, tmp_path: Path
) -> None:
    rpc = market.anvil.rpc
    renter = market.renter(deposit=10**15)
    rpc.request("evm_setAutomine", False)
    hub = settling_hub(tmp_path / "hub", market, replace_after=1)
    try:
        with hub.client() as client:
            node = provider(client, hub)
            total = usage_for(client, hub, [renter], node, 4)
            wait_for(lambda: len(attempts(hub)) >= 2, 20, "a replacement", hub)
            (first, first_price), (_, second_price) = attempts(hub)[:2]
            assert second_price >= first_price * 1.125
            pool = rpc.request("txpool_content")["pending"]
            hashes = [tx["hash"] for by_nonce in pool.values() for tx in by_nonce.values()]
            # One transaction waits, a replacement: the node dropped the version it replaced.
            assert len(hashes) == 1 and hashes[0] in {h for h, _ in attempts(hub)[1:]}
            assert all(r["state"] == "submitted" for r in rows(hub))
            assert metric(hub, "worldland_settlement_transactions_total", 'event="replaced"') >= 1
            rpc.request("evm_mine")
            wait_for(all_confirmed(hub, 4), 20, "rows confirmed once a block is mined", hub)
        mined = {r["tx_hash"] for r in rows(hub)}
        assert first not in mined and mined <= {h for h, _ in attempts(hub)[1:]}
        assert rpc.receipt(first) is None
        assert_paid_exactly_once(market, hub, total)
        assert "not mined after" in hub.log.read_text()
    finally:
        hub.stop()
