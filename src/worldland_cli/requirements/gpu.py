"""NVIDIA driver: NVML answers and nvidia-smi does not hang."""

from __future__ import annotations

from worldland_cli.host import Host, NvmlUnavailable
from worldland_cli.requirements.base import Finding, Requirement

# The seed README's advice: 535 builds against GCP's Ubuntu kernels where newer branches fail.
DRIVER_REMEDY = (
    "sudo apt-get install -y ubuntu-drivers-common && "
    "sudo ubuntu-drivers install nvidia:535 && sudo reboot"
)
DRIVER_DOC = "docs/provider-guide.md#nvidia-driver"


class Driver(Requirement):
    id = "gpu.driver"
    title = "NVIDIA driver loaded (NVML)"

    def check(self, host: Host) -> Finding:
        try:
            snap = host.nvml()
        except NvmlUnavailable as e:
            return self.fail(f"NVML not available: {e}", DRIVER_REMEDY, DRIVER_DOC)
        if not snap.gpus:
            return self.fail(
                f"driver {snap.driver_version} loaded but NVML sees no GPU",
                "lspci -nn | grep -i nvidia   # is the card visible on the PCI bus?",
                DRIVER_DOC,
                driver_version=snap.driver_version,
            )
        gpus = [
            {"index": g.index, "name": g.name, "memory_mib": g.memory_total_mib, "uuid": g.uuid}
            for g in snap.gpus
        ]
        names = ", ".join(f"{g.name} ({g.memory_total_mib} MiB)" for g in snap.gpus)
        return self.ok(
            f"driver {snap.driver_version}, CUDA {snap.cuda_version}, {len(gpus)} GPU(s): {names}",
            driver_version=snap.driver_version,
            cuda_version=snap.cuda_version,
            gpus=gpus,
        )


class NvidiaSmi(Requirement):
    id = "gpu.nvidia-smi"
    title = "nvidia-smi answers"

    def check(self, host: Host) -> Finding:
        res = host.run(
            [
                "nvidia-smi",
                "--query-gpu=index,name,memory.total,driver_version",
                "--format=csv,noheader",
            ]
        )
        if res.not_found:
            return self.fail("nvidia-smi not found", DRIVER_REMEDY, DRIVER_DOC)
        if res.timed_out:
            return self.fail(
                f"nvidia-smi gave no answer within {res.duration:.1f}s: the driver may be wedged",
                "sudo dmesg | grep -iE 'NVRM|Xid'; sudo reboot",
                DRIVER_DOC,
            )
        if not res.ok:
            return self.fail(res.describe_failure(), DRIVER_REMEDY, DRIVER_DOC)
        rows = [line.strip() for line in res.stdout.splitlines() if line.strip()]
        return self.ok(
            f"answered in {res.duration * 1000:.0f} ms: " + "; ".join(rows),
            gpus=rows,
        )
