"""Kernel, swap and IOMMU checks: this machine's real /proc and /sys, then synthetic roots."""

from __future__ import annotations

import shlex
import subprocess
from pathlib import Path

from tests.doctor.hosts import make_ready_root, write
from worldland_cli.host import Host
from worldland_cli.requirements.base import Status
from worldland_cli.requirements.kernel import MODULES, SYSCTLS, Modules, Sysctl
from worldland_cli.requirements.system import FSTAB_SWAP_SED, Iommu, Swap


def test_modules_agree_with_the_real_proc_modules(host: Host) -> None:
    proc_modules = Path("/proc/modules")  # absent in some sandboxes (gVisor)
    text = proc_modules.read_text() if proc_modules.exists() else ""
    listed = {line.split()[0] for line in text.splitlines() if line}
    builtin = {m for m in MODULES if Path(f"/sys/module/{m}").is_dir()}
    missing = [m for m in MODULES if m not in listed | builtin]
    finding = Modules().check(host)
    assert finding.details["loaded"] == [m for m in MODULES if m not in missing]
    if missing:
        assert finding.status is Status.FAIL
        assert f"sudo modprobe -a {' '.join(missing)}" in (finding.remedy or "")
    else:
        # Nothing is persisted under the temporary root's /etc.
        assert finding.status is Status.WARN


def test_sysctl_reads_the_real_values(host: Host) -> None:
    finding = Sysctl().check(host)
    for key in SYSCTLS:
        real = Path("/proc/sys/" + key.replace(".", "/"))
        expected = real.read_text().strip() if real.exists() else None
        assert finding.details["values"][key] == expected
    healthy = all(v == "1" for v in finding.details["values"].values())
    assert (finding.status is Status.OK) == healthy


def test_swap_agrees_with_the_real_proc_swaps(host: Host) -> None:
    active = len(Path("/proc/swaps").read_text().splitlines()) > 1
    finding = Swap().check(host)
    assert finding.status is (Status.FAIL if active else Status.OK)


def test_ready_root_passes_kernel_and_swap(tmp_path: Path) -> None:
    host = Host(make_ready_root(tmp_path), search_path="")
    for req in (Modules(), Sysctl(), Swap()):
        assert req.check(host).status is Status.OK, req.id


def test_loaded_but_not_persisted_warns(tmp_path: Path) -> None:
    root = make_ready_root(tmp_path)
    (root / "etc/modules-load.d/k8s.conf").write_text("overlay\n# br_netfilter\n")
    finding = Modules().check(Host(root, search_path=""))
    assert finding.status is Status.WARN
    assert "br_netfilter" in finding.observed
    assert "/etc/modules-load.d/k8s.conf" in (finding.remedy or "")


def test_modules_load_d_is_read_as_systemd_reads_it(tmp_path: Path) -> None:
    """'-' and '_' are one module name to modprobe; an inline '#' is part of the name, not a
    comment; an /etc file masks the packaged file of the same name."""
    root = make_ready_root(tmp_path)
    conf = root / "etc/modules-load.d/k8s.conf"
    host = Host(root, search_path="")
    conf.write_text("overlay\nbr-netfilter\n")
    assert Modules().check(host).status is Status.OK

    conf.write_text("overlay\nbr_netfilter   # for kube-proxy\n")
    trailing = Modules().check(host)
    assert trailing.status is Status.WARN
    assert "br_netfilter" in trailing.observed

    conf.unlink()
    write(root, "/usr/lib/modules-load.d/k8s.conf", "overlay\nbr_netfilter\n")
    assert Modules().check(host).status is Status.OK
    write(root, "/etc/modules-load.d/k8s.conf", "")  # the admin masks the packaged file
    masked = Modules().check(host)
    assert masked.status is Status.WARN
    assert masked.details["persisted"] == {}


def test_missing_br_netfilter_fails_modules_and_sysctl(tmp_path: Path) -> None:
    root = make_ready_root(tmp_path)
    write(root, "/proc/modules", "overlay 151552 0 - Live 0x0000000000000000\n")
    for name in ("bridge-nf-call-iptables", "bridge-nf-call-ip6tables"):
        (root / "proc/sys/net/bridge" / name).unlink()
    write(root, "/proc/sys/net/ipv4/ip_forward", "0\n")
    host = Host(root, search_path="")
    modules = Modules().check(host)
    assert modules.status is Status.FAIL
    assert modules.remedy == "sudo modprobe -a br_netfilter"
    sysctl = Sysctl().check(host)
    assert sysctl.status is Status.FAIL
    assert "net.ipv4.ip_forward = 0" in sysctl.observed
    assert (sysctl.remedy or "").startswith("sudo modprobe br_netfilter && ")
    assert "sudo sysctl --system" in (sysctl.remedy or "")


def test_active_swap_fails_with_swapoff(tmp_path: Path) -> None:
    root = make_ready_root(tmp_path)
    write(
        root,
        "/proc/swaps",
        "Filename\t\t\t\tType\t\tSize\t\tUsed\t\tPriority\n"
        "/swap.img                               file\t\t2097148\t\t0\t\t-2\n",
    )
    finding = Swap().check(Host(root, search_path=""))
    assert finding.status is Status.FAIL
    assert "/swap.img" in finding.observed
    assert finding.remedy is not None and finding.remedy.startswith("sudo swapoff -a && sudo sed")


FSTAB = (
    "# <file system> <mount point> <type> <options> <dump> <pass>\n"
    "UUID=1234 / ext4 errors=remount-ro 0 1\n"
    "/swap.img none swap sw 0 0\n"
    "/dev/sdb2\tnone\tswap\tsw\t0\t0\n"
    "#/old.swap none swap sw 0 0\n"
    "/srv/swapdata /mnt/swap ext4 defaults 0 2\n"
)


def test_the_swap_remedy_comments_out_every_swap_line_of_fstab(tmp_path: Path) -> None:
    """Run the remedy's own sed (with real GNU sed) on an fstab with space and tab fields."""
    fstab = tmp_path / "fstab"
    fstab.write_text(FSTAB)
    command = shlex.split(FSTAB_SWAP_SED.replace("/etc/fstab", str(fstab)))
    subprocess.run(command, check=True)
    lines = fstab.read_text().splitlines()
    assert lines[2] == "#/swap.img none swap sw 0 0"
    assert lines[3] == "#/dev/sdb2\tnone\tswap\tsw\t0\t0"
    assert lines[4] == "#/old.swap none swap sw 0 0"  # already commented: left as it was
    assert lines[1] == "UUID=1234 / ext4 errors=remount-ro 0 1"
    assert lines[5] == "/srv/swapdata /mnt/swap ext4 defaults 0 2"  # 'swap' in a path only


def test_iommu_is_information_only(tmp_path: Path, host: Host) -> None:
    assert Iommu().check(host).status in (Status.OK, Status.SKIP)
    root = make_ready_root(tmp_path / "ready")
    off = Iommu().check(Host(root, search_path=""))
    assert off.status is Status.SKIP
    for group in ("0", "1", "2"):
        (root / "sys/kernel/iommu_groups" / group).mkdir(parents=True)
    (root / "sys/class/iommu/dmar0").mkdir(parents=True)
    write(root, "/proc/cmdline", "root=/dev/sda1 ro intel_iommu=on iommu=pt\n")
    on = Iommu().check(Host(root, search_path=""))
    assert on.status is Status.OK
    assert on.observed == "IOMMU enabled: 3 group(s), kernel flags intel_iommu=on iommu=pt"
