"""The worker against the real hub and a real anvil: usage rows become payments, once each."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

import pytest

from tests.support.anvil import RunningAnvil

from .conftest import (
    GPU,
    RATE,
    Market,
    all_confirmed,
    assert_paid_exactly_once,
    bearer,
    new_market,
    place_pod,
    post_usage,
    provider,
    rows,
    settling_hub,
    usage_for,
    wait_for,
)


def test_n_intervals_become_n_paid_settlement_ids(market: Market, tmp_path: Path) -> None:
    renters = [market.renter(deposit=10**15) for _ in range(3)]
    hub = settling_hub(tmp_path / "hub", market, settle_batch=7)
    try:
        with hub.client() as client:
            nodes = [provider(client, hub), provider(client, hub)]
            owed = {}
            for index, renter in enumerate(renters):
                node = nodes[index % 2]
                owed[renter.address] = post_usage(
                    client, node, place_pod(client, hub, renter.address, node), 8 + index
                )
            total = sum(owed.values())
            wait_for(all_confirmed(hub, 27), 30, "27 rows confirmed", hub)
            assert_paid_exactly_once(market, hub, total)
            for renter in renters:
                assert market.deposit_of(renter) == 10**15 - owed[renter.address]
            earned = [market.earnings_of(n.account.address) for n in nodes]
            assert earned == [owed[renters[0].address] + owed[renters[2].address],
                              owed[renters[1].address]]  # fmt: skip
            # Several transactions (batches of at most 7), each grouped per renter-provider.
            txs = {r["tx_hash"] for r in rows(hub)}
            assert len(txs) >= 4
            mine = client.get("/v1/earnings", headers=bearer(nodes[0].token)).json()
            assert mine["total"]["paid_wei"] == mine["total"]["billed_wei"] == str(earned[0])
            assert mine["total"]["pending_wei"] == "0"
            assert mine["withdrawable_wei"] == str(earned[0])
            assert [g["gpu_type"] for g in mine["groups"]] == [GPU]
    finally:
        hub.stop()


def test_refused_rows_fail_with_their_reason_and_others_are_paid(
    market: Market, tmp_path: Path
) -> None:
    rich, poor = market.renter(deposit=10**15), market.renter(deposit=2 * 60 * RATE)
    hub = settling_hub(tmp_path / "hub", market, retry_after=0.5)
    try:
        with hub.client() as client:
            node = provider(client, hub)
            expensive = provider(client, hub, price=RATE + 1)
            unpriced = provider(client, hub, gpu="NVIDIA A100-SXM4-80GB")
            billed = usage_for(client, hub, [rich], node, 3)
            billed += usage_for(client, hub, [poor], node, 5)  # its deposit covers 2
            usage_for(client, hub, [rich], expensive, 2)
            usage_for(client, hub, [rich], unpriced, 2)

            def settled() -> bool:
                return sum(r["state"] in ("confirmed", "failed") for r in rows(hub)) == 12

            wait_for(settled, 30, "every row confirmed or failed", hub)
            found = rows(hub)
            reasons = sorted((r["renter"] == poor.address, r["reason"] or "") for r in found)
            assert reasons == sorted(
                [(False, "")] * 3 + [(True, "")] * 2 + [(True, "insufficient-deposit")] * 3
                + [(False, "rate-mismatch")] * 2 + [(False, "unknown-gpu-type")] * 2
            )  # fmt: skip
            failed = [r for r in found if r["state"] == "failed"]
            assert all(r["tx_id"] is None for r in failed)  # refused before any gas was spent
            short = next(r for r in failed if r["reason"] == "insufficient-deposit")
            assert f"renter {poor.address} has 0 wei in escrow" in short["detail"]
            mismatch = next(r for r in failed if r["reason"] == "rate-mismatch")
            assert f"{RATE + 1} wei per GPU-second" in mismatch["detail"]
            assert market.deposit_of(rich) == 10**15 - 3 * 60 * RATE
            assert market.deposit_of(poor) == 0

            mine = client.get("/v1/earnings", headers=bearer(expensive.token)).json()
            assert mine["total"]["failed_reasons"] == {"rate-mismatch": 2}
            assert mine["total"]["paid_wei"] == "0"

            # The renter tops up: the failed rows are checked again and paid.
            market.deposit(poor, 10**15)

            def topped_up() -> bool:
                return sum(r["state"] == "confirmed" for r in rows(hub)) == 8

            wait_for(topped_up, 30, "the renter's rows paid after the top-up", hub)
        assert sum(int(e.args["amount"]) for e in market.paid()) == billed
        assert len(market.paid()) == 8
    finally:
        hub.stop()


def test_rows_wait_for_their_confirmations(market: Market, tmp_path: Path) -> None:
    renter = market.renter(deposit=10**15)
    hub = settling_hub(tmp_path / "hub", market, confirmations=3)
    try:
        with hub.client() as client:
            node = provider(client, hub)
            total = usage_for(client, hub, [renter], node, 4)
            wait_for(lambda: len(market.paid()) == 4, 20, "the payment mined", hub)
            wait_for(
                lambda: all(r["state"] == "submitted" for r in rows(hub)) and len(rows(hub)) == 4,
                5,
                "rows submitted",
                hub,
            )
            market.anvil.rpc.request("anvil_mine", "0x1")  # 2 of 3 confirmations
            time.sleep(1.0)  # five worker rounds: none may count 2 blocks as 3
            assert all(r["state"] == "submitted" for r in rows(hub))
            market.anvil.rpc.request("anvil_mine", "0x1")
            wait_for(all_confirmed(hub, 4), 10, "confirmed after the third block", hub)
        assert_paid_exactly_once(market, hub, total)
    finally:
        hub.stop()


def test_a_restored_database_never_pays_twice(market: Market, tmp_path: Path) -> None:
    """A database from before the payments (a backup) sends them again: the contract refuses
    the ids as already settled, and the worker marks the rows paid by the original."""
    renter = market.renter(deposit=10**15)
    data = tmp_path / "hub"
    hub = settling_hub(data, market)
    try:
        with hub.client() as client:
            node = provider(client, hub)
            total = usage_for(client, hub, [renter], node, 5)
            wait_for(all_confirmed(hub, 5), 20, "5 rows confirmed", hub)
    finally:
        hub.stop()
    before = rows(hub)
    with sqlite3.connect(data / "hub.sqlite3") as db:
        db.execute(
            "UPDATE settlements SET state = 'priced', tx_id = NULL, tx_hash = NULL, block = NULL, "
            "paid_wei = NULL"
        )
        db.execute("DELETE FROM settle_attempts")
        db.execute("DELETE FROM settle_txs")
    db.close()
    hub = settling_hub(data, market)
    try:
        wait_for(all_confirmed(hub, 5), 20, "the rows confirmed again", hub)
        after = rows(hub)
        assert [(r["tx_hash"], r["block"], r["paid_wei"]) for r in after] == [
            (r["tx_hash"], r["block"], r["paid_wei"]) for r in before
        ]
        assert_paid_exactly_once(market, hub, total)
        assert market.deposit_of(renter) == 10**15 - total
        assert "was already paid in" in hub.log.read_text()
    finally:
        hub.stop()


def test_the_database_refuses_another_contract(
    market: Market, anvil: RunningAnvil, tmp_path: Path
) -> None:
    data = tmp_path / "hub"
    settling_hub(data, market).stop()
    other = new_market(anvil, tmp_path)
    with pytest.raises(RuntimeError, match="settles against contract"):
        settling_hub(data, other)


def test_a_batch_the_contract_refuses_fails_reverted_and_is_retried(
    market: Market, tmp_path: Path
) -> None:
    """The operator rotated the settler away from this hub's key: every batch would revert,
    so rows fail ``reverted`` (no gas spent) until the key is the settler again."""
    renter = market.renter(deposit=10**15)
    market.payments.transact(market.operator, "setSettler", market.funder.address)
    hub = settling_hub(tmp_path / "hub", market, retry_after=0.5)
    try:
        with hub.client() as client:
            node = provider(client, hub)
            total = usage_for(client, hub, [renter], node, 3)

            def reverted() -> bool:
                found = rows(hub)
                return len(found) == 3 and all(r["reason"] == "reverted" for r in found)

            wait_for(reverted, 20, "rows failed reverted", hub)
            assert "NotSettler" in rows(hub)[0]["detail"]
            assert market.anvil.rpc.nonce(market.settler.address) == 0  # no gas spent
            market.payments.transact(market.operator, "setSettler", market.settler.address)
            wait_for(all_confirmed(hub, 3), 20, "rows paid once the key is the settler", hub)
        assert_paid_exactly_once(market, hub, total)
    finally:
        hub.stop()
