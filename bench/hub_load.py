"""Heartbeat load on a real hub: N simulated nodes on loopback; prints heartbeats/s, p50, p99.

Target (issue 3): >= 1,000 heartbeats/s with p99 <= 50 ms on a 2-core machine.

The hub runs as a subprocess exactly as in production (uvicorn, h11, SQLite WAL). Each
simulated node keeps one HTTP/1.1 keep-alive connection and sends
``POST /v1/nodes/{id}/heartbeat`` back to back with its owner's bearer token, as the daemon
does, only much more often. The load generator is a few lines of asyncio writing raw HTTP so
that it takes as little CPU as possible from the hub it measures (a full client library would
make the benchmark measure the client). Run: ``.venv/bin/python bench/hub_load.py``.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import ssl
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from eth_account import Account

from tests.hub.conftest import login, register_node
from tests.support.hub import start_hub


async def node_loop(
    port: int,
    node_id: str,
    token: str | None,
    until: float,
    latencies: list[float],
    interval: float = 0.0,
    tls: ssl.SSLContext | None = None,
) -> None:
    """One node: heartbeat over a keep-alive connection until ``until``.

    ``interval`` 0 sends back to back (throughput); otherwise every ``interval`` seconds give
    or take a tenth, from a random moment in the first interval, as the daemon does. A
    connection the hub closed meanwhile (uvicorn closes idle ones after 5 s) is opened again,
    as an HTTP client does, and that beat's latency includes the new connection (and its
    TLS handshake with ``tls``, the node's client certificate in it, as the daemon's mTLS).
    ``token`` None sends no Authorization header (the certificate says who calls).
    """
    auth = f"Authorization: Bearer {token}\r\n" if token else ""
    request = (
        f"POST /v1/nodes/{node_id}/heartbeat HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
        f"{auth}Content-Type: application/json\r\nContent-Length: 2\r\n\r\n{{}}"
    ).encode()
    if interval:
        await asyncio.sleep(max(0.0, min(until - time.perf_counter(), random.uniform(0, interval))))
    connection: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None
    try:
        while time.perf_counter() < until:
            started = time.perf_counter()
            if connection is None:
                connection = await asyncio.open_connection(
                    "127.0.0.1", port, ssl=tls, server_hostname="127.0.0.1" if tls else None
                )
            reader, writer = connection
            try:
                writer.write(request)
                head = await reader.readuntil(b"\r\n\r\n")
            except (asyncio.IncompleteReadError, ConnectionError):
                writer.close()
                connection = None  # closed by the hub while idle: a new one, this beat
                continue
            status = head[9:12]
            length = 0
            for line in head.split(b"\r\n"):
                if line.lower().startswith(b"content-length:"):
                    length = int(line.split(b":", 1)[1])
            await reader.readexactly(length)
            if status != b"200":
                raise RuntimeError(f"heartbeat answered {head.decode(errors='replace')}")
            latencies.append(time.perf_counter() - started)
            if interval:
                left = until - time.perf_counter()
                await asyncio.sleep(max(0.0, min(left, interval * random.uniform(0.9, 1.1))))
    finally:
        if connection is not None:
            connection[1].close()


async def run_load(
    port: int,
    nodes: list[str],
    token: str | None,
    seconds: float,
    interval: float = 0.0,
    tls: dict[str, ssl.SSLContext] | None = None,
) -> list[float]:
    """Every node's loop at once; ``tls`` maps a node to its client-certificate context."""
    latencies: list[float] = []
    until = time.perf_counter() + seconds
    await asyncio.gather(
        *(node_loop(port, n, token, until, latencies, interval, (tls or {}).get(n)) for n in nodes)
    )
    return latencies


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", type=int, default=20, help="simulated nodes (default 20)")
    parser.add_argument("--seconds", type=float, default=10.0, help="measured run (default 10)")
    parser.add_argument("--warmup", type=float, default=2.0, help="unmeasured run first")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        hub = start_hub(Path(tmp) / "hub")
        try:
            with hub.client() as client:
                token = login(client, Account.create(), hub.siwe_domain)
                nodes = [register_node(client, token) for _ in range(args.nodes)]
            port = int(hub.url.rsplit(":", 1)[1])
            asyncio.run(run_load(port, nodes, token, args.warmup))
            latencies = asyncio.run(run_load(port, nodes, token, args.seconds))
        finally:
            hub.stop()
    latencies.sort()
    rate = len(latencies) / args.seconds
    p50 = statistics.median(latencies) * 1000
    p99 = latencies[int(len(latencies) * 0.99) - 1] * 1000
    print(f"nodes={args.nodes} seconds={args.seconds:g} heartbeats={len(latencies)}")
    print(f"heartbeats/s={rate:.0f} (target >= 1000: {rate / 1000:.2f}x)")
    print(f"p50={p50:.1f} ms p99={p99:.1f} ms (target p99 <= 50 ms: {p99 / 50:.2f}x of budget)")


if __name__ == "__main__":
    main()
