"""`diag gpu` with NVML faked at the pynvml boundary and fake nvidia-smi / dmesg executables."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pynvml
import pytest
from typer.testing import CliRunner

from tests.diag.conftest import ToolMaker
from worldland_cli.diag.base import Status
from worldland_cli.diag.gpu import parse_smi_q, probe_gpu
from worldland_cli.host import Host
from worldland_cli.main import app

SMI_Q = """
==============NVSMI LOG==============

Timestamp                                 : Thu May  2 10:00:00 2024
Driver Version                            : 535.161.08
CUDA Version                              : 12.2

Attached GPUs                             : 1
GPU 00000000:00:04.0
    Product Name                          : Tesla T4
    Product Brand                         : NVIDIA
    Persistence Mode                      : Enabled
    Serial Number                         : 1323120012345
    Performance State                     : P0
    Clocks Event Reasons
        Idle                              : Not Active
        Applications Clocks Setting       : Not Active
        SW Power Cap                      : Active
        HW Slowdown                       : Not Active
        SW Thermal Slowdown               : Not Active
    Temperature
        GPU Current Temp                  : 71 C
        GPU Shutdown Temp                 : 96 C
    GPU Power Readings
        Power Draw                        : 69.52 W
        Current Power Limit               : 70.00 W
"""


def install_nvml(monkeypatch: pytest.MonkeyPatch, **overrides: Any) -> None:
    """One healthy T4 as NVML would describe it; overrides replace single calls."""

    def unsupported(*_a: Any) -> Any:
        raise pynvml.NVMLError(pynvml.NVML_ERROR_NOT_SUPPORTED)

    calls: dict[str, Any] = {
        "nvmlInit": lambda: None,
        "nvmlShutdown": lambda: None,
        "nvmlSystemGetDriverVersion": lambda: "535.161.08",
        "nvmlSystemGetCudaDriverVersion": lambda: 12020,
        "nvmlDeviceGetCount": lambda: 1,
        "nvmlDeviceGetHandleByIndex": lambda i: f"h{i}",
        "nvmlDeviceGetName": lambda h: "Tesla T4",
        "nvmlDeviceGetUUID": lambda h: "GPU-5c1f2a0e-0000-1111-2222-333344445555",
        "nvmlDeviceGetMemoryInfo": lambda h: SimpleNamespace(total=16 * 1024**3),
        "nvmlDeviceGetPciInfo": lambda h: SimpleNamespace(busId="00000000:00:04.0"),
        "nvmlDeviceGetPersistenceMode": lambda h: 1,
        "nvmlDeviceGetTemperature": lambda h, s: 45,
        "nvmlDeviceGetPowerUsage": lambda h: 27000,
        "nvmlDeviceGetEnforcedPowerLimit": lambda h: 70000,
        "nvmlDeviceGetClockInfo": lambda h, c: 1590,
        "nvmlDeviceGetCurrPcieLinkGeneration": lambda h: 3,
        "nvmlDeviceGetCurrPcieLinkWidth": lambda h: 16,
        "nvmlDeviceGetMaxPcieLinkGeneration": lambda h: 3,
        "nvmlDeviceGetMaxPcieLinkWidth": lambda h: 16,
        "nvmlDeviceGetTotalEccErrors": lambda h, t, c: 0,
        "nvmlDeviceGetRetiredPagesPendingStatus": lambda h: 0,
        "nvmlDeviceGetRemappedRows": unsupported,  # a T4 has no row remapping
    }
    calls.update(overrides)
    for name, fn in calls.items():
        monkeypatch.setattr(pynvml, name, fn)


@pytest.fixture
def tools(tool: ToolMaker, tmp_path: Path) -> None:
    (tmp_path / "smi.txt").write_text(SMI_Q)
    tool("nvidia-smi", f'cat "{tmp_path / "smi.txt"}"')
    tool("dmesg", 'echo "[    5.101010] nvidia: loading out-of-tree module taints kernel."')


def statuses(report: Any) -> dict[str, Status]:
    return {c.id: c.status for c in report.checks}


def test_healthy_gpu_reads_every_counter(
    host: Host, tools: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    install_nvml(monkeypatch)
    report = probe_gpu(host, 2.0)
    s = statuses(report)
    assert s["gpu.nvml"] is Status.OK and s["gpu.0"] is Status.OK and s["gpu.xid"] is Status.OK
    gpu0 = next(c for c in report.checks if c.id == "gpu.0")
    assert gpu0.details["remapped_rows"] == {"unavailable": "Not Supported"}
    assert gpu0.details["pcie_width"] == 16
    # nvidia-smi -q shows the power cap holding the clocks back: a warning with the summary.
    smi = next(c for c in report.checks if c.id == "gpu.nvidia-smi")
    assert smi.status is Status.WARN and "SW Power Cap" in smi.observed
    assert smi.details["summary"]["Driver Version"] == "535.161.08"


def test_ecc_errors_and_severe_xid_fail(
    host: Host, tool: ToolMaker, tools: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    install_nvml(
        monkeypatch,
        nvmlDeviceGetTotalEccErrors=lambda h, t, c: 2 if t == 1 else 0,
        nvmlDeviceGetCurrPcieLinkWidth=lambda h: 8,
    )
    tool(
        "dmesg",
        "echo '[ 8121.4] NVRM: Xid (PCI:0000:00:04): 79, pid=2231, name=python3, "
        "GPU has fallen off the bus.'",
    )
    report = probe_gpu(host, 2.0)
    by_id = {c.id: c for c in report.checks}
    assert by_id["gpu.0"].status is Status.FAIL
    assert "2 uncorrectable ECC" in by_id["gpu.0"].observed
    assert "PCIe link x8 of x16" in by_id["gpu.0"].observed
    assert (
        by_id["gpu.xid"].status is Status.FAIL and "fallen off the bus" in by_id["gpu.xid"].observed
    )
    # Pasted, the fix reboots and nothing else runs: the advice is a comment.
    assert by_id["gpu.xid"].remedy == (
        "sudo reboot   # if the Xid returns, the card or its PCIe slot needs service"
    )


def test_several_warnings_are_one_shell_line_each(
    host: Host, tools: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    install_nvml(
        monkeypatch,
        nvmlDeviceGetPersistenceMode=lambda h: 0,
        nvmlDeviceGetTemperature=lambda h, s: 88,
        nvmlDeviceGetCurrPcieLinkWidth=lambda h: 8,
    )
    gpu0 = next(c for c in probe_gpu(host, 2.0).checks if c.id == "gpu.0")
    assert gpu0.status is Status.WARN
    # Pasted as printed: each command runs, and no comment swallows the one after it.
    assert (gpu0.remedy or "").splitlines() == [
        "nvidia-smi -q -d TEMPERATURE   # check fans, airflow",
        "nvidia-smi -q | grep -A2 'Link Width'   # below its maximum: reseat the card",
        "sudo nvidia-smi -pm 1",
    ]


def test_no_nvml_is_a_clear_failure_and_exit_1(
    root: Path, bindir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_lib() -> None:
        raise pynvml.NVMLError(pynvml.NVML_ERROR_LIBRARY_NOT_FOUND)

    install_nvml(monkeypatch, nvmlInit=no_lib)
    monkeypatch.setenv("PATH", f"{bindir}:/usr/bin:/bin")
    res = CliRunner().invoke(app, ["diag", "gpu", "--root", str(root), "--json"])
    assert res.exit_code == 1
    doc = json.loads(res.stdout)
    nvml = doc["checks"][0]
    assert nvml["id"] == "gpu.nvml" and nvml["status"] == "fail"
    assert "NVML not available" in nvml["observed"] and "nvidia:535" in nvml["remedy"]
    assert not any(c["id"] == "gpu.0" for c in doc["checks"])
    # No driver fails NVML and nvidia-smi alike: their one fix is printed once, for both.
    text = CliRunner().invoke(app, ["diag", "gpu", "--root", str(root)]).stdout
    assert "# 1. gpu.nvml, gpu.nvidia-smi: NVML not available" in text
    assert text.count("ubuntu-drivers install nvidia:535") == 1 and "# 2." not in text


def test_a_wedged_driver_is_cut_by_the_timeout(
    host: Host, tool: ToolMaker, monkeypatch: pytest.MonkeyPatch
) -> None:
    install_nvml(monkeypatch, nvmlDeviceGetCount=lambda: __import__("time").sleep(30) or 1)
    tool("nvidia-smi", "sleep 30")
    report = probe_gpu(host, 0.3)
    by_id = {c.id: c for c in report.checks}
    # NVML has no timeout of its own: the step guard abandons it.
    assert by_id["gpu.nvml"].timed_out and "timed out" in by_id["gpu.nvml"].observed
    smi = by_id["gpu.nvidia-smi"]
    assert smi.status is Status.FAIL and "timed out" in smi.observed


def test_parse_smi_q_reads_the_older_throttle_section_name() -> None:
    old = SMI_Q.replace("Clocks Event Reasons", "Clocks Throttle Reasons")
    gpu = parse_smi_q(old)["gpus"][0]
    assert gpu["Product Name"] == "Tesla T4" and gpu["active_clock_reasons"] == ["SW Power Cap"]
    assert gpu["GPU Current Temp"] == "71 C"
