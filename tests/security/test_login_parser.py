"""Item 2: an unauthenticated login message must cost the hub microseconds, not seconds.

One 4 KiB message with ``xn--`` repeated in the domain cost seconds of CPU in the grammar
parser (quadratic in the field's length), and 48 of them stalled /health for 55 s.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import os
import time
from pathlib import Path

import httpx
import pytest

from hub_stub import eip4361
from tests.support.hub import RunningHub, start_hub

ADDRESS = "0x2c7536E3605D9C16a7a3D7b1898e529396a65c23"


def message(domain: str = "hub.example", uri: str = "https://hub.example", tail: str = "") -> str:
    return (
        f"{domain} wants you to sign in with your Ethereum account:\n{ADDRESS}\n\n"
        f"Sign in to Worldland\n\nURI: {uri}\nVersion: 1\nChain ID: 1\nNonce: abcdefgh1234\n"
        f"Issued At: 2026-11-28T00:00:00Z{tail}"
    )


def fit(build: object, unit: str) -> str:
    """The longest message ``build(unit * n)`` that still fits the 4 KiB bound."""
    assert callable(build)
    n = 1
    while len(build(unit * (n + 1))) <= eip4361.MAX_MESSAGE:
        n += 1
    text: str = build(unit * n)
    return text


CRAFTED = {
    "xn-- domain": fit(lambda x: message(domain=x), "xn--"),
    "dotted domain": fit(lambda x: message(domain=x), "a."),
    "userinfo domain": fit(lambda x: message(domain=x + "@h"), "a:"),
    "userinfo URI": fit(lambda x: message(uri=f"http://{x}@h"), "a:"),
    "path URI": fit(lambda x: message(uri=f"http://h/{x}"), "a/"),
    "pct URI": fit(lambda x: message(uri=f"http://h/{x}"), "%41"),
    "query URI": fit(lambda x: message(uri=f"http://h/?{x}"), "a&"),
    "xn-- URI": fit(lambda x: message(uri=f"http://{x}"), "xn--"),
    "statement": fit(lambda x: message().replace("Sign in to Worldland", x), "a "),
    "resources": fit(lambda x: message(tail="\nResources:" + x), "\n- http://h/" + "a/" * 60),
    "request id": fit(lambda x: message(tail="\nRequest ID: " + x), "%41"),
    "broken at the end": fit(lambda x: message(uri=f"http://h/{x} "), "a/"),
}


@pytest.mark.parametrize("name", sorted(CRAFTED))
def test_a_crafted_message_costs_well_under_100_ms_of_cpu(name: str) -> None:
    text = CRAFTED[name]
    assert len(text) > 3000
    began = time.thread_time()
    for _ in range(10):
        with contextlib.suppress(eip4361.MalformedMessage):
            eip4361.parse(text)
    per_message = (time.thread_time() - began) / 10
    assert per_message < 0.02, f"{name}: {per_message * 1000:.1f} ms of CPU per message"


def test_an_oversized_message_is_refused_before_it_is_read() -> None:
    with pytest.raises(eip4361.MalformedMessage, match="longer than 4096"):
        eip4361.parse(message(domain="xn--" * 1024))


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@pytest.fixture
def flood_hub(tmp_path: Path) -> RunningHub:
    return start_hub(tmp_path / "hub", extra_args=["--auth-rate", "100/s:100"])


def test_a_flood_of_crafted_logins_neither_burns_cpu_nor_stalls_health(
    flood_hub: RunningHub,
) -> None:
    hub = flood_hub
    try:
        crafted = [CRAFTED[name] for name in sorted(CRAFTED)] * 4  # 48 messages
        body = [{"message": text, "signature": "0x" + "11" * 65} for text in crafted]
        before = cpu_seconds(hub.process.pid)

        def post(doc: dict[str, str]) -> int:
            with httpx.Client(base_url=hub.url, timeout=60) as client:
                return client.post("/v1/auth/login", json=doc).status_code

        with concurrent.futures.ThreadPoolExecutor(48) as pool:
            answers = [pool.submit(post, doc) for doc in body]
            with httpx.Client(base_url=hub.url, timeout=60) as client:
                began = time.monotonic()
                assert client.get("/health").status_code == 200
                health_seconds = time.monotonic() - began
            statuses = [a.result() for a in answers]
        spent = cpu_seconds(hub.process.pid) - before
    finally:
        hub.stop()
    assert set(statuses) == {401}
    assert health_seconds < 2.0
    assert spent < 3.0, f"the hub spent {spent:.2f} s of CPU on 48 crafted logins"
