"""Alerts: a log line, a counter on ``/metrics``, and a JSON POST to the operator's webhook.

The POST happens on a thread of its own, so a slow or dead webhook never holds up
settlement; it is tried a few times, then given up with a log line (the log line and the
counter already stand). The payload carries ``text`` as well, which chat webhooks (Slack,
Mattermost) show as is.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from typing import Any

import httpx

from hub_stub.metrics import HubMetrics

log = logging.getLogger("hub_stub.settlement")
TRIES = 3
TIMEOUT = 5.0


class Alerts:
    """Raise alerts; :meth:`close` delivers what is queued (briefly) and stops the thread."""

    def __init__(self, webhook: str | None, metrics: HubMetrics, context: dict[str, Any]) -> None:
        self.webhook = webhook
        self.metrics = metrics
        self.context = context
        self._queue: queue.Queue[dict[str, Any] | None] = queue.Queue()
        self._thread: threading.Thread | None = None
        if webhook is not None:
            self._thread = threading.Thread(target=self._deliver, name="hub-alerts", daemon=True)
            self._thread.start()

    def raise_alert(self, kind: str, message: str, **details: Any) -> None:
        """Log, count and (with a webhook) post one alert."""
        log.warning("ALERT %s: %s", kind, message)
        self.metrics.alerts.labels(kind=kind).inc()
        if self._thread is not None:
            payload = {"alert": kind, "text": f"worldland hub: {message}", "message": message}
            self._queue.put({**payload, **self.context, **details, "at": time.time()})

    def close(self, timeout: float = 5.0) -> None:
        if self._thread is not None:
            self._queue.put(None)
            self._thread.join(timeout)

    def _deliver(self) -> None:
        with httpx.Client(timeout=TIMEOUT) as client:
            while (payload := self._queue.get()) is not None:
                for attempt in range(TRIES):
                    try:
                        client.post(str(self.webhook), json=payload).raise_for_status()
                        break
                    except httpx.HTTPError as exc:
                        if attempt < TRIES - 1:
                            time.sleep(2**attempt)
                            continue
                        # Not the exception's text: it names the URL, which can hold a secret.
                        status = getattr(getattr(exc, "response", None), "status_code", None)
                        why = f"HTTP {status}" if status else type(exc).__name__
                        log.error(
                            "alert %s not delivered to the webhook: %s", payload["alert"], why
                        )
