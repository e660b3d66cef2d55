"""The database side of settlement: each usage row's state, and the worker's transactions.

A usage row becomes a ``settlements`` row when priced (state ``priced``), with the dense
settlement id the contract records. The worker moves it to ``submitted`` in the same SQLite
transaction that records the signed transaction, before broadcasting it (write-ahead: after
a crash the record says what may be on chain), then to ``confirmed`` (block, amount paid)
or ``failed`` (reason) once its block has enough confirmations. A failed row with a
``retry_at`` is checked again then; a dropped transaction (its nonce taken by another) puts
its rows back to ``priced``. Every chain call happens outside these transactions.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from hub_stub.signer import SignedTx
from hub_stub.store import Store

STATES = ("priced", "submitted", "confirmed", "failed")
# Usage rows priced per call: pricing is one SQL pass, so a backlog is priced in a few.
PRICE_CHUNK = 5000


@dataclass(frozen=True)
class Row:
    """A settlement row as the worker needs it to build a payment."""

    settlement_id: int
    renter: str
    provider: str
    gpu_name: str
    gpu_seconds: int
    price_per_sec_wei: int
    amount_wei: int
    state: str


@dataclass(frozen=True)
class Attempt:
    """One signed version of a transaction (the first, or a replacement)."""

    tx_hash: str
    gas_price: int
    raw: bytes
    sent_at: float


@dataclass(frozen=True)
class OpenTx:
    """A transaction not yet final: its nonce, what it calls, and every version signed."""

    tx_id: int
    sender: str
    nonce: int
    gas: int
    data: bytes
    attempts: tuple[Attempt, ...]


@dataclass(frozen=True)
class Outcome:
    """What the chain did with one row: paid (``confirmed``) or refused (``failed``)."""

    state: str
    tx_hash: str | None = None
    block: int | None = None
    paid_wei: int | None = None
    reason: str | None = None
    detail: str | None = None
    retry_at: float | None = None


def price_new(store: Store, now: float) -> int:
    """Give each usage row not yet priced its settlement row; return how many were priced.

    The amount is the ledger's: GPU-seconds x the node's registered price per GPU-second,
    which the hub checked when it accepted the row. The GPU type is the node's GPU model;
    a node with more than one model cannot say which its row was, so that row fails for
    good (``mixed-gpu-types``).
    """
    with store.transaction() as db:
        last = db.execute("SELECT coalesce(max(usage_rowid), 0) FROM settlements").fetchone()[0]
        rows = db.execute(
            "SELECT u.rowid, u.node_id, u.event_id, u.renter, u.seconds, u.gpu_count, "
            "u.price_per_sec_wei, n.owner, n.gpus FROM usage_events u "
            "JOIN nodes n ON n.node_id = u.node_id WHERE u.rowid > ? ORDER BY u.rowid LIMIT ?",
            (last, PRICE_CHUNK),
        ).fetchall()
        for row in rows:
            names = sorted({str(gpu["name"]) for gpu in json.loads(row["gpus"])})
            gpu_seconds = int(row["seconds"]) * int(row["gpu_count"])
            price = int(row["price_per_sec_wei"])
            state, reason, detail = "priced", None, None
            if len(names) != 1:
                state, reason = "failed", "mixed-gpu-types"
                detail = f"node {row['node_id']} registered several GPU models: {names}"
            db.execute(
                "INSERT INTO settlements (usage_rowid, node_id, event_id, renter, provider, "
                "gpu_name, gpu_seconds, price_per_sec_wei, amount_wei, state, reason, detail, "
                "priced_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    row["rowid"],
                    row["node_id"],
                    row["event_id"],
                    row["renter"],
                    row["owner"],
                    ", ".join(names),
                    gpu_seconds,
                    str(price),
                    str(gpu_seconds * price),
                    state,
                    reason,
                    detail,
                    now,
                    now,
                ),
            )
    return len(rows)


def _row(record: sqlite3.Row) -> Row:
    return Row(
        settlement_id=int(record["settlement_id"]),
        renter=str(record["renter"]),
        provider=str(record["provider"]),
        gpu_name=str(record["gpu_name"]),
        gpu_seconds=int(record["gpu_seconds"]),
        price_per_sec_wei=int(record["price_per_sec_wei"]),
        amount_wei=int(record["amount_wei"]),
        state=str(record["state"]),
    )


_ROW_COLUMNS = (
    "settlement_id, renter, provider, gpu_name, gpu_seconds, price_per_sec_wei, amount_wei, state"
)


def candidates(store: Store, now: float, limit: int) -> list[Row]:
    """Rows to pay next, in id order: priced ones, and failed ones due for another look.

    Both kinds are read up to ``limit`` each, so failed rows due again are re-checked even
    while new rows keep the batches full.
    """
    with store.read() as db:
        priced = db.execute(
            f"SELECT {_ROW_COLUMNS} FROM settlements WHERE state = 'priced' "
            "ORDER BY settlement_id LIMIT ?",
            (limit,),
        ).fetchall()
        due = db.execute(
            f"SELECT {_ROW_COLUMNS} FROM settlements WHERE state = 'failed' "
            "AND retry_at IS NOT NULL AND retry_at <= ? ORDER BY settlement_id LIMIT ?",
            (now, limit),
        ).fetchall()
    return sorted((_row(r) for r in [*priced, *due]), key=lambda r: r.settlement_id)


def mark_failed(
    store: Store, failures: Iterable[tuple[int, str, str]], now: float, retry_at: float | None
) -> None:
    """Record ``(settlement_id, reason, detail)`` for rows refused before any transaction."""
    with store.transaction() as db:
        db.executemany(
            "UPDATE settlements SET state = 'failed', reason = ?, detail = ?, retry_at = ?, "
            "tx_id = NULL, updated_at = ? WHERE settlement_id = ?",
            [(reason, detail, retry_at, now, sid) for sid, reason, detail in failures],
        )


def record_tx(
    store: Store,
    *,
    sender: str,
    nonce: int,
    gas: int,
    data: bytes,
    signed: SignedTx,
    gas_price: int,
    ids: Sequence[int],
    now: float,
) -> int:
    """Write the signed transaction and mark its rows submitted, before it is broadcast."""
    with store.transaction() as db:
        tx_id = int(
            db.execute(
                "INSERT INTO settle_txs (sender, nonce, gas, data, state, created_at) "
                "VALUES (?, ?, ?, ?, 'sent', ?)",
                (sender, nonce, gas, data, now),
            ).lastrowid
            or 0
        )
        _insert_attempt(db, tx_id, signed, gas_price, now)
        db.executemany(
            "UPDATE settlements SET state = 'submitted', tx_id = ?, tx_hash = ?, reason = NULL, "
            "detail = NULL, retry_at = NULL, updated_at = ? WHERE settlement_id = ?",
            [(tx_id, signed.tx_hash, now, sid) for sid in ids],
        )
    return tx_id


def add_attempt(store: Store, tx_id: int, signed: SignedTx, gas_price: int, now: float) -> None:
    """Record a replacement (same nonce, higher gas price) before it is broadcast."""
    with store.transaction() as db:
        _insert_attempt(db, tx_id, signed, gas_price, now)
        db.execute(
            "UPDATE settlements SET tx_hash = ?, updated_at = ? WHERE tx_id = ?",
            (signed.tx_hash, now, tx_id),
        )


def _insert_attempt(
    db: sqlite3.Connection, tx_id: int, signed: SignedTx, gas_price: int, now: float
) -> None:
    db.execute(
        "INSERT INTO settle_attempts (tx_hash, tx_id, gas_price, raw, sent_at) "
        "VALUES (?, ?, ?, ?, ?)",
        (signed.tx_hash, tx_id, str(gas_price), signed.raw, now),
    )


def open_txs(store: Store) -> list[OpenTx]:
    """Transactions sent and not final, oldest nonce first, each with its attempts."""
    with store.read() as db:
        txs = db.execute(
            "SELECT tx_id, sender, nonce, gas, data FROM settle_txs WHERE state = 'sent' "
            "ORDER BY nonce"
        ).fetchall()
        found = []
        for tx in txs:
            attempts = db.execute(
                "SELECT tx_hash, gas_price, raw, sent_at FROM settle_attempts WHERE tx_id = ? "
                "ORDER BY sent_at, rowid",
                (tx["tx_id"],),
            ).fetchall()
            found.append(
                OpenTx(
                    tx_id=int(tx["tx_id"]),
                    sender=str(tx["sender"]),
                    nonce=int(tx["nonce"]),
                    gas=int(tx["gas"]),
                    data=bytes(tx["data"]),
                    attempts=tuple(
                        Attempt(str(a["tx_hash"]), int(a["gas_price"]), bytes(a["raw"]), a[3])
                        for a in attempts
                    ),
                )
            )
    return found


def finalize(
    store: Store,
    tx_id: int,
    *,
    tx_hash: str,
    block: int,
    gas_used: int,
    outcomes: dict[int, Outcome],
    unmentioned: Outcome | None,
    now: float,
) -> None:
    """Apply a confirmed transaction's outcome to its rows.

    Rows without an outcome of their own take ``unmentioned`` (a failed transaction emits
    no event); with None they go back to ``priced``, to be sent again: a successful
    ``payments`` emits one event per item, so only a worker bug leaves one out.
    """
    with store.transaction() as db:
        db.execute(
            "UPDATE settle_txs SET state = 'final', tx_hash = ?, block = ?, gas_used = ? "
            "WHERE tx_id = ?",
            (tx_hash, block, gas_used, tx_id),
        )
        ids = [
            r[0]
            for r in db.execute("SELECT settlement_id FROM settlements WHERE tx_id = ?", (tx_id,))
        ]
        for sid in ids:
            outcome = outcomes.get(sid, unmentioned)
            if outcome is None:
                db.execute(
                    "UPDATE settlements SET state = 'priced', tx_id = NULL, updated_at = ? "
                    "WHERE settlement_id = ?",
                    (now, sid),
                )
                continue
            db.execute(
                "UPDATE settlements SET state = ?, tx_hash = ?, block = ?, paid_wei = ?, "
                "reason = ?, detail = ?, retry_at = ?, updated_at = ? WHERE settlement_id = ?",
                (
                    outcome.state,
                    outcome.tx_hash,
                    outcome.block,
                    None if outcome.paid_wei is None else str(outcome.paid_wei),
                    outcome.reason,
                    outcome.detail,
                    outcome.retry_at,
                    now,
                    sid,
                ),
            )


def drop(store: Store, tx_id: int, now: float) -> int:
    """A transaction whose nonce another one took: its rows go back to ``priced``."""
    with store.transaction() as db:
        db.execute("UPDATE settle_txs SET state = 'dropped' WHERE tx_id = ?", (tx_id,))
        return db.execute(
            "UPDATE settlements SET state = 'priced', tx_id = NULL, tx_hash = NULL, "
            "updated_at = ? WHERE tx_id = ? AND state = 'submitted'",
            (now, tx_id),
        ).rowcount


def next_nonce(store: Store, sender: str) -> int:
    """One past the highest nonce this database has signed for ``sender`` (0 if none)."""
    with store.read() as db:
        row = db.execute("SELECT max(nonce) FROM settle_txs WHERE sender = ?", (sender,)).fetchone()
    return 0 if row[0] is None else int(row[0]) + 1


def nonce_states(store: Store, sender: str, first: int, end: int) -> dict[int, str]:
    """The state of each transaction ``sender`` signed with a nonce in ``[first, end)``."""
    with store.read() as db:
        rows = db.execute(
            "SELECT nonce, state FROM settle_txs WHERE sender = ? AND nonce >= ? AND nonce < ?",
            (sender, first, end),
        ).fetchall()
    return {int(r["nonce"]): str(r["state"]) for r in rows}


def counts(store: Store) -> dict[str, int]:
    """Rows per state (every state present, 0 when none)."""
    with store.read() as db:
        rows = db.execute("SELECT state, count(*) FROM settlements GROUP BY state").fetchall()
    found = {str(r[0]): int(r[1]) for r in rows}
    return {state: found.get(state, 0) for state in STATES}


class ContractMismatch(Exception):
    """The database settles against another contract or chain: ids would be reused there."""


def pin_contract(store: Store, contract: str, settler: str) -> None:
    """Tie the database to one contract (its settlement ids mean nothing on another).

    A new settler (the operator rotated the hot wallet) is accepted: the unexpected-
    transaction watch starts over for it.
    """
    with store.transaction() as db:
        row = db.execute("SELECT contract, settler FROM settlement_chain").fetchone()
        if row is None:
            db.execute(
                "INSERT INTO settlement_chain (id, contract, settler) VALUES (1, ?, ?)",
                (contract, settler),
            )
        elif row["contract"] != contract:
            raise ContractMismatch(
                f"this hub's database settles against contract {row['contract']}, not "
                f"{contract}: its settlement ids are that contract's (use another --data-dir "
                "for another contract)"
            )
        elif row["settler"] != settler:
            db.execute("UPDATE settlement_chain SET settler = ?, watched_nonce = NULL", (settler,))


def pin_chain_id(store: Store, chain_id: int) -> None:
    """Record the chain id on first contact; refuse another one later (same address, other
    chain: another contract)."""
    with store.transaction() as db:
        known = db.execute("SELECT chain_id FROM settlement_chain").fetchone()[0]
        if known is None:
            db.execute("UPDATE settlement_chain SET chain_id = ?", (chain_id,))
        elif int(known) != chain_id:
            raise ContractMismatch(
                f"the RPC serves chain {chain_id}, but this hub's database settles on chain {known}"
            )


def watched_nonce(store: Store) -> int | None:
    """The settler nonce up to which the watch has accounted for every transaction."""
    with store.read() as db:
        value = db.execute("SELECT watched_nonce FROM settlement_chain").fetchone()[0]
    return None if value is None else int(value)


def set_watched_nonce(store: Store, nonce: int) -> None:
    with store.transaction() as db:
        db.execute("UPDATE settlement_chain SET watched_nonce = ?", (nonce,))
