"""Crashes and outages: the hub SIGKILLed between any two steps of a payment, the chain
stopped for a while. Afterwards every usage row is paid exactly once, none skipped."""

from __future__ import annotations

import os
import random
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.rpcproxy import RpcProxy

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

# Where the worker dies: the JSON-RPC call held when the hub is killed, whether the chain
# got that call first, and so whether the batch being paid is on chain at the kill (None:
# not even signed). Together they cut every step of a payment apart.
POINTS = {
    "priced, before signing": ("eth_estimateGas", False, None),
    "signed and recorded, never sent": ("eth_sendRawTransaction", False, False),
    "sent, before the node answered": ("eth_sendRawTransaction", True, True),
    "mined, before its receipt was read": ("eth_getTransactionReceipt", False, True),
    "receipt read, before the outcome was recorded": ("eth_blockNumber", False, True),
}
ROWS_PER_RENTER = 8


@pytest.fixture
def proxy(market: Market) -> Iterator[RpcProxy]:
    running = RpcProxy(market.url)
    yield running
    running.close()


@pytest.mark.parametrize("point", POINTS)
def test_a_worker_killed_at_any_point_pays_every_row_once(
    point: str, market: Market, proxy: RpcProxy, tmp_path: Path
) -> None:
    method, forwarded, on_chain = POINTS[point]
    occurrence = random.Random(point).randint(1, 3)  # which batch: seeded, so reproducible
    renters = [market.renter(deposit=10**15) for _ in range(2)]
    data = tmp_path / "hub"
    hub = settling_hub(data, market, rpc_url=proxy.url, settle_batch=5)
    try:
        hold = proxy.hold(method, occurrence=occurrence, forward=forwarded)
        with hub.client() as client:
            node = provider(client, hub)
            total = usage_for(client, hub, renters, node, ROWS_PER_RENTER)
        assert hold.hit.wait(30), f"the worker never made call {occurrence} of {method}"
        hub.process.kill()
        hub.process.wait()
    finally:
        hub.stop()
        proxy.release()
    at_kill = rows(hub)
    assert len(at_kill) == 2 * ROWS_PER_RENTER
    submitted = {r["tx_hash"] for r in at_kill if r["state"] == "submitted"}
    if on_chain is None:
        assert submitted == set()
    else:
        (tx_hash,) = submitted  # one transaction in flight, recorded before it was sent
        assert (market.anvil.rpc.receipt(tx_hash) is not None) is on_chain

    hub = settling_hub(data, market, rpc_url=proxy.url, settle_batch=5)
    try:
        wait_for(all_confirmed(hub, 2 * ROWS_PER_RENTER), 30, "every row confirmed", hub)
        assert_paid_exactly_once(market, hub, total)
        for renter in renters:
            assert market.deposit_of(renter) == 10**15 - total // 2
        assert market.earnings_of(node.account.address) == total
    finally:
        hub.stop()


def test_rows_wait_while_the_chain_is_stopped_and_are_paid_when_it_returns(
    market: Market, tmp_path: Path
) -> None:
    renter = market.renter(deposit=10**15)
    hub = settling_hub(tmp_path / "hub", market, chain_timeout=1)
    anvil_pid = market.anvil.process.pid
    try:
        with hub.client() as client:
            node = provider(client, hub)
            total = usage_for(client, hub, [renter], node, 3)
            wait_for(all_confirmed(hub, 3), 20, "the first rows confirmed", hub)
            os.kill(anvil_pid, signal.SIGSTOP)
            try:
                total += usage_for(client, hub, [renter], node, 4)
                down = lambda: metric(hub, "worldland_settlement_chain_up") == 0  # noqa: E731
                wait_for(down, 15, "the hub seeing the chain down")
                time.sleep(1.5)  # several rounds against a chain that does not answer
                waiting = [r["state"] for r in rows(hub)][3:]
                assert len(waiting) == 4 and "confirmed" not in waiting
            finally:
                os.kill(anvil_pid, signal.SIGCONT)
            wait_for(all_confirmed(hub, 7), 30, "every row confirmed once the chain is back", hub)
        assert_paid_exactly_once(market, hub, total)
        log = hub.log.read_text()
        assert "did not answer" in log and "answers again" in log
        assert metric(hub, "worldland_settlement_chain_up") == 1
    finally:
        hub.stop()
