"""The daemon's SQLite outbox: open intervals and the usage events the hub has not confirmed.

Written before anything is sent, removed only after the hub acknowledged it, so that a crash
at any point loses nothing and a resend is harmless (event ids are stable, see
:mod:`worldland_cli.daemon.slices`).

Durability: WAL journal with ``synchronous=FULL``: every COMMIT fsyncs the WAL, so a committed
state change survives SIGKILL and power loss alike (NORMAL would survive SIGKILL but not a
power cut, and the write rate, a few commits per pod per minute, makes FULL's fsync cheap).
Every state change is one transaction: cutting slices queues the events and advances the
interval's ``next_slice`` together, so after a crash either both happened or neither did.

The file is reached through :meth:`worldland_cli.host.Host.sqlite` (0600 in a 0700
directory); after that, sqlite3 reads and writes it as a library.

Why one module of about 430 lines: the schema and every statement that reads or writes it
stand together, so a change to a table is checked against all of its uses in one file.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from worldland_cli.daemon.slices import event_id, slice_start, whole_slices
from worldland_cli.errors import ActionableError
from worldland_cli.host import Host
from worldland_cli.hubclient import UsageEvent
from worldland_cli.times import format_time

SCHEMA_VERSION = 1
# Acknowledged events kept for /v1/usage ("recent intervals"); older ones are the hub's.
KEEP_ACKNOWLEDGED = 200
SCHEMA = """
CREATE TABLE intervals (
    pod_uid TEXT PRIMARY KEY,
    namespace TEXT NOT NULL,
    name TEXT NOT NULL,
    pod_id TEXT NOT NULL,
    gpu_count INTEGER NOT NULL,
    price_per_sec_wei TEXT NOT NULL,
    start INTEGER NOT NULL,
    slice_seconds INTEGER NOT NULL,
    next_slice INTEGER NOT NULL DEFAULT 0,
    seen_at INTEGER NOT NULL,
    ended_at INTEGER
);
CREATE TABLE outbox (
    event_id TEXT PRIMARY KEY,
    pod_uid TEXT NOT NULL,
    pod_id TEXT NOT NULL,
    gpu_count INTEGER NOT NULL,
    start INTEGER NOT NULL,
    "end" INTEGER NOT NULL,
    price_per_sec_wei TEXT NOT NULL,
    queued_at REAL NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt REAL NOT NULL DEFAULT 0,
    last_error TEXT
);
CREATE INDEX outbox_due ON outbox (next_attempt, queued_at);
CREATE TABLE acknowledged (
    event_id TEXT PRIMARY KEY,
    pod_id TEXT NOT NULL,
    gpu_count INTEGER NOT NULL,
    start INTEGER NOT NULL,
    "end" INTEGER NOT NULL,
    acked_at REAL NOT NULL
);
"""


class OutboxError(ActionableError):
    """The outbox file cannot be used (written by a newer worldland, or not a database)."""


@dataclass(frozen=True)
class Interval:
    """A pod's metered interval: where its grid starts and how far it has been cut."""

    pod_uid: str
    namespace: str
    name: str
    pod_id: str
    gpu_count: int
    price_per_sec_wei: int
    start: int
    slice_seconds: int
    next_slice: int = 0
    seen_at: int = 0
    ended_at: int | None = None

    @property
    def cut_until(self) -> int:
        """Everything before this second is in the outbox or already at the hub."""
        return slice_start(self.start, self.slice_seconds, self.next_slice)

    def to_json(self) -> dict[str, Any]:
        return {
            "pod_uid": self.pod_uid,
            "namespace": self.namespace,
            "name": self.name,
            "pod_id": self.pod_id,
            "gpu_count": self.gpu_count,
            "start": _iso(self.start),
            "cut_until": _iso(self.cut_until),
            "ended_at": None if self.ended_at is None else _iso(self.ended_at),
        }


@dataclass(frozen=True)
class Queued:
    """An event waiting in the outbox, with how often the hub has been asked."""

    event: UsageEvent
    attempts: int
    last_error: str | None

    @property
    def seconds(self) -> int:
        return int((self.event.end - self.event.start).total_seconds())


@dataclass(frozen=True)
class Depth:
    events: int
    oldest_queued_at: float | None
    refused: int  # events the hub answered with a refusal (kept, retried later)


def _iso(epoch: int) -> str:
    return format_time(dt.datetime.fromtimestamp(epoch, dt.UTC))


def _time(epoch: int) -> dt.datetime:
    return dt.datetime.fromtimestamp(epoch, dt.UTC)


