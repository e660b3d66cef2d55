"""Every provider requirement, in the order a person would fix them.

The order follows the seed README's setup guide: driver, container toolkit, containerd,
kernel, Kubernetes, then what only exists after ``worldland join`` (GPU visible to the
scheduler, VPN, node daemon). Modules are imported here, not at package import, so
``worldland --help`` never pays for them.
"""

from __future__ import annotations

from worldland_cli.requirements.base import Finding, Requirement, Status

__all__ = ["Finding", "Requirement", "Status", "all_requirements"]


def all_requirements(cert_dir: str | None = None) -> list[Requirement]:
    """Every check, in order; ``cert_dir`` is the configured node certificate directory."""
    from worldland_cli.requirements import (
        containerd,
        daemon,
        gpu,
        kernel,
        kube,
        system,
        toolkit,
        vpn,
    )

    return [
        gpu.Driver(),
        gpu.NvidiaSmi(),
        toolkit.NvidiaCtk(),
        containerd.Installed(),
        containerd.Running(),
        containerd.NvidiaRuntime(),
        containerd.SystemdCgroup(),
        kernel.Modules(),
        kernel.Sysctl(),
        system.Swap(),
        kube.Binaries(),
        kube.KubeletEnabled(),
        kube.GpuAllocatable(),
        vpn.WireGuard(),
        daemon.DaemonHealth(cert_dir=cert_dir),
        system.Iommu(),
    ]
