"""`diag gpu`: per-GPU health from NVML, XID events from the kernel log, the nvidia-smi summary.

NVML is the primary source because it answers per field (a consumer card lacks ECC, which
must not hide its temperature); ``nvidia-smi -q`` is kept as a summary because it is what
NVIDIA support asks for, and the kernel's ``NVRM: Xid`` lines are the only record of faults
that already happened (fallen off the bus, double-bit ECC) once the driver recovered.
"""

from __future__ import annotations

import re
import time
from typing import Any

from worldland_cli.diag.base import DiagReport, Finding, bounded, fail, ok, skip, warn
from worldland_cli.host import Host, NvmlUnavailable
from worldland_cli.requirements.gpu import DRIVER_REMEDY

# Xid codes that mean the GPU or its memory is damaged or gone, not just a crashed program.
SEVERE_XIDS = {
    48: "double-bit ECC error",
    63: "row remapping event",
    64: "row remap failure",
    74: "NVLink error",
    79: "GPU has fallen off the bus",
    92: "high single-bit ECC rate",
    94: "contained ECC error",
    95: "uncontained ECC error",
    119: "GSP timeout",
    120: "GSP error",
}
XID_RE = re.compile(r"NVRM: Xid \((?P<pci>[^)]*)\): (?P<code>\d+)(?:, (?P<rest>.*))?")
NVIDIA_LINE_RE = re.compile(r"NVRM|Xid|nvidia", re.IGNORECASE)
HOT_C = 85


def nvidia_kernel_lines(host: Host, timeout: float) -> tuple[list[str], str | None]:
    """The kernel log's NVIDIA lines, or why they could not be read (dmesg needs root)."""
    res = host.run(["dmesg"], timeout=timeout)
    if not res.ok:
        return [], res.describe_failure()
    return [ln for ln in res.stdout.splitlines() if NVIDIA_LINE_RE.search(ln)], None


def parse_xids(lines: list[str]) -> list[dict[str, Any]]:
    out = []
    for line in lines:
        m = XID_RE.search(line)
        if m:
            code = int(m.group("code"))
            out.append(
                {
                    "pci": m.group("pci"),
                    "xid": code,
                    "severe": code in SEVERE_XIDS,
                    "meaning": SEVERE_XIDS.get(code, ""),
                    "line": line.strip(),
                }
            )
    return out


def parse_smi_q(text: str) -> dict[str, Any]:
    """The parts of ``nvidia-smi -q`` support reads first: versions, and per GPU a few fields.

    The format is ``Key : Value`` lines indented by section (a section header is a bare
    line); GPUs start at ``GPU 0000...``.
    Throttle reasons that are ``Active`` are collected (the section was renamed from
    "Clocks Throttle Reasons" to "Clocks Event Reasons" in newer drivers; both are read).
    """
    summary: dict[str, Any] = {"gpus": []}
    gpu: dict[str, Any] | None = None
    section = ""
    for raw in text.splitlines():
        if not raw.strip() or raw.startswith("="):
            continue
        indent = len(raw) - len(raw.lstrip())
        line = raw.strip()
        if indent == 0 and line.startswith("GPU "):
            gpu = {"bus_id": line[4:], "active_clock_reasons": []}
            summary["gpus"].append(gpu)
            continue
        # "Key : Value"; a line without " : " opens a section ("Temperature").
        key, sep, value = (part.strip() for part in line.partition(" : "))
        if indent == 0 and sep:
            summary[key] = value
            continue
        if gpu is None:
            continue
        if not sep:
            section = line
            continue
        if indent <= 4:
            section = ""
            if key in ("Product Name", "Persistence Mode", "Performance State", "Serial Number"):
                gpu[key] = value
        elif section.startswith(("Clocks Throttle Reasons", "Clocks Event Reasons")):
            if value == "Active" and key != "Idle":
                gpu["active_clock_reasons"].append(key)
        elif key in ("GPU Current Temp", "Power Draw", "Average Power Draw"):
            gpu[key] = value
    return summary


def _value(v: Any) -> Any:
    return None if isinstance(v, dict) and "unavailable" in v else v