class Outbox:
    """One node's outbox; every method is safe to call from any thread."""

    def __init__(
        self, host: Host, system_path: str, node_id: str, clock: Callable[[], float] = time.time
    ) -> None:
        self.path = system_path
        self.node_id = node_id
        self._clock = clock
        self._lock = threading.Lock()
        self._db = host.sqlite(system_path)
        self._db.row_factory = sqlite3.Row
        try:
            self._prepare()
        except sqlite3.DatabaseError as e:
            self._db.close()
            raise OutboxError(
                f"{system_path} is not a usable outbox: {e}",
                "stop the daemon and send the file to support before moving it away",
            ) from None

    def _prepare(self) -> None:
        mode = self._db.execute("PRAGMA journal_mode=WAL").fetchone()[0]
        if str(mode).lower() != "wal":
            raise sqlite3.DatabaseError(f"journal_mode is {mode}, not wal")
        self._db.execute("PRAGMA synchronous=FULL")
        version = int(self._db.execute("PRAGMA user_version").fetchone()[0])
        if version > SCHEMA_VERSION:
            raise OutboxError(
                f"{self.path} was written by a newer worldland (schema {version})",
                "upgrade worldland on this node",
            )
        if version == 0:
            with self._tx() as db:
                for statement in filter(str.strip, SCHEMA.split(";")):
                    db.execute(statement)
                db.execute(f"PRAGMA user_version={SCHEMA_VERSION}")

    def close(self) -> None:
        with self._lock:
            self._db.close()

    @contextlib.contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        """One transaction, committed (and fsynced) as a whole or not at all."""
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    # ------------------------------------------------------------------------ intervals

    def intervals(self) -> list[Interval]:
        with self._lock:
            rows = self._db.execute("SELECT * FROM intervals ORDER BY start").fetchall()
        return [_interval(r) for r in rows]

    def open(self, interval: Interval) -> Interval:
        """Record a new interval; one already recorded for the pod is kept as it is."""
        with self._tx() as db:
            db.execute(
                "INSERT OR IGNORE INTO intervals (pod_uid, namespace, name, pod_id, gpu_count, "
                "price_per_sec_wei, start, slice_seconds, next_slice, seen_at) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, 0, ?)",
                (
                    interval.pod_uid,
                    interval.namespace,
                    interval.name,
                    interval.pod_id,
                    interval.gpu_count,
                    str(interval.price_per_sec_wei),
                    interval.start,
                    interval.slice_seconds,
                    interval.start,
                ),
            )
            return self._get(db, interval.pod_uid)

    def cut(self, pod_uid: str, until: int, seen_at: int) -> tuple[Interval, int]:
        """Queue every whole slice that ends by ``until``; the interval and how many."""
        with self._tx() as db:
            current = self._get(db, pod_uid)
            count = whole_slices(current.start, current.slice_seconds, until)
            queued = self._queue_slices(db, current, count)
            db.execute(
                "UPDATE intervals SET next_slice = max(next_slice, ?), seen_at = max(seen_at, ?) "
                "WHERE pod_uid = ?",
                (count, seen_at, pod_uid),
            )
            return self._get(db, pod_uid), queued

    def close_interval(self, pod_uid: str, end: int) -> tuple[Interval, int, int]:
        """End the interval at ``end``: its remaining slices, the last one cut at ``end``.

        Returns the interval, how many events were queued, and how many seconds before what
        was already billed ``end`` lay (0 normally: the pod's status arrived after a slice
        beyond its end was cut, which cannot be taken back).
        """
        with self._tx() as db:
            current = self._get(db, pod_uid)
            if current.ended_at is not None:
                return current, 0, 0
            late = max(0, current.cut_until - end)
            end = max(end, current.cut_until)
            count = whole_slices(current.start, current.slice_seconds, end)
            queued = self._queue_slices(db, current, count)
            last = slice_start(current.start, current.slice_seconds, count)
            if end > last:
                self._queue(db, current, count, last, end)
                queued += 1
                count += 1
            db.execute(
                "UPDATE intervals SET next_slice = max(next_slice, ?), ended_at = ?, "
                "seen_at = max(seen_at, ?) WHERE pod_uid = ?",
                (count, end, end, pod_uid),
            )
            return self._get(db, pod_uid), queued, late

    def mark_seen(self, seen: Mapping[str, int]) -> None:
        """Remember until when these open intervals' pods were known to run (shutdown)."""
        with self._tx() as db:
            for uid, at in seen.items():
                db.execute(
                    "UPDATE intervals SET seen_at = max(seen_at, ?) "
                    "WHERE pod_uid = ? AND ended_at IS NULL",
                    (at, uid),
                )

    def forget(self, pod_uids: Iterable[str]) -> None:
        """Drop closed intervals of pods that are gone for good (their slices are queued)."""
        with self._tx() as db:
            for uid in pod_uids:
                db.execute(
                    "DELETE FROM intervals WHERE pod_uid = ? AND ended_at IS NOT NULL", (uid,)
                )

    def _get(self, db: sqlite3.Connection, pod_uid: str) -> Interval:
        row = db.execute("SELECT * FROM intervals WHERE pod_uid = ?", (pod_uid,)).fetchone()
        if row is None:
            raise KeyError(pod_uid)
        return _interval(row)

    def _queue_slices(self, db: sqlite3.Connection, current: Interval, count: int) -> int:
        for index in range(current.next_slice, count):
            start = slice_start(current.start, current.slice_seconds, index)
            self._queue(db, current, index, start, start + current.slice_seconds)
        return max(0, count - current.next_slice)

    def _queue(
        self, db: sqlite3.Connection, current: Interval, index: int, start: int, end: int
    ) -> None:
        db.execute(
            'INSERT OR IGNORE INTO outbox (event_id, pod_uid, pod_id, gpu_count, start, "end", '
            "price_per_sec_wei, queued_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (
                event_id(current.pod_uid, current.start, index),
                current.pod_uid,
                current.pod_id,
                current.gpu_count,
                start,
                end,
                str(current.price_per_sec_wei),
                self._clock(),
            ),
        )

    # --------------------------------------------------------------------------- events

    def due(self, now: float, limit: int) -> list[Queued]:
        """The oldest events whose next attempt is due, at most ``limit``."""
        with self._lock:
            rows = self._db.execute(
                "SELECT * FROM outbox WHERE next_attempt <= ? ORDER BY queued_at, event_id LIMIT ?",
                (now, limit),
            ).fetchall()
        return [self._queued(r) for r in rows]

    def next_attempt(self) -> float | None:
        """When the earliest waiting event is due (None: the outbox is empty)."""
        with self._lock:
            row = self._db.execute("SELECT min(next_attempt) FROM outbox").fetchone()
        return None if row[0] is None else float(row[0])

    def acknowledge(self, event_ids: Iterable[str]) -> int:
        """The hub has these events: forget them (keeping a short record); their seconds."""
        total = 0
        now = self._clock()
        with self._tx() as db:
            for name in event_ids:
                row = db.execute(
                    'SELECT pod_id, gpu_count, start, "end" FROM outbox WHERE event_id = ?',
                    (name,),
                ).fetchone()
                if row is None:
                    continue
                total += int(row["end"]) - int(row["start"])
                db.execute(
                    "INSERT OR REPLACE INTO acknowledged (event_id, pod_id, gpu_count, start, "
                    '"end", acked_at) VALUES (?, ?, ?, ?, ?, ?)',
                    (name, row["pod_id"], row["gpu_count"], row["start"], row["end"], now),
                )
                db.execute("DELETE FROM outbox WHERE event_id = ?", (name,))
            db.execute(
                "DELETE FROM acknowledged WHERE event_id NOT IN (SELECT event_id FROM "
                "acknowledged ORDER BY acked_at DESC, start DESC LIMIT ?)",
                (KEEP_ACKNOWLEDGED,),
            )
        return total

    def defer(self, event_ids: Iterable[str], until: float, error: str | None) -> None:
        """Try these again at ``until``; ``error`` is the hub's refusal, if it refused."""
        with self._tx() as db:
            for name in event_ids:
                db.execute(
                    "UPDATE outbox SET attempts = attempts + 1, next_attempt = ?, "
                    "last_error = ? WHERE event_id = ?",
                    (until, error, name),
                )

    def depth(self) -> Depth:
        with self._lock:
            row = self._db.execute(
                "SELECT count(*), min(queued_at), count(last_error) FROM outbox"
            ).fetchone()
        return Depth(int(row[0]), None if row[1] is None else float(row[1]), int(row[2]))

    def recent(self, limit: int = 50) -> dict[str, Any]:
        """What /v1/usage shows: open intervals, waiting events, the last acknowledged."""
        with self._lock:
            waiting = self._db.execute(
                "SELECT * FROM outbox ORDER BY queued_at, event_id LIMIT ?", (limit,)
            ).fetchall()
            acked = self._db.execute(
                "SELECT * FROM acknowledged ORDER BY acked_at DESC, start DESC LIMIT ?", (limit,)
            ).fetchall()
            intervals = self._db.execute("SELECT * FROM intervals ORDER BY start").fetchall()
        return {
            "intervals": [_interval(r).to_json() for r in intervals],
            "outbox": [
                {**self._queued(r).event.to_json(), "attempts": r["attempts"]}
                | ({"refused": r["last_error"]} if r["last_error"] else {})
                for r in waiting
            ],
            "acknowledged": [
                {
                    "event_id": r["event_id"],
                    "pod_id": r["pod_id"],
                    "gpu_count": r["gpu_count"],
                    "start": _iso(r["start"]),
                    "end": _iso(r["end"]),
                }
                for r in acked
            ],
        }

    def _queued(self, row: sqlite3.Row) -> Queued:
        event = UsageEvent(
            event_id=row["event_id"],
            node_id=self.node_id,
            pod_id=row["pod_id"],
            gpu_count=int(row["gpu_count"]),
            start=_time(int(row["start"])),
            end=_time(int(row["end"])),
            price_per_sec_wei=int(row["price_per_sec_wei"]),
        )
        return Queued(event, int(row["attempts"]), row["last_error"])


def _interval(row: sqlite3.Row) -> Interval:
    return Interval(
        pod_uid=row["pod_uid"],
        namespace=row["namespace"],
        name=row["name"],
        pod_id=row["pod_id"],
        gpu_count=int(row["gpu_count"]),
        price_per_sec_wei=int(row["price_per_sec_wei"]),
        start=int(row["start"]),
        slice_seconds=int(row["slice_seconds"]),
        next_slice=int(row["next_slice"]),
        seen_at=int(row["seen_at"]),
        ended_at=None if row["ended_at"] is None else int(row["ended_at"]),
    )
