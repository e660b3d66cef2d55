"""The fakes behind the package steps answer as the real tools do (tests/support/fakes_gpu.py,
fakes_apt.py), so a join test that passes against them means something."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.join.conftest import FakeHost
from tests.support import fakes_apt, fakes_gpu
from tests.support.fakebin import NVIDIA_SMI_QUERY

K8S = "https://pkgs.k8s.io/core:/stable:/v1.29/deb"


def run(fake: FakeHost, *argv: str) -> subprocess.CompletedProcess[str]:
    """A tool as join runs it: by name, on the PATH of fakes (installed ones included)."""
    return subprocess.run([str(fake.fakes / argv[0]), *argv[1:]], capture_output=True,
                          text=True, env=fake.host.env, check=False)  # fmt: skip


def test_a_tool_a_plugin_registers_runs_through_its_wrapper(fake: FakeHost) -> None:
    url = "https://nvidia.github.io/libnvidia-container/gpgkey"
    done = run(fake, "curl", "-fsSL", "--create-dirs", "-o", "/tmp/k", url)
    assert done.returncode == 0, done.stderr
    assert (fake.root / "tmp/k").read_bytes() == fakes_apt.key("libnvidia-container.gpgkey")


def test_curl_fails_as_curl_does_for_what_is_not_served(fake: FakeHost) -> None:
    missing = run(fake, "curl", "-fsSL", "--create-dirs", "-o", "/k", f"{K8S}/Nope.key")
    assert (missing.returncode, missing.stderr) == (
        22, "curl: (22) The requested URL returned error: 404\n"
    )  # fmt: skip
    nowhere = run(fake, "curl", "-fsSL", "--create-dirs", "-o", "/k", "https://x.invalid/k")
    assert (nowhere.returncode, nowhere.stderr) == (
        6, "curl: (6) Could not resolve host: x.invalid\n"
    )  # fmt: skip
    assert not (fake.root / "k").exists()


@pytest.mark.skipif(not Path(fakes_apt.REAL_GPG).exists(), reason="no gpg on this machine")
def test_the_fallback_dearmor_writes_what_gpg_writes(tmp_path: Path) -> None:
    for name in ("libnvidia-container.gpgkey", "kubernetes-Release.key"):
        out = tmp_path / f"{name}.gpg"
        subprocess.run([fakes_apt.REAL_GPG, "--batch", "--yes", "--dearmor", "-o", str(out),
                        str(fakes_apt.KEYS / name)], check=True)  # fmt: skip
        assert fakes_apt.dearmor(fakes_apt.key(name)) == out.read_bytes()


def test_apt_installs_a_repository_package_only_from_a_signed_fetched_repository(
    fake: FakeHost,
) -> None:
    fakes_gpu.kube_repository(fake.root, keyring=fakes_apt.key("kubernetes-Release.key"))
    armored = run(fake, "apt-get", "update", "-qq")  # an armored key under a .gpg name
    assert armored.returncode == 100
    assert f"NO_PUBKEY {fakes_gpu.KUBE_KEY_ID}" in armored.stderr
    assert f"E: The repository '{K8S}  InRelease' is not signed." in armored.stderr
    unlocated = run(fake, "apt-get", "install", "-y", "kubelet")
    assert (unlocated.returncode, unlocated.stderr) == (
        100, "E: Unable to locate package kubelet\n"
    )  # fmt: skip
    fakes_gpu.kube_repository(fake.root)
    assert run(fake, "apt-get", "update", "-qq").returncode == 0
    assert run(fake, "apt-get", "install", "-y", "kubelet").returncode == 0
    assert run(fake, "kubelet", "--version").stdout == "Kubernetes v1.29.3\n"


def test_ubuntu_drivers_installs_marks_the_reboot_and_lists_what_it_installed(
    fake: FakeHost,
) -> None:
    fakes_apt_install = run(fake, "apt-get", "install", "-y", "ubuntu-drivers-common")
    assert fakes_apt_install.returncode == 0
    listed = run(fake, "ubuntu-drivers", "list").stdout.splitlines()
    assert listed[1] == (
        "nvidia-driver-535, (kernel modules provided by linux-modules-nvidia-535-generic)"
    )
    argv = ("ubuntu-drivers", "install", "--package-list", "/var/tmp-list", "nvidia:535")
    assert run(fake, *argv).returncode == 0
    assert (fake.root / "var/tmp-list").read_text() == (
        "nvidia-driver-535\nlinux-modules-nvidia-535-generic\n"
    )
    assert (fake.root / "run/reboot-required").read_text() == "*** System restart required ***\n"
    assert "modeset=1" in (fake.root / "lib/modprobe.d/nvidia-kms.conf").read_text()
    smi = run(fake, "nvidia-smi", *NVIDIA_SMI_QUERY.split())
    assert smi.returncode == 9 and smi.stdout.startswith("NVIDIA-SMI has failed")
    again = run(fake, *argv)
    assert (again.returncode, again.stdout) == (
        0, "All the available drivers are already installed.\n"
    )  # fmt: skip
    fakes_gpu.reboot(fake.root)
    assert not (fake.root / "run/reboot-required").exists()
    answer = run(fake, "nvidia-smi", *NVIDIA_SMI_QUERY.split())
    assert answer.stdout == "0, Tesla T4, 15360 MiB, 535.183.01\n"


def test_systemctl_keeps_a_masked_unit_masked_until_unmasked(fake: FakeHost) -> None:
    (fake.root / "etc/systemd/system/kubelet.service").symlink_to("/dev/null")
    masked = run(fake, "systemctl", "is-enabled", "kubelet")
    assert (masked.returncode, masked.stdout) == (1, "masked\n")
    refused = run(fake, "systemctl", "enable", "kubelet")
    assert refused.returncode == 1 and "is masked" in refused.stderr
    assert run(fake, "systemctl", "unmask", "kubelet").returncode == 0
    assert not (fake.root / "etc/systemd/system/kubelet.service").is_symlink()
