"""What the daemon's parts report about themselves, in one place.

The heartbeat and the sender write here; /health, /metrics and the
logs read it. One lock, a few numbers: reading it never waits on the hub or the database.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field


@dataclass
class DaemonStatus:
    node_id: str
    started_at: float = field(default_factory=time.time)
    hub_reachable: bool | None = None  # None until the hub was first asked
    last_heartbeat: float | None = None
    last_hub_error: str | None = None
    heartbeats_sent: int = 0
    heartbeats_failed: int = 0
    billed_seconds: int = 0  # seconds of usage the hub acknowledged since start
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def heartbeat_ok(self, at: float) -> bool:
        """Record a heartbeat the hub took; whether the hub had been unreachable before."""
        with self._lock:
            was_down = self.hub_reachable is False
            self.hub_reachable = True
            self.last_heartbeat = at
            self.last_hub_error = None
            self.heartbeats_sent += 1
            return was_down

    def heartbeat_failed(self, error: str) -> None:
        with self._lock:
            self.hub_reachable = False
            self.last_hub_error = error
            self.heartbeats_failed += 1

    def billed(self, seconds: int) -> None:
        with self._lock:
            self.billed_seconds += seconds
