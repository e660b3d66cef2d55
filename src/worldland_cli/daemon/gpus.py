"""Live GPU readings for /v1/gpus and /metrics, and the XID errors NVML reports.

Readings come from NVML through the host (:meth:`worldland_cli.host.Host.nvml_samples`), under
a deadline (NVML has no timeout of its own, and a wedged driver must not hang the API), and
are kept for a second so that a scrape and an API call together cost one NVML round. XIDs
only exist as NVML events, so a thread listens for them; a GPU or driver that cannot report
them simply has none.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Any

from worldland_cli.daemon.logs import EventLog
from worldland_cli.deadline import run_one
from worldland_cli.host import GpuSample, Host, NvmlUnavailable

NVML_DEADLINE = 5.0
CACHE_SECONDS = 1.0


@dataclass(frozen=True)
class Readings:
    """The GPUs now, or why they cannot be read."""

    gpus: tuple[GpuSample, ...]
    unavailable: str | None = None


@dataclass(frozen=True)
class Xid:
    last: int
    count: int


class GpuMonitor:
    def __init__(self, host: Host, log: EventLog) -> None:
        self.host = host
        self.log = log
        self._lock = threading.Lock()
        self._cached: tuple[float, Readings] | None = None
        self._xids: dict[str, Xid] = {}

    def readings(self) -> Readings:
        with self._lock:
            if self._cached is not None and time.monotonic() - self._cached[0] < CACHE_SECONDS:
                return self._cached[1]
        outcome = run_one(self.host.nvml_samples, NVML_DEADLINE, name="nvml")
        if not outcome.finished:
            readings = Readings((), f"NVML did not answer within {NVML_DEADLINE:g} s")
        elif outcome.error is not None:
            readings = Readings((), str(outcome.error) or type(outcome.error).__name__)
        else:
            readings = Readings(tuple(outcome.value or ()))
        with self._lock:
            self._cached = (time.monotonic(), readings)
        return readings

    def xids(self) -> dict[str, Xid]:
        with self._lock:
            return dict(self._xids)

    def listen(self, stopping: threading.Event) -> None:
        """Record XID events until ``stopping``; returns at once without NVML."""
        try:
            for event in self.host.nvml_xid_events(lambda: not stopping.is_set()):
                with self._lock:
                    seen = self._xids.get(event.uuid)
                    self._xids[event.uuid] = Xid(event.xid, (seen.count if seen else 0) + 1)
                self.log.warn("gpu.xid", gpu=event.index, uuid=event.uuid, xid=event.xid)
        except NvmlUnavailable as e:
            self.log.info("gpu.xid_unavailable", reason=str(e))

    def to_json(self) -> dict[str, Any]:
        """The /v1/gpus document."""
        readings = self.readings()
        xids = self.xids()
        if readings.unavailable is not None:
            return {"available": False, "reason": readings.unavailable, "gpus": []}
        return {
            "available": True,
            "gpus": [
                {
                    "index": g.index,
                    "uuid": g.uuid,
                    "name": g.name,
                    "pci_bus_id": g.pci_bus_id,
                    "utilization_gpu_pct": g.utilization_gpu_pct,
                    "utilization_memory_pct": g.utilization_memory_pct,
                    "memory_used_mib": g.memory_used_mib,
                    "memory_total_mib": g.memory_total_mib,
                    "temperature_c": g.temperature_c,
                    "power_w": g.power_w,
                    "ecc_sbe_volatile": g.ecc_sbe_volatile,
                    "ecc_dbe_volatile": g.ecc_dbe_volatile,
                    "xid_last": xids[g.uuid].last if g.uuid in xids else None,
                    "xid_count": xids[g.uuid].count if g.uuid in xids else 0,
                    "unreadable": dict(g.unreadable),
                }
                for g in readings.gpus
            ],
        }
