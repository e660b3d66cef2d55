"""The pod list + watch against the fake API server, with the real kubernetes client.

The fake serves the API server's watch semantics (tests/support/fakekube.py): resourceVersion,
bookmarks, field selectors, a 410 ERROR event for a version older than its history, and
streams cut mid-chunk. What counts is that the meter hears of every change, whatever happens
to the stream, and that the watch resumes rather than lists again when it can.
"""

from __future__ import annotations

import datetime as dt
import io
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.support.daemon import wait_for
from tests.support.fakekube import FakeKube, running_status, start_fake_kube, terminated_status
from worldland_cli.daemon.logs import EventLog
from worldland_cli.daemon.meter import Meter
from worldland_cli.daemon.outbox import Outbox
from worldland_cli.daemon.podwatch import PodWatch
from worldland_cli.host import Host


def iso(epoch: int) -> str:
    return dt.datetime.fromtimestamp(epoch, dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class Watching:
    kube: FakeKube
    watch: PodWatch
    outbox: Outbox
    log: io.StringIO

    def ended(self, name: str) -> int | None:
        for interval in self.outbox.intervals():
            if interval.name == name:
                return interval.ended_at
        return None

    def started(self, name: str) -> bool:
        return any(i.name == name for i in self.outbox.intervals())


@pytest.fixture
def watching(tmp_path: Path) -> Iterator[Watching]:
    with start_fake_kube() as kube:
        kube.cluster.bookmark_interval = 0.2
        kubeconfig = kube.write_kubeconfig(tmp_path / "kubeconfig")
        log = io.StringIO()
        outbox = Outbox(Host(), str(tmp_path / "outbox.sqlite3"), "node-1")
        meter = Meter(outbox, price_per_sec_wei=1, slice_seconds=60, log=EventLog(1, log))
        watch = PodWatch(Host(), str(kubeconfig), "gpu-1", meter, EventLog(1, log), settle=1)
        thread = threading.Thread(target=watch.run, daemon=True)
        thread.start()
        try:
            yield Watching(kube, watch, outbox, log)
        finally:
            watch.stop()
            thread.join(5)
            outbox.close()


def test_pods_of_this_node_are_listed_then_watched(watching: Watching) -> None:
    t0 = int(time.time()) - 30
    cluster = watching.kube.cluster
    wait_for(lambda: watching.watch.state() == "watching")
    cluster.add_pod("mine", node_name="gpu-1", gpus=1, status=running_status(iso(t0)))
    cluster.add_pod("theirs", node_name="gpu-2", gpus=1, status=running_status(iso(t0)))
    wait_for(lambda: watching.started("mine"))
    cluster.set_pod_status("default", "mine", terminated_status(iso(t0), iso(t0 + 17)))
    wait_for(lambda: watching.ended("mine") == t0 + 17)
    assert not watching.started("theirs")
    list_calls = [p for m, p in cluster.requests if "watch" not in p and "/pods" in p]
    assert len(list_calls) == 1
    assert "fieldSelector=spec.nodeName%3Dgpu-1" in list_calls[0]


def test_a_stream_dropped_mid_way_resumes_and_misses_nothing(watching: Watching) -> None:
    t0 = int(time.time()) - 30
    cluster = watching.kube.cluster
    cluster.add_pod("job", node_name="gpu-1", gpus=1, status=running_status(iso(t0)))
    wait_for(lambda: watching.started("job"))
    # The pod ends while the connection is down; the resumed watch replays it.
    with cluster.lock:
        cluster.bookmark_interval = 3600.0
    cluster.drop_watches()
    cluster.set_pod_status("default", "job", terminated_status(iso(t0), iso(t0 + 20)))
    wait_for(lambda: watching.ended("job") == t0 + 20)
    assert watching.watch.relists == 1  # resumed from its resourceVersion, no new list
    assert len(cluster.watches) >= 2 and cluster.watches[-1] not in ("", "0")


def test_a_version_too_old_to_resume_from_lists_again(watching: Watching) -> None:
    t0 = int(time.time()) - 30
    cluster = watching.kube.cluster
    cluster.add_pod("job", node_name="gpu-1", gpus=1, status=running_status(iso(t0)))
    wait_for(lambda: watching.started("job"))
    with cluster.lock:
        cluster.bookmark_interval = 3600.0
    cluster.drop_watches()
    cluster.set_pod_status("default", "job", terminated_status(iso(t0), iso(t0 + 25)))
    cluster.compact()  # the change is gone from the history: only a list has it
    wait_for(lambda: watching.ended("job") == t0 + 25)
    assert watching.watch.relists == 2
    assert '"event":"watch.gone"' in watching.log.getvalue()


def test_bookmarks_move_the_resume_point_past_other_nodes_changes(watching: Watching) -> None:
    cluster = watching.kube.cluster
    wait_for(lambda: watching.watch.state() == "watching")
    listed = watching.watch.resource_version
    cluster.add_pod("elsewhere", node_name="gpu-9", gpus=1)
    wait_for(lambda: watching.watch.resource_version != listed, timeout=5)
    assert int(watching.watch.resource_version or 0) >= cluster.resource_version - 1
