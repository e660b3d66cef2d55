"""Items 11 and 14, and the rate limits of item 2: what a stranger can make the hub hold.

A 100 MB body used to be read in full before anything looked at it; unauthenticated nonces
piled up for an hour past their lifetime; nothing limited how fast one address could ask.
"""

from __future__ import annotations

import socket
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from hub_stub.limits import Rate, RateLimiter, client_key
from tests.security.conftest import cli
from tests.support.hub import RunningHub, start_hub


def raw_request(hub: RunningHub, head: str, body: bytes = b"", wait: float = 5.0) -> str:
    """Send bytes as they are and return the status line (the socket times out after wait)."""
    where = urlsplit(hub.url)
    with socket.create_connection((where.hostname, where.port), timeout=wait) as sock:
        sock.sendall(head.encode() + body)
        answer = sock.recv(4096).decode(errors="replace")
    return answer.split("\r\n", 1)[0]


def test_a_huge_declared_body_is_refused_before_it_is_sent(real_hub: RunningHub) -> None:
    head = (
        "POST /v1/auth/login HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        f"Content-Length: {100 * 1000 * 1000}\r\n\r\n"
    )
    began = time.monotonic()
    assert raw_request(real_hub, head) == "HTTP/1.1 413 Request Entity Too Large"
    assert time.monotonic() - began < 5.0


def test_a_streamed_body_is_cut_off_at_the_limit(real_hub: RunningHub) -> None:
    piece = b"x" * 16384
    chunks = b"".join(b"4000\r\n" + piece + b"\r\n" for _ in range(5)) + b"0\r\n\r\n"
    head = (
        "POST /v1/auth/login HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        "Transfer-Encoding: chunked\r\n\r\n"
    )
    assert raw_request(real_hub, head, chunks) == "HTTP/1.1 413 Request Entity Too Large"


def test_a_usage_batch_may_be_larger_than_other_bodies(real_hub: RunningHub) -> None:
    big = b"[" + b",".join([b'{"event_id": "e"}'] * 12_000) + b"]"
    assert 64 << 10 < len(big) < 1 << 20
    with real_hub.client() as client:
        answer = client.post("/v1/usage", content=big, headers={"content-type": "application/json"})
        login = client.post("/v1/auth/login", content=big)
    assert answer.status_code != 413
    assert login.status_code == 413


@pytest.fixture
def strict_hub(tmp_path: Path) -> Iterator[RunningHub]:
    running = start_hub(tmp_path / "hub", extra_args=["--auth-rate", "1/s:3"])
    yield running
    running.stop()


def test_nonce_requests_are_limited_per_address_with_a_retry_after(
    strict_hub: RunningHub,
) -> None:
    with strict_hub.client() as client:
        statuses = [client.post("/v1/auth/nonce").status_code for _ in range(3)]
        refused = client.post("/v1/auth/nonce")
        health = client.get("/health")
    assert statuses == [200, 200, 200]
    assert refused.status_code == 429
    assert refused.headers["retry-after"] == "1"
    assert "too many requests from 127.0.0.1" in refused.json()["detail"]
    assert health.status_code == 200  # other buckets are not spent by logins


def test_nonces_die_with_their_lifetime_and_are_capped(tmp_path: Path) -> None:
    hub = start_hub(tmp_path / "hub", extra_args=["--max-pending-nonces", "3"])
    database = hub.data_dir / "hub.sqlite3"
    try:
        with hub.client() as client:
            assert [client.post("/v1/auth/nonce").status_code for _ in range(3)] == [200] * 3
            full = client.post("/v1/auth/nonce")
            with sqlite3.connect(database) as db:
                db.execute("UPDATE nonces SET expires_at = ?", (time.time() - 1,))
            again = client.post("/v1/auth/nonce")
            with sqlite3.connect(database) as db:
                (left,) = db.execute("SELECT count(*) FROM nonces").fetchone()
    finally:
        hub.stop()
    assert full.status_code == 503
    assert full.json()["detail"] == "too many logins pending: try again shortly"
    assert again.status_code == 200
    assert left == 1  # the expired three are gone at once, not an hour later


@pytest.mark.slow
def test_the_cli_waits_out_a_short_rate_limit(strict_hub: RunningHub) -> None:
    assert cli("wallet", "new").exit_code == 0
    for _ in range(3):  # three logins spend six tokens of a bucket of three at 1/s
        result = cli("login", "--hub", strict_hub.url)
        assert result.exit_code == 0, result.output


def test_a_bucket_refills_at_its_rate_and_forgets_the_oldest_key() -> None:
    limiter = RateLimiter(Rate(2, 2), max_keys=2)
    assert [limiter.take("a", now=0.0) for _ in range(3)] == [0.0, 0.0, 0.5]
    assert limiter.take("a", now=0.5) == 0.0
    limiter.take("b", now=0.5)
    limiter.take("c", now=0.5)  # "a" is forgotten: it starts full again
    assert limiter.take("a", now=0.5) == 0.0


@pytest.mark.parametrize(
    ("host", "key"),
    [
        ("192.0.2.7", "192.0.2.7"),
        ("2001:db8:1:2:aaaa::1", "2001:db8:1:2::/64"),
        ("2001:db8:1:2:bbbb::9", "2001:db8:1:2::/64"),
        ("::ffff:192.0.2.7", "192.0.2.7"),
        (None, "unknown"),
    ],
)
def test_ipv6_clients_share_their_64(host: str | None, key: str) -> None:
    assert client_key(host) == key


def test_rates_are_read_from_flags() -> None:
    assert Rate.parse("5/s:60") == Rate(5, 60)
    assert Rate.parse("120/m") == Rate(2, 2)
    with pytest.raises(ValueError, match="N/s"):
        Rate.parse("fast")
