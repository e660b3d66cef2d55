"""The settlement worker: a thread of the hub process that turns usage rows into payments.

Why a thread of the hub and not a process of its own: it shares the hub's one SQLite
connection and lock (no second writer to coordinate), starts and stops with the hub, and a
crash or SIGKILL of the hub is a crash of the worker: the tests kill the hub process at
chosen points and restart it (tests/settlement/test_crash.py). Nothing in the worker
depends on running in the hub: another process could run it on the same database.

Each round: price new usage rows (database only, so pricing goes on while the chain is
down), follow the open transactions (:class:`~.sender.Sender`), and when none is in flight,
check the next candidate rows against the chain (:mod:`.preflight`) and send one batch.
Every ``watch_interval`` the hot-wallet watch runs. A chain that does not answer is logged
once, counted on ``/metrics``, and waited for; the rows wait with it.
"""

from __future__ import annotations

import logging
import threading
import time

import httpx

from hub_stub.chain import ChainError, Contract
from hub_stub.metrics import HubMetrics
from hub_stub.settlement import ledger
from hub_stub.settlement.config import SettlementConfig
from hub_stub.settlement.preflight import preflight
from hub_stub.settlement.sender import Sender
from hub_stub.settlement.watch import Watch
from hub_stub.store import Store

log = logging.getLogger("hub_stub.settlement")
# How often an in-flight transaction's receipt is looked for, at most.
RECEIPT_POLL = 0.25
# Errors that mean "the chain did not answer as expected": wait and try again.
CHAIN_ERRORS = (ChainError, httpx.HTTPError, ValueError, KeyError)


class Worker:
    """The worker thread: :meth:`start`, :meth:`stop`; :meth:`round` is one pass."""

    def __init__(
        self,
        store: Store,
        contract: Contract,
        sender: Sender,
        watch: Watch,
        config: SettlementConfig,
        metrics: HubMetrics,
    ) -> None:
        self.store = store
        self.contract = contract
        self.sender = sender
        self.watch = watch
        self.config = config
        self.metrics = metrics
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._checked_chain = False
        self._next_watch = 0.0

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="hub-settlement", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 15.0) -> None:
        """Ask the loop to stop and wait for the round in progress to end."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def _run(self) -> None:
        log.info(
            "settlement on: contract %s at %s, settler %s",
            self.contract.address,
            self.config.shown_rpc,
            self.sender.signer.address,
        )
        down_since: float | None = None
        while not self._stop.is_set():
            try:
                pause = self.round()
            except ledger.ContractMismatch as exc:
                log.error("settlement stopped: %s", exc)
                return
            except CHAIN_ERRORS as exc:
                self.metrics.chain_up.set(0)
                if down_since is None:
                    down_since = time.monotonic()
                    log.warning(
                        "the chain at %s did not answer (%s): rows wait until it does",
                        self.config.shown_rpc,
                        type(exc).__name__,
                    )
                pause = self.config.interval
            except Exception:
                log.exception("settlement round failed; trying again")
                pause = self.config.interval
            else:
                if down_since is not None:
                    log.warning(
                        "the chain answers again after %.0f s", time.monotonic() - down_since
                    )
                    down_since = None
                self.metrics.chain_up.set(1)
            self._stop.wait(pause)

    def round(self) -> float:
        """One pass; returns how long to pause before the next (0: more work is waiting)."""
        if not self._checked_chain:
            ledger.pin_chain_id(self.store, self.contract.rpc.chain_id)
            self._checked_chain = True
        ledger.price_new(self.store, time.time())
        tracked = self.sender.track()
        busy = tracked.finalized > 0
        if not tracked.in_flight:
            busy = self._send() or busy
        if time.monotonic() >= self._next_watch:
            self.watch.check()
            self._next_watch = time.monotonic() + self.config.watch_interval
            # With the watch, not every round: a count over every row is not free.
            for state, count in ledger.counts(self.store).items():
                self.metrics.rows.labels(state=state).set(count)
        if busy:
            return 0.0
        return (
            min(self.config.interval, RECEIPT_POLL) if tracked.in_flight else self.config.interval
        )

    def _send(self) -> bool:
        """Check the next rows and send one batch; whether anything was decided."""
        now = time.time()
        rows = ledger.candidates(self.store, now, self.config.batch_size)
        if not rows:
            return False
        checked = preflight(rows, self.contract, self.config.batch_size)
        if checked.failures:
            retry = now + self.config.retry_after
            ledger.mark_failed(self.store, checked.failures, now, retry)
        if checked.passing:
            self.sender.submit(checked.passing)
        return bool(checked.passing)
