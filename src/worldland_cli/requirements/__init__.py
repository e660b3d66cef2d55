"""Every provider requirement, in the order a person would fix them.

The order follows the seed README's setup guide: driver, container toolkit, containerd,
kernel, Kubernetes, then what only exists after ``worldland join`` (the node registered with
the hub, VPN, kubeadm join, node daemon, and last the GPU visible to the scheduler).
Modules are imported here, not at package import, so ``worldland --help`` never pays for
them.

``joining`` is join's set: there, a post-join requirement not met yet is a failure for join
to fix, where doctor before join skips it (kubeadm's separate pre- and post-join checks).
"""

from __future__ import annotations

from worldland_cli.requirements.base import Finding, Requirement, Status

__all__ = ["Finding", "Requirement", "Status", "all_requirements"]


def all_requirements(cert_dir: str | None = None, *, joining: bool = False) -> list[Requirement]:
    """Every check, in order; ``cert_dir`` is the configured node certificate directory."""
    from worldland_cli.requirements import (
        containerd,
        daemon,
        gpu,
        hub,
        kernel,
        kube,
        kubeadm,
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
        hub.Registered(cert_dir, joining=joining),
        vpn.WireGuard(joining=joining),
        kubeadm.Joined(joining=joining),
        daemon.DaemonHealth(cert_dir=cert_dir, joining=joining),
        # Last of join's: the end-to-end proof, which also needs the cluster's device plugin.
        kube.GpuAllocatable(),
        system.Iommu(),
    ]
