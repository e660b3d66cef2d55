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


@pytest.fixture
def ubuntu(fake: FakeHost) -> FakeHost:
    fakes_gpu.ubuntu_base(fake.root, fake.fakes)
    return fake


def run(fake: FakeHost, *argv: str) -> subprocess.CompletedProcess[str]:
    """A tool as join runs it: by name, on the PATH of fakes (installed ones included)."""
    return subprocess.run([str(fake.fakes / argv[0]), *argv[1:]], capture_output=True,
                          text=True, env=fake.host.env, check=False)  # fmt: skip


def add_kubernetes_repository(fake: FakeHost, keyring: bytes | None) -> None:
    if keyring is not None:
        (fake.root / "etc/apt/keyrings/kubernetes-apt-keyring.gpg").write_bytes(keyring)
    (fake.root / "etc/apt/sources.list.d/kubernetes.list").write_text(
        f"deb [signed-by=/etc/apt/keyrings/kubernetes-apt-keyring.gpg] {K8S}/ /\n"
    )


def test_a_tool_a_plugin_registers_runs_through_its_wrapper(ubuntu: FakeHost) -> None:
    url = "https://nvidia.github.io/libnvidia-container/gpgkey"
    done = run(ubuntu, "curl", "-fsSL", "--create-dirs", "-o", "/tmp/k", url)
    assert done.returncode == 0, done.stderr
    assert (ubuntu.root / "tmp/k").read_bytes() == fakes_apt.key("libnvidia-container.gpgkey")


def test_curl_fails_as_curl_does_for_what_is_not_served(ubuntu: FakeHost) -> None:
    missing = run(ubuntu, "curl", "-fsSL", "--create-dirs", "-o", "/k", f"{K8S}/Nope.key")
    assert (missing.returncode, missing.stderr) == (
        22, "curl: (22) The requested URL returned error: 404\n"
    )  # fmt: skip
    nowhere = run(ubuntu, "curl", "-fsSL", "--create-dirs", "-o", "/k", "https://x.invalid/k")
    assert (nowhere.returncode, nowhere.stderr) == (
        6, "curl: (6) Could not resolve host: x.invalid\n"
    )  # fmt: skip
    assert not (ubuntu.root / "k").exists()


@pytest.mark.skipif(not Path(fakes_apt.REAL_GPG).exists(), reason="no gpg on this machine")
def test_the_fallback_dearmor_writes_what_gpg_writes(tmp_path: Path) -> None:
    for name in ("libnvidia-container.gpgkey", "kubernetes-Release.key"):
        out = tmp_path / f"{name}.gpg"
        subprocess.run([fakes_apt.REAL_GPG, "--batch", "--yes", "--dearmor", "-o", str(out),
                        str(fakes_apt.KEYS / name)], check=True)  # fmt: skip
        assert fakes_apt.dearmor(fakes_apt.key(name)) == out.read_bytes()


def test_apt_installs_a_repository_package_only_from_a_signed_fetched_repository(
    ubuntu: FakeHost,
) -> None:
    add_kubernetes_repository(ubuntu, keyring=fakes_apt.key("kubernetes-Release.key"))
    armored = run(ubuntu, "apt-get", "update", "-qq")  # an armored key under a .gpg name
    assert armored.returncode == 100
    assert f"NO_PUBKEY {fakes_gpu.KUBE_KEY_ID}" in armored.stderr
    assert f"E: The repository '{K8S}  InRelease' is not signed." in armored.stderr
    unlocated = run(ubuntu, "apt-get", "install", "-y", "kubelet")
    assert (unlocated.returncode, unlocated.stderr) == (
        100, "E: Unable to locate package kubelet\n"
    )  # fmt: skip
    add_kubernetes_repository(ubuntu, fakes_apt.dearmor(fakes_apt.key("kubernetes-Release.key")))
    assert run(ubuntu, "apt-get", "update", "-qq").returncode == 0
    assert run(ubuntu, "apt-get", "install", "-y", "kubelet").returncode == 0
    assert run(ubuntu, "kubelet", "--version").stdout == "Kubernetes v1.29.3\n"


def test_ubuntu_drivers_installs_marks_the_reboot_and_lists_what_it_installed(
    ubuntu: FakeHost,
) -> None:
    fakes_apt_install = run(ubuntu, "apt-get", "install", "-y", "ubuntu-drivers-common")
    assert fakes_apt_install.returncode == 0
    listed = run(ubuntu, "ubuntu-drivers", "list").stdout.splitlines()
    assert listed[1] == (
        "nvidia-driver-535, (kernel modules provided by linux-modules-nvidia-535-generic)"
    )
    argv = ("ubuntu-drivers", "install", "--package-list", "/var/tmp-list", "nvidia:535")
    assert run(ubuntu, *argv).returncode == 0
    assert (ubuntu.root / "var/tmp-list").read_text() == (
        "nvidia-driver-535\nlinux-modules-nvidia-535-generic\n"
    )
    assert (ubuntu.root / "run/reboot-required").read_text() == "*** System restart required ***\n"
    assert "modeset=1" in (ubuntu.root / "lib/modprobe.d/nvidia-kms.conf").read_text()
    smi = run(ubuntu, "nvidia-smi", *NVIDIA_SMI_QUERY.split())
    assert smi.returncode == 9 and smi.stdout.startswith("NVIDIA-SMI has failed")
    again = run(ubuntu, *argv)
    assert (again.returncode, again.stdout) == (
        0, "All the available drivers are already installed.\n"
    )  # fmt: skip
    fakes_gpu.reboot(ubuntu.root)
    assert not (ubuntu.root / "run/reboot-required").exists()
    answer = run(ubuntu, "nvidia-smi", *NVIDIA_SMI_QUERY.split())
    assert answer.stdout == "0, Tesla T4, 15360 MiB, 535.183.01\n"


def test_systemctl_keeps_a_masked_unit_masked_until_unmasked(ubuntu: FakeHost) -> None:
    (ubuntu.root / "etc/systemd/system/kubelet.service").symlink_to("/dev/null")
    masked = run(ubuntu, "systemctl", "is-enabled", "kubelet")
    assert (masked.returncode, masked.stdout) == (1, "masked\n")
    refused = run(ubuntu, "systemctl", "enable", "kubelet")
    assert refused.returncode == 1 and "is masked" in refused.stderr
    assert run(ubuntu, "systemctl", "unmask", "kubelet").returncode == 0
    assert not (ubuntu.root / "etc/systemd/system/kubelet.service").is_symlink()
