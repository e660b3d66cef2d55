"""/metrics in the Prometheus text format, on a plain-HTTP port bound to 127.0.0.1.

Prometheus scrapes it locally, so it is neither public nor behind TLS. GPU series use
dcgm-exporter's names and labels (``DCGM_FI_DEV_GPU_UTIL{gpu, UUID, pci_bus_id, device,
modelName, Hostname}``), so dashboards and alerts written for it work here; ECC counts are
gauges because the volatile counters restart with the driver. The daemon's own series start
with ``worldland_daemon_``. Everything is read at scrape time from the parts themselves, so a
value can never be stale or counted twice.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from worldland_cli import __version__
from worldland_cli.daemon.gpus import GpuMonitor
from worldland_cli.daemon.outbox import Outbox
from worldland_cli.daemon.status import DaemonStatus

if TYPE_CHECKING:
    from prometheus_client.registry import CollectorRegistry

# dcgm-exporter's field name, help, and the reading it comes from.
GPU_SERIES: tuple[tuple[str, str, str], ...] = (
    ("DCGM_FI_DEV_GPU_UTIL", "GPU utilization (in %).", "utilization_gpu_pct"),
    ("DCGM_FI_DEV_MEM_COPY_UTIL", "Memory utilization (in %).", "utilization_memory_pct"),
    ("DCGM_FI_DEV_FB_USED", "Framebuffer memory used (in MiB).", "memory_used_mib"),
    ("DCGM_FI_DEV_FB_FREE", "Framebuffer memory free (in MiB).", "memory_free_mib"),
    ("DCGM_FI_DEV_GPU_TEMP", "GPU temperature (in C).", "temperature_c"),
    ("DCGM_FI_DEV_POWER_USAGE", "Power draw (in W).", "power_w"),
    (
        "DCGM_FI_DEV_ECC_SBE_VOL_TOTAL",
        "Total number of single-bit volatile ECC errors.",
        "ecc_sbe_volatile",
    ),
    (
        "DCGM_FI_DEV_ECC_DBE_VOL_TOTAL",
        "Total number of double-bit volatile ECC errors.",
        "ecc_dbe_volatile",
    ),
    ("DCGM_FI_DEV_XID_ERRORS", "Value of the last XID error encountered.", "xid_last"),
)
GPU_LABELS = ["gpu", "UUID", "pci_bus_id", "device", "modelName", "Hostname"]


@dataclass(frozen=True)
class Sources:
    """Where the collector reads from at scrape time."""

    status: DaemonStatus
    outbox: Outbox
    gpus: GpuMonitor
    hostname: str
    open_intervals: Callable[[], int]
    watch_connected: Callable[[], bool]
    relists: Callable[[], int]
    certificate_expiry: Callable[[], float]


class DaemonCollector:
    """A prometheus_client collector over :class:`Sources`."""

    def __init__(self, sources: Sources) -> None:
        self.sources = sources

    def collect(self) -> Iterator[Any]:
        yield from self._daemon()
        yield from self._gpus()

    def _daemon(self) -> Iterator[Any]:
        from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

        src = self.sources
        status = src.status
        depth = src.outbox.depth()
        info = GaugeMetricFamily(
            "worldland_daemon_info", "The daemon's version and node.", labels=["version", "node_id"]
        )
        info.add_metric([__version__, status.node_id], 1)
        yield info
        yield CounterMetricFamily(
            "worldland_daemon_heartbeats_sent",
            "Heartbeats the hub acknowledged.",
            value=status.heartbeats_sent,
        )
        yield CounterMetricFamily(
            "worldland_daemon_heartbeats_failed",
            "Heartbeats that did not reach the hub or were refused.",
            value=status.heartbeats_failed,
        )
        yield GaugeMetricFamily(
            "worldland_daemon_hub_reachable",
            "1 when the last heartbeat reached the hub.",
            value=1 if status.hub_reachable else 0,
        )
        yield GaugeMetricFamily(
            "worldland_daemon_outbox_depth",
            "Usage events waiting for the hub's acknowledgement.",
            value=depth.events,
        )
        yield GaugeMetricFamily(
            "worldland_daemon_outbox_refused",
            "Waiting usage events the hub refused (kept and retried).",
            value=depth.refused,
        )
        oldest = 0.0 if depth.oldest_queued_at is None else time.time() - depth.oldest_queued_at
        yield GaugeMetricFamily(
            "worldland_daemon_outbox_oldest_age_seconds",
            "Age of the oldest waiting usage event (0 when none).",
            value=max(0.0, oldest),
        )
        yield CounterMetricFamily(
            "worldland_daemon_billed_seconds",
            "Seconds of pod GPU time the hub acknowledged since the daemon started.",
            value=status.billed_seconds,
        )
        yield GaugeMetricFamily(
            "worldland_daemon_open_intervals",
            "Pods being metered now.",
            value=src.open_intervals(),
        )
        yield GaugeMetricFamily(
            "worldland_daemon_watch_connected",
            "1 while the pod watch stream is open.",
            value=1 if src.watch_connected() else 0,
        )
        yield CounterMetricFamily(
            "worldland_daemon_watch_relists",
            "Full lists of the node's pods (start, and after a watch could not resume).",
            value=src.relists(),
        )
        yield GaugeMetricFamily(
            "worldland_daemon_certificate_expiry_timestamp_seconds",
            "When the node certificate being served expires (Unix time).",
            value=src.certificate_expiry(),
        )

    def _gpus(self) -> Iterator[Any]:
        from prometheus_client.core import GaugeMetricFamily

        readings = self.sources.gpus.readings()
        xids = self.sources.gpus.xids()
        families = {
            name: GaugeMetricFamily(name, help_text, labels=GPU_LABELS)
            for name, help_text, _ in GPU_SERIES
        }
        for gpu in readings.gpus:
            values: dict[str, float | None] = {
                "utilization_gpu_pct": gpu.utilization_gpu_pct,
                "utilization_memory_pct": gpu.utilization_memory_pct,
                "memory_used_mib": gpu.memory_used_mib,
                "memory_free_mib": (
                    None
                    if gpu.memory_total_mib is None or gpu.memory_used_mib is None
                    else gpu.memory_total_mib - gpu.memory_used_mib
                ),
                "temperature_c": gpu.temperature_c,
                "power_w": gpu.power_w,
                "ecc_sbe_volatile": gpu.ecc_sbe_volatile,
                "ecc_dbe_volatile": gpu.ecc_dbe_volatile,
                "xid_last": xids[gpu.uuid].last if gpu.uuid in xids else 0,
            }
            labels = [
                str(gpu.index),
                gpu.uuid,
                gpu.pci_bus_id,
                f"nvidia{gpu.index}",
                gpu.name,
                self.sources.hostname,
            ]
            for name, _, key in GPU_SERIES:
                value = values[key]
                if value is not None:
                    families[name].add_metric(labels, float(value))
        yield from (f for f in families.values() if f.samples)


def registry(sources: Sources) -> CollectorRegistry:
    from prometheus_client.registry import CollectorRegistry

    reg = CollectorRegistry(auto_describe=False)
    reg.register(DaemonCollector(sources))  # type: ignore[arg-type]
    return reg


def serve(reg: CollectorRegistry, address: tuple[str, int]) -> tuple[Any, Any]:
    """Start prometheus_client's own HTTP server; (server, thread)."""
    from prometheus_client import start_http_server

    return start_http_server(address[1], addr=address[0], registry=reg)
