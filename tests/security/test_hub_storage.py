"""What the hub keeps on disk is readable by its own user only.

Before: ``hub.sqlite3`` and its ``-wal``/``-shm`` files were 0644 under the usual umask, in a
0755 data directory, and held live transfer codes and the ledger: any local user could read
them.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
from eth_account import Account

from tests.hub.conftest import login
from tests.support.hub import RunningHub, start_hub

# Certificates are public (the CA is served at /v1/info, the server certificate in every
# handshake); they stay 0644 inside the 0700 directory. Everything else is 0600.
PUBLIC = {"ca/ca.pem", "tls/server.pem"}
# Written by the test launcher (the hub's stdout), not by the hub.
LAUNCHER = {"hub.log"}


@contextmanager
def umask(mask: int) -> Iterator[None]:
    """Run the hub under the usual umask, whatever the test runner's is."""
    old = os.umask(mask)
    try:
        yield
    finally:
        os.umask(old)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def modes(data: Path) -> dict[str, int]:
    """Mode of every directory and file under ``data``, by path relative to it."""
    found = {".": mode(data)}
    for path in data.rglob("*"):
        name = path.relative_to(data).as_posix()
        if name not in LAUNCHER:
            found[name] = mode(path)
    return found


def write_something(hub: RunningHub) -> None:
    """A login writes a nonce and a token: the WAL and its index exist afterwards."""
    with hub.client() as client:
        login(client, Account.create(), hub.siwe_domain)


def assert_private(data: Path) -> None:
    found = modes(data)
    for name in ("hub.sqlite3", "hub.sqlite3-wal", "hub.sqlite3-shm", "admin-token"):
        assert found.get(name) == 0o600, (name, oct(found.get(name, 0)))
    wrong = {name: oct(got) for name, got in found.items() if got != expected(data, name)}
    assert wrong == {}


def expected(data: Path, name: str) -> int:
    if (data / name).is_dir():
        return 0o700
    return 0o644 if name in PUBLIC else 0o600


def test_database_and_secrets_are_private_from_the_first_start(tmp_path: Path) -> None:
    data = tmp_path / "hub"
    with umask(0o022):
        hub = start_hub(data, tls=True)
    try:
        write_something(hub)
        assert_private(data)
        assert {"ca/ca.key", "ca/ca.pem", "vpn/server.key", "tls/server.key"} <= set(modes(data))
    finally:
        hub.stop()


def test_a_data_directory_left_open_by_an_older_hub_is_closed_at_start(tmp_path: Path) -> None:
    data = tmp_path / "hub"
    with umask(0o022):
        old = start_hub(data)
        write_something(old)
        old.process.kill()  # a crash: the -wal and -shm files stay behind
        old.process.wait()
        assert (data / "hub.sqlite3-wal").exists()
        # What an older hub left: directories 0755, the database files 0644 (its keys and
        # the admin token were 0600 already).
        for path in [data, *data.rglob("*")]:
            if path.is_dir():
                path.chmod(0o755)
        for path in data.glob("hub.sqlite3*"):
            path.chmod(0o644)
        hub = start_hub(data)
    try:
        write_something(hub)
        assert_private(data)
        with httpx.Client(base_url=hub.url) as client:
            assert client.get("/health").status_code == 200
    finally:
        hub.stop()
