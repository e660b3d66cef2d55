"""SQLite persistence for the hub: one file under the data directory, WAL, versioned schema.

Why one connection behind a lock: SQLite serialises writers anyway, and a single connection
guarded by a ``threading.Lock`` makes every transaction atomic with respect to both the
threadpool (sync endpoints) and the event loop (async endpoints) without ``database is locked``
retries. Each transaction is ``BEGIN IMMEDIATE`` ... ``COMMIT`` (``ROLLBACK`` on any exception),
so a request that fails half way never leaves a half-written row.
"""

from __future__ import annotations

import hashlib
import os
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

SCHEMA_VERSION = 4

# Each entry migrates from version index to index + 1; append, never edit a shipped one.
MIGRATIONS: tuple[str, ...] = (
    """
    CREATE TABLE nonces (
        nonce TEXT PRIMARY KEY,
        expires_at REAL NOT NULL,
        used_at REAL
    );
    CREATE TABLE tokens (
        token_hash TEXT PRIMARY KEY,
        address TEXT NOT NULL,
        expires_at REAL NOT NULL
    );
    CREATE TABLE nodes (
        node_id TEXT PRIMARY KEY,
        owner TEXT NOT NULL,
        host TEXT NOT NULL,
        gpu_key TEXT NOT NULL,
        gpus TEXT NOT NULL,
        price_per_sec_wei TEXT NOT NULL,
        labels TEXT NOT NULL,
        registered_at REAL NOT NULL,
        last_seen REAL,
        UNIQUE (owner, host, gpu_key)
    );
    CREATE INDEX nodes_owner ON nodes (owner);
    CREATE TABLE certs (
        serial TEXT PRIMARY KEY,
        node_id TEXT NOT NULL REFERENCES nodes (node_id),
        not_after REAL NOT NULL,
        issued_at REAL NOT NULL
    );
    CREATE TABLE vpn_peers (
        public_key TEXT PRIMARY KEY,
        address TEXT NOT NULL UNIQUE,
        owner TEXT NOT NULL,
        created_at REAL NOT NULL
    );
    CREATE TABLE pods (
        pod_id TEXT PRIMARY KEY,
        renter TEXT NOT NULL,
        ssh_host TEXT NOT NULL,
        ssh_port INTEGER NOT NULL,
        ssh_user TEXT NOT NULL,
        host_key TEXT NOT NULL,
        updated_at REAL NOT NULL
    );
    CREATE TABLE transfers (
        code TEXT PRIMARY KEY,
        pod_id TEXT NOT NULL REFERENCES pods (pod_id),
        creator TEXT NOT NULL,
        path TEXT NOT NULL,
        name TEXT NOT NULL,
        size INTEGER NOT NULL,
        sha256 TEXT NOT NULL,
        created_at REAL NOT NULL,
        expires_at REAL NOT NULL,
        used_at REAL,
        used_by TEXT
    );
    CREATE TABLE usage_events (
        event_id TEXT PRIMARY KEY,
        node_id TEXT NOT NULL REFERENCES nodes (node_id),
        pod_id TEXT NOT NULL,
        gpu_count INTEGER NOT NULL,
        start REAL NOT NULL,
        "end" REAL NOT NULL,
        seconds INTEGER NOT NULL,
        price_per_sec_wei TEXT NOT NULL,
        wei TEXT NOT NULL,
        received_at REAL NOT NULL
    );
    CREATE INDEX usage_node ON usage_events (node_id);
    """,
    # 1 -> 2: an event_id is unique per node, not hub-wide. It is the node's idempotency
    # key; hub-wide, one node could claim an id first and get another's event refused.
    """
    CREATE TABLE usage_events_v2 (
        node_id TEXT NOT NULL REFERENCES nodes (node_id),
        event_id TEXT NOT NULL,
        pod_id TEXT NOT NULL,
        gpu_count INTEGER NOT NULL,
        start REAL NOT NULL,
        "end" REAL NOT NULL,
        seconds INTEGER NOT NULL,
        price_per_sec_wei TEXT NOT NULL,
        wei TEXT NOT NULL,
        received_at REAL NOT NULL,
        PRIMARY KEY (node_id, event_id)
    );
    INSERT INTO usage_events_v2 (node_id, event_id, pod_id, gpu_count, start, "end", seconds,
        price_per_sec_wei, wei, received_at)
        SELECT node_id, event_id, pod_id, gpu_count, start, "end", seconds, price_per_sec_wei,
        wei, received_at FROM usage_events;
    DROP TABLE usage_events;
    ALTER TABLE usage_events_v2 RENAME TO usage_events;
    """,
    # 2 -> 3: transfer codes are kept as their SHA-256 only (sha256_hex is registered by
    # Store), so a copy of the database hands out no live code; expired codes are purged by
    # expiry and a pod's codes found by pod, hence the indexes. A certificate is revoked
    # (revoked_at) when another is issued for its node. node_gpus says which nodes name a
    # GPU UUID (lower case), so one wallet cannot register another's GPUs. A node can be
    # deregistered (its row stays for the ledger). A VPN address belongs to a node, one
    # each: a node's newest peer keeps its address, its other keys and the peers a wallet
    # took without naming a node are released (they fit no node, and one wallet could have
    # taken the pool that way). A pod names the node it runs on (none for older pods, which
    # cannot be billed), and usage is looked up by pod to refuse overlapping intervals.
    """
    CREATE TABLE transfers_v3 (
        code_hash TEXT PRIMARY KEY,
        pod_id TEXT NOT NULL REFERENCES pods (pod_id),
        creator TEXT NOT NULL,
        path TEXT NOT NULL,
        name TEXT NOT NULL,
        size INTEGER NOT NULL,
        sha256 TEXT NOT NULL,
        created_at REAL NOT NULL,
        expires_at REAL NOT NULL,
        used_at REAL,
        used_by TEXT
    );
    INSERT INTO transfers_v3 (code_hash, pod_id, creator, path, name, size, sha256, created_at,
        expires_at, used_at, used_by)
        SELECT sha256_hex(code), pod_id, creator, path, name, size, sha256, created_at,
        expires_at, used_at, used_by FROM transfers;
    DROP TABLE transfers;
    ALTER TABLE transfers_v3 RENAME TO transfers;
    CREATE INDEX transfers_expiry ON transfers (expires_at);
    CREATE INDEX transfers_pod ON transfers (pod_id);
    ALTER TABLE certs ADD COLUMN revoked_at REAL;
    CREATE INDEX certs_node ON certs (node_id);
    CREATE TABLE node_gpus (
        uuid TEXT NOT NULL,
        node_id TEXT NOT NULL REFERENCES nodes (node_id),
        PRIMARY KEY (uuid, node_id)
    );
    INSERT INTO node_gpus (uuid, node_id)
        SELECT DISTINCT lower(json_extract(g.value, '$.uuid')), n.node_id
        FROM nodes n, json_each(n.gpus) g;
    ALTER TABLE nodes ADD COLUMN deregistered_at REAL;
    CREATE TABLE vpn_peers_v3 (
        node_id TEXT PRIMARY KEY REFERENCES nodes (node_id),
        public_key TEXT NOT NULL UNIQUE,
        address TEXT NOT NULL UNIQUE,
        created_at REAL NOT NULL
    );
    INSERT INTO vpn_peers_v3 (node_id, public_key, address, created_at)
        SELECT n.node_id, p.public_key, p.address, p.created_at
        FROM vpn_peers p JOIN nodes n ON p.owner = 'node:' || n.node_id
        WHERE p.rowid = (SELECT q.rowid FROM vpn_peers q WHERE q.owner = p.owner
                         ORDER BY q.created_at DESC, q.rowid DESC LIMIT 1);
    DROP TABLE vpn_peers;
    ALTER TABLE vpn_peers_v3 RENAME TO vpn_peers;
    ALTER TABLE pods ADD COLUMN node_id TEXT REFERENCES nodes (node_id);
    CREATE INDEX pods_node ON pods (node_id);
    CREATE INDEX usage_pod ON usage_events (pod_id, start);
    """,
    # 3 -> 4: on-chain settlement (docs/settlement.md). A usage row names the renter it is
    # billed to, taken from the pod when the hub accepts it (a pod can change renter later;
    # older rows take the pod's renter now). settlements holds one row per usage row once
    # priced, in the ledger's order (usage_rowid: the worker prices past the last one); its
    # AUTOINCREMENT id is the contract's settlementId, dense as the contract's bitmap wants.
    # settle_txs records each transaction before it is broadcast (write-ahead),
    # settle_attempts each signed version of it (a replacement has a higher gas price and
    # the same nonce), settlement_chain the contract this database settles against.
    """
    ALTER TABLE usage_events ADD COLUMN renter TEXT;
    UPDATE usage_events
        SET renter = (SELECT p.renter FROM pods p WHERE p.pod_id = usage_events.pod_id);
    CREATE INDEX usage_renter ON usage_events (renter);
    CREATE TABLE settlement_chain (
        id INTEGER PRIMARY KEY CHECK (id = 1),
        chain_id INTEGER,
        contract TEXT NOT NULL,
        settler TEXT NOT NULL,
        watched_nonce INTEGER
    );
    CREATE TABLE settle_txs (
        tx_id INTEGER PRIMARY KEY AUTOINCREMENT,
        sender TEXT NOT NULL,
        nonce INTEGER NOT NULL,
        gas INTEGER NOT NULL,
        data BLOB NOT NULL,
        state TEXT NOT NULL CHECK (state IN ('sent', 'final', 'dropped')),
        tx_hash TEXT,
        block INTEGER,
        gas_used INTEGER,
        created_at REAL NOT NULL,
        UNIQUE (sender, nonce)
    );
    CREATE INDEX settle_txs_state ON settle_txs (state);
    CREATE TABLE settle_attempts (
        tx_hash TEXT PRIMARY KEY,
        tx_id INTEGER NOT NULL REFERENCES settle_txs (tx_id),
        gas_price TEXT NOT NULL,
        raw BLOB NOT NULL,
        sent_at REAL NOT NULL
    );
    CREATE INDEX settle_attempts_tx ON settle_attempts (tx_id);
    CREATE TABLE settlements (
        settlement_id INTEGER PRIMARY KEY AUTOINCREMENT,
        usage_rowid INTEGER NOT NULL UNIQUE,
        node_id TEXT NOT NULL,
        event_id TEXT NOT NULL,
        renter TEXT NOT NULL,
        provider TEXT NOT NULL,
        gpu_name TEXT NOT NULL,
        gpu_seconds INTEGER NOT NULL,
        price_per_sec_wei TEXT NOT NULL,
        amount_wei TEXT NOT NULL,
        state TEXT NOT NULL CHECK (state IN ('priced', 'submitted', 'confirmed', 'failed')),
        tx_id INTEGER REFERENCES settle_txs (tx_id),
        tx_hash TEXT,
        block INTEGER,
        paid_wei TEXT,
        reason TEXT,
        detail TEXT,
        retry_at REAL,
        priced_at REAL NOT NULL,
        updated_at REAL NOT NULL,
        UNIQUE (node_id, event_id),
        FOREIGN KEY (node_id, event_id) REFERENCES usage_events (node_id, event_id)
    );
    CREATE INDEX settlements_state ON settlements (state, settlement_id);
    CREATE INDEX settlements_tx ON settlements (tx_id);
    CREATE INDEX settlements_provider ON settlements (provider);
    CREATE INDEX settlements_renter ON settlements (renter);
    """,
)
assert len(MIGRATIONS) == SCHEMA_VERSION


