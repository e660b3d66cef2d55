"""The meter and its outbox, in process: the billing grid, restarts, late and missing ends.

Pods are the fake API server's own objects (tests/support/fakekube.py builds them the way the
kubelet writes them); the outbox is a real SQLite file. What the hub would be sent is read
back from the outbox and checked for the ledger's rules: a pod's slices are contiguous, never
overlap, and add up to exactly the time its GPUs were held.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import io
import itertools
import json
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from tests.support.fakekube import Cluster, gpu_container, running_status, terminated_status
from worldland_cli.daemon.logs import EventLog
from worldland_cli.daemon.meter import FORGET_AFTER, Meter
from worldland_cli.daemon.outbox import Outbox, OutboxError
from worldland_cli.daemon.pods import PodView, view
from worldland_cli.host import Host

T0 = 1_790_000_000  # a whole second, as the kubelet writes times
SLICE = 60


def iso(epoch: int) -> str:
    return dt.datetime.fromtimestamp(epoch, dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def gpu_pod(status: dict[str, Any], gpus: int = 1, **labels: str) -> dict[str, Any]:
    return Cluster().add_pod("train", labels=labels, node_name="n1", gpus=gpus, status=status)


def pod_view(status: dict[str, Any], uid: str = "uid-1") -> PodView:
    pod = gpu_pod(status)
    pod["metadata"]["uid"] = uid
    seen = view(pod)
    assert seen is not None
    return seen


class Box:
    """An outbox file and a meter over it, made again to play a restart."""

    def __init__(self, tmp_path: Path, slice_seconds: int = SLICE) -> None:
        self.path = str(tmp_path / "state" / "outbox.sqlite3")
        self.slice_seconds = slice_seconds
        self.log = io.StringIO()
        self.restart()

    def restart(self) -> None:
        self.outbox = Outbox(Host(), self.path, "node-1")
        self.meter = Meter(
            self.outbox,
            price_per_sec_wei=1000,
            slice_seconds=self.slice_seconds,
            log=EventLog(stream=self.log),
        )

    def events(self) -> list[tuple[str, int, int]]:
        """(event id, start, end) of everything queued, in time order."""
        queued = self.outbox.due(float("inf"), 10_000)
        return sorted(
            (
                (q.event.event_id, int(q.event.start.timestamp()), int(q.event.end.timestamp()))
                for q in queued
            ),
            key=lambda e: e[1],
        )

    def logged(self, event: str) -> list[dict[str, Any]]:
        lines = [json.loads(line) for line in self.log.getvalue().splitlines()]
        return [line for line in lines if line["event"] == event]


def assert_billed_exactly(events: list[tuple[str, int, int]], start: int, end: int) -> None:
    """Contiguous from ``start`` to ``end``: no gap, no overlap, nothing empty."""
    assert events, "nothing was billed"
    assert events[0][1] == start
    assert events[-1][2] == end
    for (_, _, previous_end), (_, next_start, _) in itertools.pairwise(events):
        assert next_start == previous_end
    assert all(e > s for _, s, e in events)
    assert len({name for name, _, _ in events}) == len(events)


# --------------------------------------------------------------------------- the pod view


def test_a_pod_without_gpus_is_not_metered() -> None:
    assert view(Cluster().add_pod("web", node_name="n1", status=running_status(iso(T0)))) is None


def test_a_running_gpu_pod_started_when_its_container_did() -> None:
    seen = view(gpu_pod(running_status(iso(T0)), gpus=2, **{"worldland.io/pod-id": "pod-42"}))
    assert seen is not None
    assert (seen.started, seen.finished, seen.gpus, seen.pod_id) == (T0, None, 2, "pod-42")


def test_gpus_of_every_container_count_and_the_earliest_start_wins() -> None:
    pod = gpu_pod(running_status(iso(T0 + 30), containers=("main", "side")))
    pod["spec"]["containers"].append(gpu_container("side", 3))
    # "main" restarted: its first run is in lastState.
    main = pod["status"]["containerStatuses"][0]
    main["lastState"] = {"terminated": {"startedAt": iso(T0), "finishedAt": iso(T0 + 29)}}
    seen = view(pod)
    assert seen is not None
    assert (seen.started, seen.gpus, seen.finished) == (T0, 4, None)


def test_a_pending_pod_has_not_started() -> None:
    seen = view(gpu_pod({"phase": "Pending"}))
    assert seen is not None
    assert seen.started is None


def test_a_finished_pod_ends_at_its_last_finish() -> None:
    seen = view(gpu_pod(terminated_status(iso(T0), iso(T0 + 75), phase="Failed")))
    assert seen is not None
    assert (seen.started, seen.finished) == (T0, T0 + 75)


def test_a_pod_being_deleted_ends_when_every_container_stopped() -> None:
    status = terminated_status(iso(T0), iso(T0 + 20))
    status["phase"] = "Running"  # kubelets before 1.27 leave the phase while deleting
    pod = gpu_pod(status)
    assert view(pod) is not None and view(pod).finished is None  # type: ignore[union-attr]
    pod["metadata"]["deletionTimestamp"] = iso(T0 + 50)
    seen = view(pod)
    assert seen is not None
    assert (seen.finished, seen.deletion) == (T0 + 20, T0 + 50)


# ------------------------------------------------------------------------- the billing grid


@pytest.mark.parametrize("seconds", [1, 59, 60, 61, 120, 125, 3601])
def test_a_pod_is_billed_exactly_its_seconds_on_a_fixed_grid(tmp_path: Path, seconds: int) -> None:
    box = Box(tmp_path)
    box.meter.observe(pod_view(running_status(iso(T0))))
    for now in range(T0, T0 + seconds, 37):  # the clock ticks while the pod runs
        box.meter.tick(now, current=True)
    box.meter.observe(pod_view(terminated_status(iso(T0), iso(T0 + seconds))))
    events = box.events()
    assert_billed_exactly(events, T0, T0 + seconds)
    # Every slice but the last is a whole slice on the grid from the pod's start.
    assert all(e - s == SLICE and (s - T0) % SLICE == 0 for _, s, e in events[:-1])
    assert sum(e - s for _, s, e in events) == seconds


def test_slices_are_cut_only_once_settled_and_current(tmp_path: Path) -> None:
    box = Box(tmp_path)
    box.meter.observe(pod_view(running_status(iso(T0))))
    assert box.meter.tick(T0 + 10 * SLICE, current=False) == 0  # the watch is not current
    assert box.meter.tick(T0 + SLICE + 5, current=True) == 0  # the kubelet may still report
    assert box.meter.tick(T0 + SLICE + 10, current=True) == 1
    assert box.events() == [(f"uid-1:{T0}:0", T0, T0 + SLICE)]


def test_a_restart_continues_the_interval_without_gap_or_repeat(tmp_path: Path) -> None:
    box = Box(tmp_path)
    box.meter.observe(pod_view(running_status(iso(T0))))
    box.meter.tick(T0 + 3 * SLICE + 10, current=True)
    box.restart()  # a crash: only the file remains
    box.meter.reconcile([pod_view(running_status(iso(T0)))], T0 + 6 * SLICE)
    box.meter.tick(T0 + 6 * SLICE + 10, current=True)
    box.restart()
    box.meter.reconcile([pod_view(terminated_status(iso(T0), iso(T0 + 400)))], T0 + 500)
    assert_billed_exactly(box.events(), T0, T0 + 400)
    assert [o["event"] for o in [*box.logged("interval.opened")]] == ["interval.opened"]


def test_an_event_id_names_the_same_slice_whoever_cuts_it(tmp_path: Path) -> None:
    """Two outboxes that never met (a lost file) cut the same ids: the hub dedupes them."""
    first, second = Box(tmp_path / "a"), Box(tmp_path / "b")
    for box in (first, second):
        box.meter.observe(pod_view(running_status(iso(T0))))
        box.meter.tick(T0 + 2 * SLICE + 10, current=True)
        box.meter.observe(pod_view(terminated_status(iso(T0), iso(T0 + 150))))
    assert first.events() == second.events()
    assert [name for name, _, _ in first.events()] == [f"uid-1:{T0}:{k}" for k in range(3)]


def test_a_late_end_is_never_billed_twice_or_negative(tmp_path: Path) -> None:
    box = Box(tmp_path)
    box.meter.observe(pod_view(running_status(iso(T0))))
    box.meter.tick(T0 + 2 * SLICE + 10, current=True)  # billed to T0 + 120
    box.meter.observe(pod_view(terminated_status(iso(T0), iso(T0 + 100))))
    assert_billed_exactly(box.events(), T0, T0 + 2 * SLICE)
    assert box.logged("interval.late_end")[0]["seconds_past_end"] == 20


def test_a_pod_gone_from_the_list_ends_when_it_was_last_known_to_run(tmp_path: Path) -> None:
    box = Box(tmp_path)
    box.meter.observe(pod_view(running_status(iso(T0))))
    box.meter.tick(T0 + 90, current=True)  # known to run until T0 + 80 (settle: 10 s)
    box.meter.reconcile([], T0 + 300)  # deleted during a watch gap: no end time anywhere
    assert_billed_exactly(box.events(), T0, T0 + 80)


def test_a_pod_gone_after_a_clean_stop_is_billed_until_the_stop(tmp_path: Path) -> None:
    box = Box(tmp_path)
    box.meter.observe(pod_view(running_status(iso(T0))))
    box.meter.tick(T0 + 70, current=True)  # slice 0 cut
    box.meter.stopping(T0 + 100, current=True)  # SIGTERM: running until T0 + 90 (settle)
    box.restart()
    box.meter.reconcile([], T0 + 500)  # deleted while the daemon was down
    assert_billed_exactly(box.events(), T0, T0 + 90)


def test_a_deleted_running_pod_ends_at_its_deletion(tmp_path: Path) -> None:
    box = Box(tmp_path)
    running = pod_view(running_status(iso(T0)))
    box.meter.observe(running)
    box.meter.deleted(dataclasses.replace(running, deletion=T0 + 45), now=T0 + 47)
    assert_billed_exactly(box.events(), T0, T0 + 45)


def test_a_closed_interval_is_not_opened_again_by_old_events(tmp_path: Path) -> None:
    box = Box(tmp_path)
    box.meter.observe(pod_view(terminated_status(iso(T0), iso(T0 + 30))))
    box.meter.observe(pod_view(running_status(iso(T0))))  # a replay from an older version
    box.restart()
    box.meter.reconcile([pod_view(running_status(iso(T0)))], T0 + 100)
    box.meter.tick(T0 + 1000, current=True)
    assert_billed_exactly(box.events(), T0, T0 + 30)


def test_closed_intervals_of_pods_long_gone_are_forgotten(tmp_path: Path) -> None:
    box = Box(tmp_path)
    box.meter.observe(pod_view(terminated_status(iso(T0), iso(T0 + 30))))
    box.meter.reconcile([], T0 + 31)
    assert len(box.outbox.intervals()) == 1
    box.meter.reconcile([], T0 + 31 + FORGET_AFTER)
    assert box.outbox.intervals() == []


# ------------------------------------------------------------------------------ the outbox


def test_acknowledged_events_leave_and_refused_ones_wait(tmp_path: Path) -> None:
    box = Box(tmp_path)
    box.meter.observe(pod_view(terminated_status(iso(T0), iso(T0 + 150))))
    names = [name for name, _, _ in box.events()]
    assert box.outbox.acknowledge(names[:2]) == 2 * SLICE
    box.outbox.defer(names[2:], until=T0 + 9e9, error="pod unknown to the hub")
    depth = box.outbox.depth()
    assert (depth.events, depth.refused) == (1, 1)
    assert box.outbox.due(T0, 10) == []
    recent = box.outbox.recent()
    assert [e["event_id"] for e in recent["outbox"]] == names[2:]
    assert recent["outbox"][0]["refused"] == "pod unknown to the hub"
    assert {e["event_id"] for e in recent["acknowledged"]} == set(names[:2])


def test_the_outbox_is_private_and_durable(tmp_path: Path) -> None:
    box = Box(tmp_path)
    path = Path(box.path)
    assert path.stat().st_mode & 0o777 == 0o600
    assert path.parent.stat().st_mode & 0o777 == 0o700
    db = sqlite3.connect(path)
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    db.close()


def test_an_outbox_from_a_newer_worldland_is_refused(tmp_path: Path) -> None:
    box = Box(tmp_path)
    box.outbox.close()
    db = sqlite3.connect(box.path)
    db.execute("PRAGMA user_version=99")
    db.close()
    with pytest.raises(OutboxError, match="newer worldland"):
        Outbox(Host(), box.path, "node-1")
