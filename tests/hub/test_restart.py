"""A restarted hub on the same data directory keeps every kind of state and its CA."""

from __future__ import annotations

import base64
import hashlib
import os
import sqlite3
import time
from pathlib import Path

from eth_account import Account

from hub_stub.store import MIGRATIONS, SCHEMA_VERSION, Store
from tests.hub.conftest import bearer, login, register_node
from tests.support.hub import start_hub


def test_restart_keeps_nodes_peers_codes_usage_and_ca(tmp_path: Path) -> None:
    data = tmp_path / "hub"
    wallet = Account.create()
    key = base64.b64encode(os.urandom(32)).decode()
    hub = start_hub(data)
    try:
        with hub.client() as client:
            token = login(client, wallet, hub.siwe_domain)
            node_id = register_node(client, token, host="persistent-host")
            peer = {"public_key": key, "node_id": node_id}
            address = client.post("/v1/vpn/peers", json=peer, headers=bearer(token)).json()[
                "address"
            ]
            pod = {
                "pod_id": "pod-keep",
                "renter_address": wallet.address,
                "ssh_host": "127.0.0.1",
                "ssh_port": 22,
                "ssh_user": "root",
                "host_key": "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIA",
                "node_id": node_id,
            }
            client.post("/v1/admin/pods", json=pod, headers=bearer(hub.admin_token))
            code = client.post(
                "/v1/transfers",
                json={
                    "pod_id": "pod-keep",
                    "path": "/w/f",
                    "name": "f",
                    "size": 1,
                    "sha256": "0" * 64,
                },
                headers=bearer(token),
            ).json()["code"]
            usage = {
                "event_id": "e1",
                "node_id": node_id,
                "pod_id": "pod-keep",
                "gpu_count": 1,
                "start": "2026-01-01T00:00:00Z",
                "end": "2026-01-01T00:01:00Z",
                "price_per_sec_wei": "1000",
            }
            client.post("/v1/usage", json=[usage], headers=bearer(token))
            ca_before = client.get("/v1/info").json()["ca_certificate"]
    finally:
        hub.stop()

    hub = start_hub(data)
    try:
        with hub.client() as client:
            # The token survived too: tokens are stored (hashed), not held in memory.
            nodes = client.get("/v1/nodes", headers=bearer(token)).json()["nodes"]
            assert [n["node_id"] for n in nodes] == [node_id]
            again = client.post("/v1/vpn/peers", json=peer, headers=bearer(token))
            assert again.json()["address"] == address
            claimed = client.get(f"/v1/transfers/{code}", headers=bearer(token))
            assert claimed.status_code == 200
            resent = client.post("/v1/usage", json=[usage], headers=bearer(token))
            assert resent.json() == {"accepted": 0, "duplicates": 1}
            summary = client.get("/v1/usage", params={"node_id": node_id}, headers=bearer(token))
            assert summary.json()["wei"] == "60000"
            assert client.get("/v1/info").json()["ca_certificate"] == ca_before
    finally:
        hub.stop()
    with sqlite3.connect(data / "hub.sqlite3") as db:
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert db.execute("SELECT version FROM schema_version").fetchall() == [(SCHEMA_VERSION,)]


def test_newer_schema_refuses_to_start(tmp_path: Path) -> None:
    import pytest

    data = tmp_path / "hub"
    start_hub(data).stop()
    with sqlite3.connect(data / "hub.sqlite3") as db:
        db.execute("UPDATE schema_version SET version = 99")
    with pytest.raises(RuntimeError, match="newer than this hub"):
        start_hub(data)


def test_a_version_1_database_is_migrated_keeping_its_usage(tmp_path: Path) -> None:
    path = tmp_path / "hub.sqlite3"
    with sqlite3.connect(path) as db:
        db.executescript(MIGRATIONS[0])
        db.execute("CREATE TABLE schema_version (version INTEGER NOT NULL)")
        db.execute("INSERT INTO schema_version (version) VALUES (1)")
        db.execute(
            "INSERT INTO nodes (node_id, owner, host, gpu_key, gpus, price_per_sec_wei, labels, "
            "registered_at) VALUES ('n1', 'o', 'h', 'g', '[]', '1', '{}', 0)"
        )
        db.execute(
            'INSERT INTO usage_events (event_id, node_id, pod_id, gpu_count, start, "end", '
            "seconds, price_per_sec_wei, wei, received_at) "
            "VALUES ('ev-1', 'n1', 'p', 1, 0, 10, 10, '5', '50', 11)"
        )
    db.close()
    store = Store(path)
    try:
        assert store.schema_version() == SCHEMA_VERSION
        with store.read() as conn:
            rows = conn.execute("SELECT event_id, node_id, wei FROM usage_events").fetchall()
            assert [tuple(r) for r in rows] == [("ev-1", "n1", "50")]
    finally:
        store.close()


