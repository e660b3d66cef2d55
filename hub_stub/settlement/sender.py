"""The settler's transactions: one nonce sequence, write-ahead, rebroadcast, replacement.

Why a crash never pays twice or skips a row:

* A transaction is signed, then recorded with its rows (``submitted``) in one SQLite
  transaction, and only then broadcast. After a crash anywhere, every transaction that may
  be on chain is in the database, raw bytes included.
* A transaction not yet mined is broadcast again on every round (the node answers "already
  known" when it has it): a crash between recording and broadcasting, or a node that lost
  its pool, only delays it. Stuck longer than ``replace_after``, it is signed again with
  the same nonce and calldata at a higher gas price (recorded first, like the original);
  whichever version is mined, the rows are the same.
* A nonce serves one transaction, so at most one version is mined. Once the chain's nonce
  has passed it and no version has a receipt, another transaction took the nonce: the rows
  go back to ``priced`` (and the watch reports a transaction the worker did not send).
* Rows become ``confirmed`` or ``failed`` only from the receipt of a block with enough
  confirmations, read again at that moment (a reorg that removed it leaves them waiting).
* Under all of this, the contract records every paid settlement id and refuses it again
  (``AlreadySettled``): a row paid by a transaction the database lost is found by its
  ``Paid`` log and marked confirmed. The settlement id on chain is the proof.

At most one transaction is unmined at a time (one in-flight sequence): the next is signed
once the previous has a receipt, so nonces never leave gaps and a replacement never races a
successor. Mined transactions wait for their confirmations without holding up the next.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass

from hub_stub.chain import GAS_MARGIN, Contract, Receipt, Reverted, RpcError, gpu_type
from hub_stub.metrics import HubMetrics
from hub_stub.settlement import ledger
from hub_stub.settlement.config import SettlementConfig
from hub_stub.settlement.ledger import OpenTx, Outcome, Row
from hub_stub.signer import Signer
from hub_stub.store import Store

log = logging.getLogger("hub_stub.settlement")
# A replacement pays at least this much more per gas: nodes refuse a replacement that does
# not outbid the original (geth by 10 %).
REPLACEMENT_BUMP = 1.125
# The contract's Refusal enum, by value: (reason, retried later?).
REFUSALS = {
    2: ("unknown-gpu-type", True),
    3: ("insufficient-deposit", True),
    4: ("zero-provider", False),
}
ALREADY_SETTLED = 1
# What a node answers a rebroadcast of a transaction it has, or has mined (geth, anvil).
BENIGN_REFUSALS = ("already known", "already imported", "nonce too low")


@dataclass(frozen=True)
class Tracked:
    """What a look at the open transactions found."""

    in_flight: bool  # a transaction is not mined yet: sign no other
    finalized: int  # transactions whose rows got their outcome this round


class Sender:
    """Signs, records, broadcasts and follows the settler's transactions."""

    def __init__(
        self,
        store: Store,
        contract: Contract,
        signer: Signer,
        config: SettlementConfig,
        metrics: HubMetrics,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.store = store
        self.contract = contract
        self.rpc = contract.rpc
        self.signer = signer
        self.config = config
        self.metrics = metrics
        self.clock = clock

    # ------------------------------------------------------------------ new transactions

    def submit(self, rows: list[Row]) -> None:
        """Pay ``rows`` in one ``payments`` transaction: estimate, sign, record, broadcast.

        Items are grouped per (renter, provider, GPU type), in id order within a group.
        A batch the contract would revert as a whole (the settler rotated away, say) fails
        its rows with the contract's error, to be retried later, without spending gas.
        """
        ordered = sorted(rows, key=lambda r: (r.renter, r.provider, r.gpu_name, r.settlement_id))
        items = [
            (r.renter, r.provider, r.gpu_seconds, gpu_type(r.gpu_name), r.settlement_id)
            for r in ordered
        ]
        data = self.contract.encode("payments", items)
        sender = self.signer.address
        now = self.clock()
        try:
            estimate = self.rpc.estimate_gas(
                sender, data, self.contract.address, self.contract.artifact
            )
        except Reverted as revert:
            detail = f"the contract refused the whole batch: {revert}"
            log.error("settlement batch of %d rows refused: %s", len(rows), revert)
            retry = now + self.config.retry_after
            ledger.mark_failed(
                self.store, [(r.settlement_id, "reverted", detail) for r in rows], now, retry
            )
            return
        gas = int(estimate * (1 + GAS_MARGIN))
        nonce = max(ledger.next_nonce(self.store, sender), self.rpc.nonce(sender, "pending"))
        gas_price = self._capped(self.rpc.gas_price())
        signed = self.signer.sign_transaction(self._tx(nonce, gas, data, gas_price))
        ids = [r.settlement_id for r in ordered]
        ledger.record_tx(
            self.store,
            sender=sender,
            nonce=nonce,
            gas=gas,
            data=data,
            signed=signed,
            gas_price=gas_price,
            ids=ids,
            now=now,
        )
        self.metrics.transactions.labels(event="sent").inc()
        log.info(
            "sent %s: %d rows, nonce %d, gas price %d", signed.tx_hash, len(ids), nonce, gas_price
        )
        self._broadcast(signed.raw)

    def _tx(self, nonce: int, gas: int, data: bytes, gas_price: int) -> dict[str, object]:
        return {
            "to": self.contract.address,
            "data": data,
            "gas": gas,
            "gasPrice": gas_price,
            "nonce": nonce,
            "chainId": self.rpc.chain_id,
            "value": 0,
        }

    def _capped(self, gas_price: int) -> int:
        cap = self.config.max_gas_price
        return gas_price if cap is None else min(gas_price, cap)

    def _broadcast(self, raw: bytes) -> None:
        """Send a signed transaction; a node's refusal is logged, never raised.

        "already known" and "nonce too low" are what a rebroadcast meets when the node has
        the transaction or it is mined; anything else (no funds for gas, say) leaves it
        unmined, which the next rounds see: rebroadcast, replacement, the balance alert.
        Only a chain that does not answer raises (the worker then waits for it).
        """
        try:
            self.rpc.send_raw(raw)
        except RpcError as refused:
            text = str(refused).lower()
            level = logging.DEBUG if any(m in text for m in BENIGN_REFUSALS) else logging.WARNING
            log.log(level, "the node refused the broadcast: %s", refused)

    # ------------------------------------------------------------------ open transactions

    def track(self) -> Tracked:
        """Follow every open transaction to its outcome (see the module docstring)."""
        in_flight = False
        finalized = 0
        head: int | None = None
        for tx in ledger.open_txs(self.store):
            # The nonce first: a receipt that appears after it was read is still found below.
            chain_nonce = self.rpc.nonce(tx.sender, "latest")
            receipt = self._receipt(tx)
            if receipt is None:
                if tx.nonce < chain_nonce:
                    moved = ledger.drop(self.store, tx.tx_id, self.clock())
                    self.metrics.transactions.labels(event="dropped").inc()
                    log.warning(
                        "nonce %d was taken by another transaction: %d rows will be sent again",
                        tx.nonce,
                        moved,
                    )
                    continue
                in_flight = True
                self._nudge(tx)
                continue
            head = self.rpc.block_number() if head is None else head
            self.metrics.block.set(head)
            if head - receipt.block_number + 1 >= self.config.confirmations:
                self._finalize(tx, receipt)
                finalized += 1
        return Tracked(in_flight=in_flight, finalized=finalized)

    def _receipt(self, tx: OpenTx) -> Receipt | None:
        for attempt in reversed(tx.attempts):
            receipt = self.rpc.receipt(attempt.tx_hash)
            if receipt is not None:
                return receipt
        return None

    def _nudge(self, tx: OpenTx) -> None:
        """Rebroadcast an unmined transaction, or replace it once it has waited too long."""
        latest = tx.attempts[-1]
        now = self.clock()
        if now - latest.sent_at < self.config.replace_after:
            self._broadcast(latest.raw)
            return
        price = self._capped(
            max(math.ceil(latest.gas_price * REPLACEMENT_BUMP), self.rpc.gas_price())
        )
        if price <= latest.gas_price:
            log.warning(
                "transaction %s (nonce %d) is stuck at the gas price ceiling %d wei",
                latest.tx_hash,
                tx.nonce,
                latest.gas_price,
            )
            self._broadcast(latest.raw)
            return
        signed = self.signer.sign_transaction(self._tx(tx.nonce, tx.gas, tx.data, price))
        ledger.add_attempt(self.store, tx.tx_id, signed, price, now)
        self.metrics.transactions.labels(event="replaced").inc()
        log.warning(
            "transaction %s (nonce %d) not mined after %.0f s: replaced by %s at gas price "
            "%d wei (was %d)",
            latest.tx_hash,
            tx.nonce,
            now - latest.sent_at,
            signed.tx_hash,
            price,
            latest.gas_price,
        )
        self._broadcast(signed.raw)

    def _finalize(self, tx: OpenTx, receipt: Receipt) -> None:
        now = self.clock()
        retry = now + self.config.retry_after
        outcomes: dict[int, Outcome] = {}
        # A failed transaction (out of gas, a revert) emits nothing and pays nothing.
        unmentioned = None
        if receipt.status != 1:
            detail = f"transaction {receipt.tx_hash} failed in block {receipt.block_number}"
            unmentioned = Outcome("failed", reason="reverted", detail=detail, retry_at=retry)
            self.metrics.transactions.labels(event="reverted").inc()
            log.error("%s: its rows will be retried", detail)
        for event in self.contract.events(receipt):
            sid = int(event.args["settlementId"])
            if event.name == "Paid":
                outcomes[sid] = Outcome(
                    "confirmed",
                    tx_hash=receipt.tx_hash,
                    block=receipt.block_number,
                    paid_wei=int(event.args["amount"]),
                )
            elif event.name == "PaymentRefused":
                outcomes[sid] = self._refused(sid, int(event.args["reason"]), retry)
        ledger.finalize(
            self.store,
            tx.tx_id,
            tx_hash=receipt.tx_hash,
            block=receipt.block_number,
            gas_used=receipt.gas_used,
            outcomes=outcomes,
            unmentioned=unmentioned,
            now=now,
        )
        self.metrics.transactions.labels(event="confirmed").inc()

    def _refused(self, sid: int, reason: int, retry: float) -> Outcome:
        """A refused item: paid earlier (found by its ``Paid`` log), or failed with why."""
        if reason == ALREADY_SETTLED:
            paid = self.contract.logs("Paid", sid.to_bytes(32, "big"))
            if paid:
                log.warning("settlement id %d was already paid in %s", sid, paid[0].tx_hash)
                return Outcome(
                    "confirmed",
                    tx_hash=paid[0].tx_hash,
                    block=paid[0].block_number,
                    paid_wei=int(paid[0].args["amount"]),
                )
            return Outcome(
                "failed",
                reason="already-settled",
                detail=f"the contract says id {sid} is paid, but no Paid log was found",
            )
        name, retried = REFUSALS.get(reason, (f"refused-{reason}", False))
        detail = f"the contract refused settlement id {sid}: {name}"
        return Outcome("failed", reason=name, detail=detail, retry_at=retry if retried else None)