def sha256_hex(text: str) -> str:
    """Hex SHA-256 of ``text``'s UTF-8: how transfer codes are stored and looked up."""
    return hashlib.sha256(text.encode()).hexdigest()


def _private_files(path: Path) -> None:
    """Create the database 0600 before SQLite opens it; close up files an older hub left open.

    The database holds the ledger, token hashes and transfer data. SQLite creates ``-wal``
    and ``-shm`` with the database file's own mode, so a 0600 database keeps all three
    private whatever the umask; files from a hub that made them 0644 are tightened here.
    """
    os.close(os.open(path, os.O_RDWR | os.O_CREAT, 0o600))
    for name in (path, path.with_name(f"{path.name}-wal"), path.with_name(f"{path.name}-shm")):
        if name.exists():
            name.chmod(0o600)


class Store:
    """The hub's database: open (creating or migrating the schema) and run transactions."""

    def __init__(self, path: Path) -> None:
        self.path = path
        _private_files(path)
        self._lock = threading.Lock()
        self._conn = sqlite3.connect(
            path, check_same_thread=False, isolation_level=None, timeout=30
        )
        self._conn.row_factory = sqlite3.Row
        self._conn.execute("PRAGMA journal_mode=WAL")
        # NORMAL in WAL mode is durable across process crashes (only an OS crash can lose
        # the last commits), which is the trade SQLite recommends for WAL.
        self._conn.execute("PRAGMA synchronous=NORMAL")
        self._conn.execute("PRAGMA foreign_keys=ON")
        # Deleted rows (spent and expired codes, old tokens) are overwritten, not left
        # readable in free pages of the file.
        self._conn.execute("PRAGMA secure_delete=ON")
        self._conn.create_function("sha256_hex", 1, sha256_hex, deterministic=True)
        self._migrate()

    def _migrate(self) -> None:
        """Run the migrations this database lacks, in one transaction.

        After an upgrade the WAL is checkpointed and truncated: it would otherwise keep the
        pages the migration replaced (codes in clear, before version 3) until overwritten.
        """
        with self.transaction() as db:
            db.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
            row = db.execute("SELECT version FROM schema_version").fetchone()
            current = 0 if row is None else int(row["version"])
            if current > SCHEMA_VERSION:
                raise RuntimeError(
                    f"{self.path} has schema version {current}, newer than this hub "
                    f"({SCHEMA_VERSION}): upgrade worldland-hub"
                )
            for script in MIGRATIONS[current:]:
                for statement in script.split(";"):
                    if statement.strip():
                        db.execute(statement)
            if row is None:
                db.execute("INSERT INTO schema_version (version) VALUES (?)", (SCHEMA_VERSION,))
            else:
                db.execute("UPDATE schema_version SET version = ?", (SCHEMA_VERSION,))
        if 0 < current < SCHEMA_VERSION:
            self._conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """Hold the lock and an IMMEDIATE transaction; commit on success, roll back on error."""
        with self._lock:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                yield self._conn
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
            self._conn.execute("COMMIT")

    @contextmanager
    def read(self) -> Iterator[sqlite3.Connection]:
        """Hold the lock for reads that need no transaction (each SELECT sees committed data)."""
        with self._lock:
            yield self._conn

    def schema_version(self) -> int:
        """The version recorded in the database (for tests and diagnostics)."""
        with self.transaction() as db:
            return int(db.execute("SELECT version FROM schema_version").fetchone()["version"])

    def close(self) -> None:
        """Close the connection (the WAL is checkpointed by SQLite on the last close)."""
        with self._lock:
            self._conn.close()
