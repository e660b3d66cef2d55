"""GPU readings for /v1/gpus and /metrics, from NVML faked at the pynvml boundary.

Two GPUs as NVML reports them: an H100 with every counter, and one whose ECC counters and
XID events NVML refuses (NotSupported), as consumer cards do. The metrics are read back
through prometheus_client's own parser under dcgm-exporter's names and labels.
"""

from __future__ import annotations

import io
import threading
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pynvml
import pytest
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families
from pytest_mock import MockerFixture

from tests.support.daemon import wait_for
from worldland_cli.daemon.gpus import GpuMonitor
from worldland_cli.daemon.logs import EventLog
from worldland_cli.daemon.metrics import Sources, registry
from worldland_cli.daemon.outbox import Outbox
from worldland_cli.daemon.status import DaemonStatus
from worldland_cli.host import Host

NOT_SUPPORTED = pynvml.NVML_ERROR_NOT_SUPPORTED


@pytest.fixture
def two_gpus(mocker: MockerFixture) -> None:
    def ecc(handle: str, kind: int, counter: int) -> int:
        if handle == "h1":
            raise pynvml.NVMLError(NOT_SUPPORTED)
        return 3 if kind == pynvml.NVML_MEMORY_ERROR_TYPE_CORRECTED else 0

    def register(handle: str, kinds: int, events: Any) -> None:
        if handle == "h1":
            raise pynvml.NVMLError(NOT_SUPPORTED)

    waits = iter([SimpleNamespace(device="h0", eventData=79)])

    def wait(events: Any, timeout_ms: int) -> Any:
        try:
            return next(waits)
        except StopIteration:
            raise pynvml.NVMLError(pynvml.NVML_ERROR_TIMEOUT) from None

    for name in ("nvmlInit", "nvmlShutdown", "nvmlEventSetFree"):
        mocker.patch(f"pynvml.{name}")
    answers = {
        "nvmlDeviceGetCount": lambda: 2,
        "nvmlDeviceGetHandleByIndex": lambda i: f"h{i}",
        "nvmlDeviceGetIndex": lambda h: int(h[1:]),
        "nvmlDeviceGetUUID": lambda h: f"GPU-{h}",
        "nvmlDeviceGetName": lambda h: "NVIDIA H100 80GB HBM3",
        "nvmlDeviceGetPciInfo": lambda h: SimpleNamespace(busId=f"00000000:0{h[1]}:00.0"),
        "nvmlDeviceGetUtilizationRates": lambda h: SimpleNamespace(gpu=87, memory=41),
        "nvmlDeviceGetMemoryInfo": lambda h: SimpleNamespace(total=80 << 30, used=30 << 30),
        "nvmlDeviceGetTemperature": lambda h, sensor: 64,
        "nvmlDeviceGetPowerUsage": lambda h: 312_500,
        "nvmlDeviceGetTotalEccErrors": ecc,
        "nvmlEventSetCreate": lambda: "events",
        "nvmlDeviceRegisterEvents": register,
        "nvmlEventSetWait": wait,
    }
    for name, answer in answers.items():
        mocker.patch(f"pynvml.{name}", side_effect=answer)


def listened(monitor: GpuMonitor) -> None:
    stopping = threading.Event()
    thread = threading.Thread(target=monitor.listen, args=(stopping,), daemon=True)
    thread.start()
    wait_for(lambda: monitor.xids() != {}, timeout=5)
    stopping.set()
    thread.join(5)


def test_v1_gpus_reports_each_reading_or_why_not(two_gpus: None) -> None:
    monitor = GpuMonitor(Host(), EventLog(stream=io.StringIO()))
    listened(monitor)
    doc = monitor.to_json()
    assert doc["available"] is True
    first, second = doc["gpus"]
    assert first["unreadable"] == {}
    assert (first["utilization_gpu_pct"], first["memory_used_mib"], first["power_w"]) == (
        87,
        30 * 1024,
        312.5,
    )
    assert (first["ecc_sbe_volatile"], first["xid_last"], first["xid_count"]) == (3, 79, 1)
    assert second["ecc_sbe_volatile"] is None
    assert set(second["unreadable"]) == {"ecc_sbe", "ecc_dbe"}
    assert second["xid_last"] is None


def test_metrics_use_dcgm_exporter_names_and_labels(two_gpus: None, tmp_path: Path) -> None:
    monitor = GpuMonitor(Host(), EventLog(stream=io.StringIO()))
    listened(monitor)
    outbox = Outbox(Host(), str(tmp_path / "outbox.sqlite3"), "node-1")
    sources = Sources(
        status=DaemonStatus("node-1"),
        outbox=outbox,
        gpus=monitor,
        hostname="gpu-node-1",
        open_intervals=lambda: 0,
        watch_connected=lambda: True,
        relists=lambda: 1,
        certificate_expiry=lambda: 1.9e9,
    )
    text = generate_latest(registry(sources)).decode()
    samples = {
        (s.name, s.labels.get("gpu")): s
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }
    util = samples[("DCGM_FI_DEV_GPU_UTIL", "0")]
    assert util.value == 87
    assert util.labels == {
        "gpu": "0",
        "UUID": "GPU-h0",
        "pci_bus_id": "00000000:00:00.0",
        "device": "nvidia0",
        "modelName": "NVIDIA H100 80GB HBM3",
        "Hostname": "gpu-node-1",
    }
    assert samples[("DCGM_FI_DEV_FB_FREE", "1")].value == 50 * 1024
    assert samples[("DCGM_FI_DEV_POWER_USAGE", "0")].value == 312.5
    assert samples[("DCGM_FI_DEV_XID_ERRORS", "0")].value == 79
    assert ("DCGM_FI_DEV_ECC_SBE_VOL_TOTAL", "0") in samples
    assert ("DCGM_FI_DEV_ECC_SBE_VOL_TOTAL", "1") not in samples  # unknown is not zero
    assert samples[("worldland_daemon_watch_connected", None)].value == 1
    outbox.close()
