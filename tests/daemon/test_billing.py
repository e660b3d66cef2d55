"""Usage reaches the hub's ledger exactly: every second once, whatever happens on the way.

A real daemon process, the real hub over TLS and the fake Kubernetes API. The hub's ledger
is the judge: its total must equal the pod's life to the second, and the daemon's outbox
must drain (an overlapping slice would be refused by the hub and stay in it; a gap would show
as missing seconds).
"""

from __future__ import annotations

import math
import random
import time
from pathlib import Path

import pytest

from tests.daemon.conftest import Rig, rig_for, settled
from tests.support.daemon import running, wait_for
from tests.support.fakekube import FakeKube
from tests.support.hub import start_hub
from worldland_cli.hubclient import HubClient, UsageEvent
from worldland_cli.times import parse_time

SLICE = 2


def slices(seconds: int) -> int:
    return math.ceil(seconds / SLICE)


@pytest.mark.parametrize("seconds", [7, 8])
def test_a_pod_that_runs_n_seconds_is_billed_exactly_n_seconds(rig: Rig, seconds: int) -> None:
    started = int(time.time()) - seconds + 2
    rig.run_pod(started)
    with running(rig.start()) as daemon:
        wait_for(lambda: time.time() >= started + seconds)
        rig.end_pod(started, started + seconds)
        settled(rig, daemon, seconds)
        ledger = rig.node.ledger()
        assert ledger["events"] == slices(seconds)
        assert int(ledger["wei"]) == seconds * rig.node.price_per_sec_wei
        assert daemon.events("usage.sent")  # billed as it went, then the rest
    assert rig.billed(seconds)


def test_usage_made_while_the_hub_is_down_arrives_exactly_once(
    kube: FakeKube, tmp_path: Path
) -> None:
    hub = start_hub(tmp_path / "hub", tls=True)
    port = hub.url.rsplit(":", 1)[1]
    try:
        rig = rig_for(hub, kube, tmp_path)
        rig.node.place_pod(rig.pod)
        with running(rig.start()) as daemon:
            wait_for(lambda: daemon.health()["hub_reachable"] is True)
            hub.stop()
            started = int(time.time())
            rig.run_pod(started, place=False)
            wait_for(lambda: time.time() >= started + 3)
            rig.end_pod(started, started + 3)
            wait_for(lambda: daemon.usage()["outbox_depth"] == slices(3))
            health = daemon.health()
            assert (health["hub_reachable"], health["status"]) == (False, "degraded")
            hub = start_hub(tmp_path / "hub", tls=True, extra_args=["--port", port])
            settled(rig, daemon, 3)
            time.sleep(1.0)  # anything sent twice would show by now
            assert rig.node.ledger()["events"] == slices(3)
            assert rig.billed(3)
    finally:
        hub.stop()


def test_an_event_the_hub_already_has_is_counted_once(rig: Rig) -> None:
    """The daemon dies after the hub recorded a batch but before it heard so: on the next
    start it sends the batch again, and the hub answers "duplicate" instead of counting."""
    started = int(time.time()) - 6
    rig.run_pod(started)
    rig.end_pod(started, started + 6)
    unreachable = ["--hub", "https://127.0.0.1:9"]
    with running(rig.start(extra=unreachable)) as daemon:
        wait_for(lambda: daemon.usage()["outbox_depth"] == slices(6))
        queued = daemon.usage()["outbox"]
    assert daemon.process.returncode == 0  # SIGTERM: a clean stop, outbox kept
    assert daemon.events("daemon.stopped")[-1]["outbox_depth"] == slices(6)
    events = [
        UsageEvent(
            event_id=e["event_id"],
            node_id=e["node_id"],
            pod_id=e["pod_id"],
            gpu_count=e["gpu_count"],
            start=parse_time(e["start"]),
            end=parse_time(e["end"]),
            price_per_sec_wei=int(e["price_per_sec_wei"]),
        )
        for e in queued
    ]
    certs = rig.node.certs
    with HubClient(
        rig.node.hub.url,
        ca_file=str(rig.node.hub.ca_cert),
        client_cert=(str(certs / "node.crt"), str(certs / "node.key")),
    ) as node_client:
        assert node_client.post_usage(events).accepted == slices(6)
    assert rig.billed(6)
    with running(rig.start()) as daemon:
        wait_for(lambda: daemon.usage()["outbox_depth"] == 0)
        sent = daemon.events("usage.sent")[-1]
        assert (sent["accepted"], sent["duplicates"]) == (0, slices(6))
    assert rig.billed(6)
    assert rig.node.ledger()["events"] == slices(6)


@pytest.mark.parametrize("seed", range(4))
def test_killed_at_random_points_no_second_is_lost_or_billed_twice(rig: Rig, seed: int) -> None:
    """SIGKILL at random moments (seeded), the pod ending while running or while down."""
    rng = random.Random(seed)
    started = int(time.time()) - rng.randint(3, 9)
    rig.run_pod(started)
    daemon = rig.start()
    ended = None
    for kill in range(2):
        time.sleep(rng.uniform(0.05, 1.2))
        daemon.kill()
        if kill == 1 and rng.random() < 0.5:
            ended = int(time.time())
            rig.end_pod(started, ended)  # ends while the daemon is down
        daemon = rig.start()
    with running(daemon):
        if ended is None:
            time.sleep(rng.uniform(0, 1.0))
            ended = int(time.time())
            rig.end_pod(started, ended)
        settled(rig, daemon, ended - started)
        assert rig.node.ledger()["events"] == slices(ended - started)
        assert daemon.usage()["outbox_refused"] == 0


@pytest.mark.parametrize("history", ["kept", "compacted"])
def test_a_watch_dropped_mid_stream_misses_nothing(rig: Rig, history: str) -> None:
    """The pod ends while the stream is cut: the resumed watch replays it, or, when the
    API server's history no longer has it (410), a new list shows the real end."""
    started = int(time.time()) - 5
    rig.run_pod(started)
    with running(rig.start()) as daemon:
        wait_for(lambda: daemon.health()["open_intervals"] == 1)
        with rig.kube.cluster.lock:
            rig.kube.cluster.bookmark_interval = 3600.0
        # The interval opens from the first list; the watch follows it a moment later.
        wait_for(lambda: rig.kube.cluster.open_watches() == 1)
        assert rig.kube.cluster.drop_watches() == 1
        ended = int(time.time())
        rig.end_pod(started, ended)
        if history == "compacted":
            rig.kube.cluster.compact()
        settled(rig, daemon, ended - started)
        assert bool(daemon.events("watch.gone")) == (history == "compacted")
        assert daemon.events("watch.error")


def test_sigterm_exits_0_and_the_interval_resumes_on_the_next_start(rig: Rig) -> None:
    started = int(time.time()) - 5
    rig.run_pod(started)
    with running(rig.start()) as daemon:
        wait_for(lambda: daemon.usage()["acknowledged"] != [])
    assert daemon.process.returncode == 0
    assert daemon.events("daemon.stopped")[-1]["outbox_flushed"] is True
    time.sleep(0.5)  # the pod runs on while the daemon is away
    with running(rig.start()) as daemon:
        ended = int(time.time())
        rig.end_pod(started, ended)
        settled(rig, daemon, ended - started)
    assert len(daemon.events("interval.opened")) == 1  # continued, not opened again
