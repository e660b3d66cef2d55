"""What the earnings and balance endpoints read: the ledger's totals and the chain's figures.

Totals are summed in Python: wei amounts are decimal text in the database and overflow
SQLite's 64-bit integers long before a provider's lifetime earnings would. Chain reads use
a client of their own with a short timeout, so a slow RPC makes an answer say the chain
figure is unknown (``chain_error``) instead of holding the request.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from hub_stub.chain import Artifact, Contract, Rpc
from hub_stub.settlement.config import SettlementConfig
from hub_stub.store import Store

# Seconds a chain read inside a request may take.
READ_TIMEOUT = 3.0
# A usage row with no settlement row yet is pending like a priced one.
PENDING = (None, "priced", "submitted")

_ROWS = (
    "SELECT u.node_id, u.seconds, u.gpu_count, u.wei, n.gpus, s.gpu_name, s.state, s.paid_wei, "
    "s.reason, s.block, s.tx_hash FROM usage_events u JOIN nodes n ON n.node_id = u.node_id "
    "LEFT JOIN settlements s ON s.usage_rowid = u.rowid "
)


@dataclass
class Totals:
    """Sums over usage rows: what was billed, and how much of it is paid, pending, failed."""

    intervals: int = 0
    seconds: int = 0
    gpu_seconds: int = 0
    billed_wei: int = 0
    paid_wei: int = 0
    pending_wei: int = 0
    failed_wei: int = 0
    failed_reasons: Counter[str] = field(default_factory=Counter)
    # The newest confirmed payment among the rows: where to look it up on chain.
    last_block: int | None = None
    last_tx_hash: str | None = None

    def add(self, row: sqlite3.Row) -> None:
        wei = int(row["wei"])
        self.intervals += 1
        self.seconds += int(row["seconds"])
        self.gpu_seconds += int(row["seconds"]) * int(row["gpu_count"])
        self.billed_wei += wei
        state = row["state"]
        if state == "confirmed":
            self.paid_wei += int(row["paid_wei"])
            self._paid_in(int(row["block"]), str(row["tx_hash"]))
        elif state in PENDING:
            self.pending_wei += wei
        else:
            self.failed_wei += wei
            self.failed_reasons[str(row["reason"])] += 1

    def merge(self, other: Totals) -> None:
        """Add another group's sums to these."""
        self.intervals += other.intervals
        self.seconds += other.seconds
        self.gpu_seconds += other.gpu_seconds
        self.billed_wei += other.billed_wei
        self.paid_wei += other.paid_wei
        self.pending_wei += other.pending_wei
        self.failed_wei += other.failed_wei
        self.failed_reasons.update(other.failed_reasons)
        if other.last_block is not None and other.last_tx_hash is not None:
            self._paid_in(other.last_block, other.last_tx_hash)

    def _paid_in(self, block: int, tx_hash: str) -> None:
        if self.last_block is None or block > self.last_block:
            self.last_block, self.last_tx_hash = block, tx_hash


def provider_totals(store: Store, provider: str) -> dict[tuple[str, str], Totals]:
    """The provider's usage rows summed per (node, GPU type), in node order."""
    groups: dict[tuple[str, str], Totals] = {}
    with store.read() as db:
        rows = db.execute(_ROWS + "WHERE n.owner = ? ORDER BY u.node_id", (provider,)).fetchall()
    for row in rows:
        key = (str(row["node_id"]), _gpu_name(row))
        groups.setdefault(key, Totals()).add(row)
    return groups


def renter_totals(store: Store, renter: str) -> Totals:
    """The renter's usage rows summed."""
    totals = Totals()
    with store.read() as db:
        for row in db.execute(_ROWS + "WHERE u.renter = ?", (renter,)):
            totals.add(row)
    return totals


def _gpu_name(row: sqlite3.Row) -> str:
    """The GPU type a row is (or will be) settled as: the node's GPU model."""
    if row["gpu_name"] is not None:
        return str(row["gpu_name"])
    return ", ".join(sorted({str(gpu["name"]) for gpu in json.loads(row["gpus"])}))


class ChainReads:
    """The contract's view of one address, for the API (see the module docstring)."""

    def __init__(self, config: SettlementConfig) -> None:
        self.rpc = Rpc(config.rpc_url, timeout=min(READ_TIMEOUT, config.rpc_timeout))
        self.contract = Contract(self.rpc, Artifact.bundled("WorldlandPayments"), config.contract)
        self.confirmations = config.confirmations
        self._token: dict[str, Any] | None = None
        self._lock = threading.Lock()

    def token(self) -> dict[str, Any]:
        """The payment token's address, symbol and decimals (read once)."""
        with self._lock:
            if self._token is None:
                address = str(self.contract.call("token"))
                # Any ERC-20 answers these; TestToken's ABI declares them.
                erc20 = Contract(self.rpc, Artifact.bundled("TestToken"), address)
                self._token = {
                    "address": address,
                    "symbol": str(erc20.call("symbol")),
                    "decimals": int(erc20.call("decimals")),
                }
            return self._token

    def earnings(self, provider: str) -> int:
        """What the provider can withdraw now."""
        return int(self.contract.call("earnings", provider))

    def deposit(self, renter: str) -> tuple[int, int, int]:
        """The renter's deposit, and the pending withdrawal request (amount, available at)."""
        deposit = int(self.contract.call("deposits", renter))
        amount, available_at = self.contract.call("withdrawals", renter)
        return deposit, int(amount), int(available_at)

    def close(self) -> None:
        self.rpc.close()