def version_2_database(path: Path, renter: str) -> None:
    """A database as hub schema 2 left it, with one row of every kind."""
    with sqlite3.connect(path) as db:
        db.executescript(MIGRATIONS[0])
        db.executescript(MIGRATIONS[1])
        db.execute("CREATE TABLE schema_version (version INTEGER NOT NULL)")
        db.execute("INSERT INTO schema_version (version) VALUES (2)")
        db.execute(
            "INSERT INTO pods (pod_id, renter, ssh_host, ssh_port, ssh_user, host_key, "
            "updated_at) VALUES ('pod-old', ?, '127.0.0.1', 22, 'root', ?, 0)",
            (renter, "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIA"),
        )
        db.execute(
            "INSERT INTO nodes (node_id, owner, host, gpu_key, gpus, price_per_sec_wei, labels, "
            "registered_at) VALUES (?, ?, 'old-host', 'GPU-old', ?, '1000', '{}', 0)",
            (OLD_NODE, renter, '[{"name": "Tesla T4", "memory_mib": 15360, "uuid": "GPU-old"}]'),
        )
        db.execute(
            "INSERT INTO certs (serial, node_id, not_after, issued_at) VALUES ('abc', ?, 0, 0)",
            (OLD_NODE,),
        )
        # Two keys of the node (the newer keeps the address) and one a wallet took bare.
        db.executemany(
            "INSERT INTO vpn_peers (public_key, address, owner, created_at) VALUES (?, ?, ?, ?)",
            [
                ("old-key", "10.100.1.2", f"node:{OLD_NODE}", 1),
                ("new-key", "10.100.1.3", f"node:{OLD_NODE}", 2),
                ("bare-key", "10.100.1.4", f"wallet:{renter}", 3),
            ],
        )
        db.execute(
            "INSERT INTO transfers (code, pod_id, creator, path, name, size, sha256, "
            "created_at, expires_at) VALUES (?, 'pod-old', ?, '/w/f', 'f', 1, ?, 0, ?)",
            (OLD_CODE, renter, "0" * 64, time.time() + 3600),
        )
    db.close()


OLD_CODE = "8338-acorn-cactus-delta"
OLD_NODE = "11111111-2222-4333-8444-555555555555"


def test_a_version_2_database_is_upgraded_in_place(tmp_path: Path) -> None:
    data = tmp_path / "hub"
    data.mkdir()
    renter = Account.create()
    version_2_database(data / "hub.sqlite3", renter.address)
    hub = start_hub(data)
    try:
        with sqlite3.connect(data / "hub.sqlite3") as db:
            assert db.execute("SELECT version FROM schema_version").fetchall() == [
                (SCHEMA_VERSION,)
            ]
            digest = hashlib.sha256(OLD_CODE.encode()).hexdigest()
            assert db.execute("SELECT code_hash FROM transfers").fetchall() == [(digest,)]
            certs = db.execute("SELECT serial, revoked_at FROM certs").fetchall()
            assert certs == [("abc", None)]
            gpus = db.execute("SELECT uuid, node_id FROM node_gpus").fetchall()
            assert gpus == [("gpu-old", OLD_NODE)]
            peers = db.execute("SELECT node_id, public_key, address FROM vpn_peers").fetchall()
            assert peers == [(OLD_NODE, "new-key", "10.100.1.3")]
            live = db.execute("SELECT deregistered_at FROM nodes").fetchall()
            assert live == [(None,)]
            # An older pod runs on no known node: it can no longer be billed until the
            # operator places it (POST /v1/admin/pods with node_id).
            assert db.execute("SELECT pod_id, node_id FROM pods").fetchall() == [("pod-old", None)]
        db.close()
        # The codes an older hub kept in clear are gone from every file, free pages included.
        files = [p for p in data.glob("hub.sqlite3*") if p.is_file()]
        assert all(OLD_CODE.encode() not in p.read_bytes() for p in files)
        with hub.client() as client:
            token = login(client, renter, hub.siwe_domain)
            claimed = client.get(f"/v1/transfers/{OLD_CODE}", headers=bearer(token))
            assert claimed.status_code == 200, claimed.text
            assert claimed.json()["code"] == OLD_CODE
    finally:
        hub.stop()


def test_a_version_3_database_bills_its_usage_to_the_pods_renter(tmp_path: Path) -> None:
    """Schema 4 names the renter on each usage row: older rows take their pod's renter."""
    path = tmp_path / "hub.sqlite3"
    renter = Account.create().address
    with sqlite3.connect(path) as db:
        for script in MIGRATIONS[:3]:
            db.executescript(script.replace("sha256_hex(code)", "code"))
        db.execute("CREATE TABLE schema_version (version INTEGER NOT NULL)")
        db.execute("INSERT INTO schema_version (version) VALUES (3)")
        db.execute(
            "INSERT INTO nodes (node_id, owner, host, gpu_key, gpus, price_per_sec_wei, labels, "
            "registered_at) VALUES (?, 'o', 'h', 'g', '[]', '5', '{}', 0)",
            (OLD_NODE,),
        )
        db.execute(
            "INSERT INTO pods (pod_id, renter, node_id, ssh_host, ssh_port, ssh_user, host_key, "
            "updated_at) VALUES ('pod-3', ?, ?, '127.0.0.1', 22, 'root', 'k', 0)",
            (renter, OLD_NODE),
        )
        db.execute(
            'INSERT INTO usage_events (event_id, node_id, pod_id, gpu_count, start, "end", '
            "seconds, price_per_sec_wei, wei, received_at) "
            "VALUES ('ev-3', ?, 'pod-3', 1, 0, 10, 10, '5', '50', 11)",
            (OLD_NODE,),
        )
    db.close()
    store = Store(path)
    try:
        with store.read() as conn:
            rows = conn.execute("SELECT event_id, renter FROM usage_events").fetchall()
            assert [tuple(r) for r in rows] == [("ev-3", renter)]
            assert conn.execute("SELECT count(*) FROM settlements").fetchone()[0] == 0
    finally:
        store.close()
