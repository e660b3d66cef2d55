"""The node daemon's footprint: RSS and CPU of an idle daemon, and the hub's cost of 1,000.

1. One real daemon (`worldland daemon`, default 30 s heartbeats and 60 s slices) against the
   real TLS hub, with the fake Kubernetes API serving one running GPU pod, so the pod watch
   is open and an interval is being metered. After a warm-up it is left alone for
   ``--seconds`` (60): its RSS (VmRSS, sampled each second; VmHWM is the peak since start)
   and its CPU time (utime + stime from /proc) over that window, as a share of one core.
   Targets: RSS <= 80 MB, idle CPU < 1% of one core.
2. The hub's side of 1,000 nodes heartbeating the way the daemon does: over TLS with each
   node's own client certificate from the hub, every 30 s give or take a tenth, from random
   start times (bench/hub_load.py's paced mode; uvicorn closes idle keep-alive connections
   after 5 s, so nearly every beat is a new mTLS handshake, as it is for the daemon): the hub
   process's CPU share over ``--seconds``, its RSS, and the latency of a beat (connection
   included). The peer figure is the same hub idle, with the same nodes, over 10 s.

    .venv/bin/python bench/daemon_footprint.py [--seconds 60] [--nodes 1000]
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import os
import resource
import ssl
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from eth_account import Account

from bench.hub_load import run_load
from tests.hub.conftest import login, make_csr, register_node, write_identity
from tests.support.daemon import provision, running, start_daemon, wait_for
from tests.support.fakekube import running_status, start_fake_kube
from tests.support.hub import RunningHub, start_hub

TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS  # utime, stime


def rss_mb(pid: int, key: str = "VmRSS") -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{key}:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no {key} for {pid}")


def watch_process(pid: int, seconds: float) -> tuple[float, float]:
    """(CPU share of one core, max RSS in MB) of ``pid`` over ``seconds``."""
    cpu0, t0 = cpu_seconds(pid), time.monotonic()
    peak = 0.0
    while time.monotonic() - t0 < seconds:
        peak = max(peak, rss_mb(pid))
        time.sleep(1.0)
    return (cpu_seconds(pid) - cpu0) / (time.monotonic() - t0), peak


def idle_daemon(work: Path, seconds: float) -> None:
    hub = start_hub(work / "hub", tls=True)
    try:
        node = provision(hub, work / "provider")
        with start_fake_kube() as kube:
            kube.cluster.bookmark_interval = 60.0  # the API server's pace, about a minute
            node.place_pod("bench-pod")
            started = dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
            kube.cluster.add_pod(
                "bench-pod", node_name="bench-node", gpus=1, status=running_status(started)
            )
            kubeconfig = kube.write_kubeconfig(work / "kubeconfig")
            daemon = start_daemon(
                node,
                kubeconfig,
                "bench-node",
                log=work / "daemon.log",
                heartbeat=30.0,
                slice_seconds=60,
            )
            with running(daemon):
                wait_for(lambda: daemon.health()["watch"] == "watching")
                time.sleep(5.0)  # warm-up: first heartbeat, list, watch open
                pid = daemon.process.pid
                share, peak = watch_process(pid, seconds)
                high_water = rss_mb(pid, "VmHWM")
                health = daemon.health()
    finally:
        hub.stop()
    print(f"idle daemon over {seconds:g} s (pod watch open, 1 interval metered):")
    print(
        f"  RSS max {peak:.1f} MB, VmHWM {high_water:.1f} MB (target <= 80 MB: "
        f"{peak / 80:.2f}x of budget)"
    )
    print(f"  CPU {share * 100:.2f}% of one core (target < 1%: {share / 0.01:.2f}x of budget)")
    print(
        f"  watch={health['watch']} open_intervals={health['open_intervals']} "
        f"hub_reachable={health['hub_reachable']}"
    )


def node_contexts(
    hub: RunningHub, token: str, ids: list[str], work: Path
) -> dict[str, ssl.SSLContext]:
    """A certificate from the hub for every node, and a TLS context presenting it."""
    contexts = {}
    with hub.client(headers={"Authorization": f"Bearer {token}"}) as client:
        for node_id in ids:
            key, csr = make_csr()
            issued = client.post("/v1/certs", json={"node_id": node_id, "csr": csr})
            issued.raise_for_status()
            cert, key_file = write_identity(work, node_id, key, issued.json()["certificate"])
            context = ssl.create_default_context(cafile=str(hub.ca_cert))
            context.load_cert_chain(cert, key_file)
            contexts[node_id] = context
    return contexts


def hub_cost(work: Path, nodes: int, seconds: float) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, max(soft, nodes * 2 + 256)), hard))
    hub = start_hub(work / "hub-load", tls=True)
    try:
        with hub.client() as client:
            token = login(client, Account.create(), hub.siwe_domain)
            ids = [register_node(client, token) for _ in range(nodes)]
        (work / "node-certs").mkdir()
        contexts = node_contexts(hub, token, ids, work / "node-certs")
        pid = hub.process.pid
        idle, _ = watch_process(pid, min(seconds, 10.0))
        port = int(hub.url.rsplit(":", 1)[1])
        cpu0, t0 = cpu_seconds(pid), time.monotonic()
        latencies = asyncio.run(run_load(port, ids, None, seconds, interval=30.0, tls=contexts))
        share = (cpu_seconds(pid) - cpu0) / (time.monotonic() - t0)
        rss = rss_mb(pid)
    finally:
        hub.stop()
    latencies.sort()
    p50 = statistics.median(latencies) * 1000
    p99 = latencies[max(0, int(len(latencies) * 0.99) - 1)] * 1000
    print(f"TLS hub with {nodes} nodes heartbeating every 30 s over mTLS, for {seconds:g} s:")
    print(f"  heartbeats={len(latencies)} ({len(latencies) / seconds:.1f}/s)")
    print(
        f"  hub CPU {share * 100:.2f}% of one core (idle hub: {idle * 100:.2f}%), RSS {rss:.1f} MB"
    )
    print(f"  latency per beat, connection included: p50={p50:.1f} ms p99={p99:.1f} ms")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=60.0, help="measured window (60)")
    parser.add_argument("--nodes", type=int, default=1000, help="heartbeating nodes (1000)")
    parser.add_argument("--skip-hub", action="store_true", help="only the daemon's footprint")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="worldland-bench-") as tmp:
        idle_daemon(Path(tmp), args.seconds)
        if not args.skip_hub:
            hub_cost(Path(tmp), args.nodes, args.seconds)


if __name__ == "__main__":
    main()
