"""Sends the outbox to the hub; an event leaves the outbox only once the hub has it.

The hub answers a batch as a whole: 200 means every event in it is recorded (accepted now, or
a duplicate of one recorded before, which is what a resend after a crash looks like), so all
of them are acknowledged. A refusal (4xx: a pod the hub does not know yet, a price it does not
take) also refuses the whole batch, so the batch is sent again one event at a time to find
the refused ones; those stay in the outbox with the hub's reason and are tried again later
(the operator may place the pod meanwhile), never dropped: an event dropped is money lost.
An unreachable hub stops sending until the backoff has passed or the heartbeat finds it again.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable, Sequence

from worldland_cli.daemon.backoff import backoff
from worldland_cli.daemon.hubaccess import HubAccess
from worldland_cli.daemon.logs import EventLog
from worldland_cli.daemon.outbox import Outbox, Queued
from worldland_cli.daemon.status import DaemonStatus
from worldland_cli.errors import ActionableError
from worldland_cli.host import HostError
from worldland_cli.hubclient import HubDenied, HubError, HubRejected

BATCH = 100
# A refused event is asked about again after 30 s, doubling up to an hour.
REFUSED_FIRST = 30.0
REFUSED_CAP = 3600.0
IDLE_WAIT = 60.0


class Sender:
    """Run :meth:`run` in a thread; :meth:`poke` when new events are queued."""

    def __init__(
        self,
        outbox: Outbox,
        access: HubAccess,
        status: DaemonStatus,
        log: EventLog,
        *,
        rng: random.Random | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.outbox = outbox
        self.access = access
        self.status = status
        self.log = log
        self._rng = rng or random.Random()
        self._clock = clock
        self._wake = threading.Event()
        self._failures = 0
        self._retry_at = 0.0

    def poke(self) -> None:
        """New events, or the hub is back: send now rather than at the next backoff."""
        self._retry_at = 0.0
        self._wake.set()

    def run(self, stopping: threading.Event) -> None:
        while not stopping.is_set():
            wait = self.send_due()
            self._wake.wait(IDLE_WAIT if wait is None else wait)
            self._wake.clear()

    def flush(self, deadline: float) -> bool:
        """Send what is due until the outbox is empty, the hub stops answering or the
        deadline passes (shutdown); whether the outbox emptied."""
        self._retry_at = 0.0
        while self._clock() < deadline:
            before = self.outbox.depth().events
            self.send_due()
            after = self.outbox.depth().events
            if after == 0:
                return True
            if after >= before:  # unreachable, or only refused events are left
                return False
        return self.outbox.depth().events == 0

    def send_due(self) -> float | None:
        """Send every due event; seconds until something is due again (None: nothing)."""
        now = self._clock()
        if now < self._retry_at:
            return self._retry_at - now
        while True:
            batch = self.outbox.due(self._clock(), BATCH)
            if not batch:
                break
            if not self._send(batch):
                return max(0.0, self._retry_at - self._clock())
        upcoming = self.outbox.next_attempt()
        return None if upcoming is None else max(0.0, upcoming - self._clock())

    def _send(self, batch: Sequence[Queued]) -> bool:
        """One batch; False when the hub could not be asked (back off)."""
        try:
            ack = self.access.client().post_usage([q.event for q in batch])
        except HubRejected as e:
            if e.status is None or e.status >= 500 or e.status == 429:
                return self._unreachable(e.message)
            if len(batch) > 1:
                return all(self._send([one]) for one in batch)
            self._refused(batch[0], e)
            return True
        except HubDenied as e:
            self.access.refused()
            return self._unreachable(e.message)
        except (ActionableError, HostError) as e:  # the hub, or credentials to reach it
            return self._unreachable(e.message if isinstance(e, ActionableError) else str(e))
        seconds = self.outbox.acknowledge(q.event.event_id for q in batch)
        self.status.billed(seconds)
        self._failures = 0
        self.log.info(
            "usage.sent",
            events=len(batch),
            accepted=ack.accepted,
            duplicates=ack.duplicates,
            seconds=seconds,
        )
        return True

    def _unreachable(self, error: str) -> bool:
        self._failures += 1
        delay = backoff(self._failures, self._rng)
        self._retry_at = self._clock() + delay
        self.log.warn("usage.unsent", error=error, retry_in_s=round(delay, 1))
        return False

    def _refused(self, queued: Queued, error: HubError) -> None:
        delay = min(REFUSED_CAP, REFUSED_FIRST * 2**queued.attempts)
        self.outbox.defer([queued.event.event_id], self._clock() + delay, error.message)
        self.log.warn(
            "usage.refused",
            event_id=queued.event.event_id,
            pod=queued.event.pod_id,
            reason=error.message,
            retry_in_s=delay,
        )
