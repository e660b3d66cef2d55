"""Host-wide settings: swap (kubelet refuses to start with it) and IOMMU (information only)."""

from __future__ import annotations

import re

from worldland_cli.host import Host
from worldland_cli.join.actions import Action, RunCommand, WriteFile, sha256_text
from worldland_cli.requirements.base import Finding, JoinSettings, Requirement

SWAP_DOC = "provider-guide#swap"
# Comments out every active fstab line whose type field is swap, whether the fields are
# separated by spaces or tabs (the seed's '/ swap /' misses tab-separated lines).
FSTAB_SWAP_SED = r"sed -i -E '/^[^#]\S*\s+\S+\s+swap\s/ s/^/#/' /etc/fstab"
SWAP_REMEDY = f"sudo swapoff -a && sudo {FSTAB_SWAP_SED}"
IOMMU_FLAGS = ("intel_iommu=on", "amd_iommu=on", "iommu=pt", "amd_iommu=pt")
FSTAB = "/etc/fstab"
_FSTAB_SWAP = re.compile(r"^[^#\s]\S*\s+\S+\s+swap(\s|$)")


def fstab_without_swap(text: str) -> str:
    """fstab with every active swap line commented out (what FSTAB_SWAP_SED does)."""
    return "".join(
        "#" + line if _FSTAB_SWAP.match(line) else line for line in text.splitlines(keepends=True)
    )


def active_swaps(host: Host) -> list[dict[str, str]]:
    """Rows of /proc/swaps below its "Filename Type Size Used Priority" header."""
    text = host.read_text("/proc/swaps") or ""
    rows = []
    for line in text.splitlines()[1:]:
        parts = line.split()
        if len(parts) >= 3:
            rows.append({"filename": parts[0], "type": parts[1], "size_kib": parts[2]})
    return rows


class Swap(Requirement):
    id = "system.swap"
    title = "swap is off"

    def check(self, host: Host) -> Finding:
        if host.read_text("/proc/swaps") is None:
            return self.skip("/proc/swaps not readable (is /proc mounted under the root?)")
        swaps = active_swaps(host)
        if swaps:
            names = ", ".join(f"{s['filename']} ({s['size_kib']} KiB)" for s in swaps)
            return self.fail(
                f"active swap: {names}; kubelet will not start", SWAP_REMEDY, SWAP_DOC, swaps=swaps
            )
        fstab = host.read_text(FSTAB) or ""
        if fstab_without_swap(fstab) != fstab:
            return self.fail(
                "swap is off, but /etc/fstab turns it on at boot: kubelet will not start after "
                "a reboot",
                f"sudo {FSTAB_SWAP_SED}",
                SWAP_DOC,
            )
        return self.ok("no active swap, none in /etc/fstab")

    def plan(self, host: Host, finding: Finding, settings: JoinSettings) -> list[Action]:
        actions: list[Action] = []
        if active_swaps(host):
            actions.append(RunCommand(("swapoff", "-a"), summary="turn swap off now"))
        fstab = host.read_text(FSTAB)
        if fstab is not None and fstab_without_swap(fstab) != fstab:
            edited = fstab_without_swap(fstab)
            actions.append(WriteFile(FSTAB, edited, before=sha256_text(fstab)))
        return actions


class Iommu(Requirement):
    """Only GPU-passthrough labs (vfio) need it; renting works without, so it never fails."""

    id = "system.iommu"
    title = "IOMMU (information for passthrough labs)"

    def check(self, host: Host) -> Finding:
        units = host.listdir("/sys/class/iommu")
        groups = host.listdir("/sys/kernel/iommu_groups")
        cmdline = (host.read_text("/proc/cmdline") or "").split()
        flags = [f for f in cmdline if f in IOMMU_FLAGS]
        details = {"iommu_units": units, "groups": len(groups), "cmdline_flags": flags}
        if units or groups:
            return self.ok(
                f"IOMMU enabled: {len(groups)} group(s)"
                + (f", kernel flags {' '.join(flags)}" if flags else ""),
                **details,
            )
        return self.skip(
            "IOMMU not enabled (only GPU passthrough labs need it; "
            "enable with intel_iommu=on or amd_iommu=on on the kernel command line)",
            **details,
        )
