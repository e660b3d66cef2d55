"""The usage meter: what the API says about this node's GPU pods, as intervals in the outbox.

Three inputs, all from :mod:`worldland_cli.daemon.podwatch`:

- a full list (:meth:`Meter.reconcile`), at start and after any watch gap: the truth as of
  now. An open interval whose pod is running goes on (the daemon may have been down: the
  slices it missed are cut from the pod's own start, so nothing is lost); one whose pod ended
  is closed at the pod's real finish; one whose pod is gone altogether is closed at the last
  moment the pod was known to run, since nothing says when it ended;
- watch events (:meth:`Meter.observe`, :meth:`Meter.deleted`): intervals open when a GPU
  container has run and close when the pod ends or is deleted, at the status's own times;
- the clock (:meth:`Meter.tick`): slices are cut while the watch is current, so a pod that
  ended during a gap is never billed past its end because the end had not arrived yet.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable

from worldland_cli.daemon.logs import EventLog
from worldland_cli.daemon.outbox import Interval, Outbox
from worldland_cli.daemon.pods import PodView
from worldland_cli.daemon.slices import settle_seconds, slice_start, whole_slices

# A closed interval is remembered this long after its pod is gone from the API, so that a
# watch replaying old events cannot open it again.
FORGET_AFTER = 3600


class Meter:
    """Decides when intervals open, are cut and close; the outbox records each decision."""

    def __init__(
        self,
        outbox: Outbox,
        *,
        price_per_sec_wei: int,
        slice_seconds: int,
        log: EventLog,
        on_queued: Callable[[], None] = lambda: None,
        on_opened: Callable[[], None] = lambda: None,
    ) -> None:
        self.outbox = outbox
        self.price_per_sec_wei = price_per_sec_wei
        self.slice_seconds = slice_seconds
        self.log = log
        self._on_queued = on_queued
        self._on_opened = on_opened
        self._lock = threading.Lock()
        known = outbox.intervals()
        self._open = {iv.pod_uid: iv for iv in known if iv.ended_at is None}
        self._closed = {iv.pod_uid: iv.ended_at for iv in known if iv.ended_at is not None}
        # When each open interval's pod was last known to run, in this process.
        self._alive: dict[str, int] = {}

    def open_intervals(self) -> list[Interval]:
        with self._lock:
            return list(self._open.values())

    def reconcile(self, views: Iterable[PodView], now: int) -> None:
        """Bring the intervals in line with a full list of the node's GPU pods."""
        listed = {v.uid: v for v in views}
        with self._lock:
            for uid, interval in list(self._open.items()):
                if uid not in listed:
                    last_known = max(interval.seen_at, self._alive.get(uid, 0))
                    self._close(interval, last_known, "gone")
            for view in listed.values():
                self._apply(view)
            stale = [
                uid
                for uid, ended in self._closed.items()
                if uid not in listed and ended < now - FORGET_AFTER
            ]
            if stale:
                self.outbox.forget(stale)
                for uid in stale:
                    del self._closed[uid]

    def observe(self, view: PodView) -> None:
        """An ADDED or MODIFIED pod."""
        with self._lock:
            self._apply(view)

    def deleted(self, view: PodView, now: int) -> None:
        """A DELETED pod: its last state says when it ended, else its deletion time."""
        with self._lock:
            self._apply(view)
            interval = self._open.get(view.uid)
            if interval is not None:
                end = view.finished if view.finished is not None else min(now, view.deletion or now)
                self._close(interval, end, "deleted")

    def tick(self, now: int, current: bool) -> int:
        """Cut every slice that is due; only while the watch is ``current``. How many."""
        if not current:
            return 0
        queued = 0
        with self._lock:
            for uid, interval in list(self._open.items()):
                until = now - settle_seconds(interval.slice_seconds)
                self._alive[uid] = max(self._alive.get(uid, 0), until)
                due = whole_slices(interval.start, interval.slice_seconds, until)
                if due > interval.next_slice:
                    self._open[uid], count = self.outbox.cut(uid, until, until)
                    queued += count
                    self.log.debug("slices.cut", pod=interval.pod_id, count=count, until=until)
        if queued:
            self._on_queued()
        return queued

    def next_cut(self) -> float | None:
        """When the next slice falls due (epoch seconds); None without open intervals."""
        with self._lock:
            ends = [
                slice_start(iv.start, iv.slice_seconds, iv.next_slice + 1)
                + settle_seconds(iv.slice_seconds)
                for iv in self._open.values()
            ]
        return float(min(ends)) if ends else None

    def stopping(self, now: int, current: bool) -> None:
        """Shutdown: remember that the open intervals' pods were running until now (less the
        settling time, as for a cut), for a pod that is gone when the daemon is back."""
        with self._lock:
            if current and self._open:
                self.outbox.mark_seen(
                    {
                        uid: now - settle_seconds(interval.slice_seconds)
                        for uid, interval in self._open.items()
                    }
                )

    # ------------------------------------------------------------------------- internals

    def _apply(self, view: PodView) -> None:
        if view.uid in self._closed:
            return
        interval = self._open.get(view.uid)
        if interval is None:
            if view.started is None:
                return
            interval = self.outbox.open(
                Interval(
                    pod_uid=view.uid,
                    namespace=view.namespace,
                    name=view.name,
                    pod_id=view.pod_id,
                    gpu_count=view.gpus,
                    price_per_sec_wei=self.price_per_sec_wei,
                    start=view.started,
                    slice_seconds=self.slice_seconds,
                )
            )
            if interval.ended_at is not None:
                self._closed[view.uid] = interval.ended_at
                return
            self._open[view.uid] = interval
            self._on_opened()
            self.log.info(
                "interval.opened",
                pod=view.pod_id,
                namespace=view.namespace,
                name=view.name,
                uid=view.uid,
                start=interval.to_json()["start"],
                gpus=interval.gpu_count,
            )
        if view.finished is not None:
            self._close(interval, view.finished, "finished")

    def _close(self, interval: Interval, end: int, why: str) -> None:
        closed, queued, late = self.outbox.close_interval(interval.pod_uid, end)
        ended = closed.ended_at if closed.ended_at is not None else closed.cut_until
        del self._open[interval.pod_uid]
        self._alive.pop(interval.pod_uid, None)
        self._closed[interval.pod_uid] = ended
        self.log.info(
            "interval.closed",
            pod=closed.pod_id,
            uid=closed.pod_uid,
            why=why,
            end=closed.to_json()["ended_at"],
            seconds=ended - closed.start,
        )
        if late:
            self.log.warn(
                "interval.late_end",
                pod=closed.pod_id,
                uid=closed.pod_uid,
                seconds_past_end=late,
                detail="the pod's end arrived after a slice beyond it was cut",
            )
        if queued:
            self._on_queued()
