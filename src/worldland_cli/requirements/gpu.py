"""NVIDIA driver: NVML answers and nvidia-smi does not hang.

join installs the driver the seed's way (``ubuntu-drivers install nvidia:535``, the branch
from ``--driver``), then stops: the kernel module loads only at boot. Before the stop it
installs the resume unit (:mod:`worldland_cli.join.resume`), so join continues by itself
after the reboot. A driver that is installed but still not loaded after a reboot is a
person's to look at (Secure Boot, a failed module build); join does not loop rebooting.
"""

from __future__ import annotations

import posixpath

from worldland_cli.host import Host, NvmlUnavailable
from worldland_cli.join.actions import (
    Action,
    InstallDriver,
    InstallPackages,
    Manual,
    Reboot,
    dpkg_installed,
    state_dir,
)
from worldland_cli.join.resume import resume_actions
from worldland_cli.requirements.base import Finding, JoinSettings, Requirement, by_hand

# The seed README's advice: 535 builds against GCP's Ubuntu kernels where newer branches fail.
DRIVER_REMEDY = (
    "sudo apt-get install -y ubuntu-drivers-common && "
    "sudo ubuntu-drivers install nvidia:535 && sudo reboot"
)
DRIVER_DOC = "provider-guide#nvidia-driver"
# update-notifier's mark, set by the postinst of packages that need a reboot (kernel modules).
REBOOT_REQUIRED = "/var/run/reboot-required"
# ubuntu-drivers turns on KMS for branches >= 470 by writing this file before apt runs.
NVIDIA_KMS = "/lib/modprobe.d/nvidia-kms.conf"
NOT_LOADED = (
    "{package} is installed but its kernel module is not loaded: reboot if you have not since "
    "it was installed; otherwise look for why with `sudo dmesg | grep -iE 'nvidia|NVRM'` "
    "(with Secure Boot on, `mokutil --sb-state`, the module's key must be enrolled)"
)


def driver_plan(host: Host, settings: JoinSettings) -> list[Action]:
    """Install the driver branch if it is not, then stop for the reboot that loads it."""
    package = f"nvidia-driver-{settings.driver}"
    installed = dpkg_installed(host, package)
    if installed and not host.exists(REBOOT_REQUIRED):
        return [Manual(NOT_LOADED.format(package=package))]
    actions: list[Action] = []
    if not installed:
        if host.which("ubuntu-drivers") is None:
            actions.append(InstallPackages(("ubuntu-drivers-common",), update=True))
        listing = posixpath.join(state_dir(), "ubuntu-drivers.packages")
        actions.append(
            InstallDriver(f"nvidia:{settings.driver}", package, listing, files=(NVIDIA_KMS,))
        )
    reason = f"the NVIDIA {settings.driver} driver's kernel module loads at boot"
    return [*actions, *resume_actions(host, settings), Reboot(reason)]


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

    def plan(self, host: Host, finding: Finding, settings: JoinSettings) -> list[Action]:
        if "driver_version" in finding.details:  # loaded, but NVML sees no GPU
            return [by_hand(finding, finding.observed)]
        return driver_plan(host, settings)


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
                wedged=True,
            )
        if not res.ok:
            return self.fail(res.describe_failure(), DRIVER_REMEDY, DRIVER_DOC)
        rows = [line.strip() for line in res.stdout.splitlines() if line.strip()]
        return self.ok(
            f"answered in {res.duration * 1000:.0f} ms: " + "; ".join(rows),
            gpus=rows,
        )

    def plan(self, host: Host, finding: Finding, settings: JoinSettings) -> list[Action]:
        if finding.details.get("wedged"):
            return [by_hand(finding, finding.observed)]
        return driver_plan(host, settings)
