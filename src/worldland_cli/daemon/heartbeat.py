"""Heartbeats with jitter, backoff while the hub is unreachable, and certificate renewal.

Every ``interval`` seconds (give or take a tenth, so a thousand nodes started together do
not beat together) the daemon tells the hub the node is alive. While the hub is unreachable
it backs off exponentially up to a cap, and when the hub answers again it wakes the sender so
that usage queued meanwhile leaves at once. After each beat the certificate is renewed when a
third of its life is left (:func:`worldland_cli.auth.certs.ensure_certificate`, over mTLS), or
at once when it cannot serve the node API (issued before node certificates carried
serverAuth); the node API picks the new one up by itself (:mod:`worldland_cli.daemon.tls`).
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable

from worldland_cli.auth.certs import CertError, cert_status, ensure_certificate
from worldland_cli.auth.session import NotLoggedIn
from worldland_cli.daemon.backoff import backoff, jittered
from worldland_cli.daemon.hubaccess import CALL_TIMEOUT, HubAccess
from worldland_cli.daemon.logs import EventLog
from worldland_cli.daemon.status import DaemonStatus
from worldland_cli.daemon.tls import describe
from worldland_cli.errors import ActionableError
from worldland_cli.host import HostError
from worldland_cli.hubclient import HubDenied, HubError

DEFAULT_INTERVAL = 30.0
# How long a refused beat waits before its one retry (see Heartbeat.beat).
RETRY_AFTER_REFUSAL = 1.0


class Heartbeat:
    """Run :meth:`run` in a thread."""

    def __init__(
        self,
        node_id: str,
        access: HubAccess,
        status: DaemonStatus,
        log: EventLog,
        *,
        interval: float = DEFAULT_INTERVAL,
        on_hub_back: Callable[[], None] = lambda: None,
        rng: random.Random | None = None,
    ) -> None:
        self.node_id = node_id
        self.access = access
        self.status = status
        self.log = log
        self.interval = interval
        self._on_hub_back = on_hub_back
        self._rng = rng or random.Random()
        self._failures = 0
        self._forced = False  # renewed once already because the certificate could not serve

    def run(self, stopping: threading.Event) -> None:
        while not stopping.is_set():
            beat = self.beat()
            if beat:
                self.renew_if_due()
            delay = jittered(self.interval, self._rng) if beat else self._backoff()
            stopping.wait(delay)

    def _backoff(self) -> float:
        return min(backoff(self._failures, self._rng), max(self.interval, 1.0) * 2)

    def beat(self) -> bool:
        """One heartbeat; whether the hub took it.

        A refusal is tried once more after a moment: a renewal (``worldland certs renew``,
        or our own) revokes the old certificate at the hub before the new one is on disk,
        and a beat that falls between the two is refused for no fault of the node.
        """
        try:
            try:
                self.access.client().heartbeat(self.node_id)
            except HubDenied:
                time.sleep(RETRY_AFTER_REFUSAL)
                self.access.client().heartbeat(self.node_id)
        except (ActionableError, HostError) as e:  # the hub, or credentials to reach it
            if isinstance(e, HubDenied):
                self.access.refused()
            message = e.message if isinstance(e, ActionableError) else str(e)
            self._failures += 1
            self.status.heartbeat_failed(message)
            self.log.warn("heartbeat.failed", error=message, failures=self._failures)
            return False
        back = self.status.heartbeat_ok(time.time())
        if back or self._failures:
            self.log.info("hub.reachable", after_failures=self._failures)
            self._on_hub_back()
        self._failures = 0
        self.log.debug("heartbeat.sent")
        return True

    def renew_if_due(self) -> None:
        """Renew the certificate when due (or unfit to serve TLS); failures are logged."""
        certs = self.access.certs
        try:
            status = cert_status(certs.directory, self.access.host)
            pem = self.access.host.read_bytes(certs.cert)
            # Once per run: a hub that still issues clientAuth-only certificates would
            # otherwise be asked for a new one at every beat.
            unfit = pem is not None and not describe(pem)[1] and not self._forced
            if status.usable and not status.needs_renewal and not unfit:
                return
            self._forced = self._forced or unfit
            outcome = ensure_certificate(
                self.access.endpoint,
                self.node_id,
                cert_dir=certs.directory,
                token=self.access.token,
                host=self.access.host,
                force=unfit,
                retries=0,
                timeout=CALL_TIMEOUT,
            )
        except (HubError, CertError, NotLoggedIn, HostError, ValueError) as e:
            message = getattr(e, "message", None) or str(e)
            self.log.error("certificate.renewal_failed", error=message)
            return
        after = outcome.status
        self.log.info(
            "certificate.renewed",
            action=outcome.action,
            serial=after.serial,
            not_after=after.not_after,
        )