def _gpu_check(dev: dict[str, Any]) -> Finding:
    """One verdict per GPU from its NVML counters, worst problem first.

    Each remedy is shell (advice as a comment): diag prints them under "paste these blocks
    into a shell", and several warnings' remedies are one line each, so a comment cannot
    swallow the next command.
    """
    cid = f"gpu.{dev['index']}"
    name = dev.get("name") if isinstance(dev.get("name"), str) else "GPU"
    problems: list[tuple[bool, str, str | None]] = []  # (fatal, what, remedy)
    ecc = _value(dev.get("ecc_uncorrected_volatile"))
    if isinstance(ecc, int) and ecc > 0:
        problems.append(
            (
                True,
                f"{ecc} uncorrectable ECC error(s) since boot",
                "sudo reboot   # if they return, the card needs RMA",
            )
        )
    rows = _value(dev.get("remapped_rows"))
    if isinstance(rows, list | tuple) and len(rows) >= 4:
        if rows[3]:
            problems.append(
                (True, "row remapping failed", "# the card needs RMA: take the node off the market")
            )
        elif rows[2]:
            problems.append((False, "row remapping pending", "sudo reboot  # applies the remap"))
    pending = _value(dev.get("retired_pages_pending"))
    if pending:
        problems.append((False, "retired pages pending", "sudo reboot  # retires the pages"))
    temp = _value(dev.get("temperature_c"))
    if isinstance(temp, int) and temp >= HOT_C:
        problems.append(
            (
                False,
                f"running hot: {temp} C",
                "nvidia-smi -q -d TEMPERATURE   # check fans, airflow",
            )
        )
    width, width_max = _value(dev.get("pcie_width")), _value(dev.get("pcie_width_max"))
    if isinstance(width, int) and isinstance(width_max, int) and width < width_max:
        problems.append(
            (
                False,
                f"PCIe link x{width} of x{width_max}",
                "nvidia-smi -q | grep -A2 'Link Width'   # below its maximum: reseat the card",
            )
        )
    if _value(dev.get("persistence_mode")) == 0:
        problems.append((False, "persistence mode off", "sudo nvidia-smi -pm 1"))
    facts = []
    if isinstance(temp, int):
        facts.append(f"{temp} C")
    power = _value(dev.get("power_mw"))
    if isinstance(power, int):
        facts.append(f"{power / 1000:.0f} W")
    seen = f"{name}: " + ", ".join([p[1] for p in problems] or facts or ["no counters"])
    details = {k: v for k, v in dev.items() if k != "index"}
    if any(p[0] for p in problems):
        return fail(cid, seen, next(p[2] for p in problems if p[0]), **details)
    if problems:
        return warn(cid, seen, "\n".join(p[2] for p in problems if p[2]), **details)
    return ok(cid, seen, **details)


def probe_gpu(host: Host, timeout: float = 5.0) -> DiagReport:
    """Every GPU's health; a missing driver is one clear failing check, not a traceback."""
    start = time.monotonic()
    report = DiagReport("gpu")

    def driver() -> Finding:
        try:
            snap = host.nvml()
        except NvmlUnavailable as e:
            return fail("gpu.nvml", f"NVML not available: {e}", DRIVER_REMEDY)
        return ok(
            "gpu.nvml",
            f"driver {snap.driver_version}, CUDA {snap.cuda_version}, {len(snap.gpus)} GPU(s)",
            driver_version=snap.driver_version,
            cuda_version=snap.cuda_version,
            count=len(snap.gpus),
        )

    nvml = report.add(bounded("gpu.nvml", driver, timeout))
    if nvml.status.value == "ok":
        details: list[dict[str, Any]] = []

        def devices() -> Finding:
            details.extend(host.nvml_device_details())
            return ok("gpu.devices", f"{len(details)} GPU(s) read")

        got = bounded("gpu.devices", devices, timeout)
        if got.status.value == "ok":
            for dev in details:
                report.add(_gpu_check(dev))
        else:
            report.add(got)

    def xids() -> Finding:
        lines, why = nvidia_kernel_lines(host, timeout)
        if why:
            return skip("gpu.xid", f"kernel log not readable: {why}")
        events = parse_xids(lines)
        report.data["kernel_lines"] = lines[-200:]
        severe = [e for e in events if e["severe"]]
        if severe:
            last = severe[-1]
            return fail(
                "gpu.xid",
                f"{len(events)} Xid event(s); last severe: Xid {last['xid']} ({last['meaning']})",
                "sudo reboot   # if the Xid returns, the card or its PCIe slot needs service",
                events=events[-50:],
            )
        if events:
            codes = sorted({e["xid"] for e in events})
            return warn(
                "gpu.xid", f"{len(events)} Xid event(s), codes {codes}", None, events=events[-50:]
            )
        return ok("gpu.xid", "no Xid events in the kernel log")

    report.add(bounded("gpu.xid", xids, timeout + 1))

    def smi() -> Finding:
        res = host.run(["nvidia-smi", "-q"], timeout=timeout)
        if res.not_found:
            return fail("gpu.nvidia-smi", "nvidia-smi not found", DRIVER_REMEDY)
        if res.timed_out:
            return fail(
                "gpu.nvidia-smi",
                f"nvidia-smi -q gave no answer within {res.duration:.1f}s (timed out): "
                "the driver may be wedged",
                "sudo dmesg | grep -iE 'NVRM|Xid'; sudo reboot",
                timed_out=True,
            )
        if not res.ok:
            return fail("gpu.nvidia-smi", res.describe_failure(), DRIVER_REMEDY)
        summary = parse_smi_q(res.stdout)
        report.data["nvidia_smi_q"] = res.stdout
        throttled = [
            f"{g.get('bus_id')}: {', '.join(g['active_clock_reasons'])}"
            for g in summary["gpus"]
            if g["active_clock_reasons"]
        ]
        seen = (
            f"driver {summary.get('Driver Version', '?')}, CUDA {summary.get('CUDA Version', '?')}"
            f", {summary.get('Attached GPUs', len(summary['gpus']))} GPU(s)"
        )
        if throttled:
            return warn(
                "gpu.nvidia-smi",
                f"{seen}; clocks held back: {'; '.join(throttled)}",
                "nvidia-smi -q -d PERFORMANCE   # see why",
                summary=summary,
            )
        return ok("gpu.nvidia-smi", seen, summary=summary)

    report.add(bounded("gpu.nvidia-smi", smi, timeout + 1))
    report.duration_ms = int((time.monotonic() - start) * 1000)
    return report
