"""Checks that run tools: fake nvidia-smi, nvidia-ctk, kubeadm, kubelet, kubectl, systemctl
(printing what the real ones print), NVML mocked at the pynvml boundary."""

from __future__ import annotations

import os
import socket
import tempfile
from pathlib import Path
from types import SimpleNamespace

import pynvml
import pytest
from pytest_mock import MockerFixture

from tests.support.fakebin import NVIDIA_SMI_QUERY, FakeBin, Reply
from worldland_cli.host import Host
from worldland_cli.requirements import gpu, kube, toolkit
from worldland_cli.requirements.base import Status
from worldland_cli.requirements.containerd import Installed, Running
from worldland_cli.requirements.runner import run_checks


def test_nvml_ok_reports_driver_cuda_and_each_gpu(host: Host, mocker: MockerFixture) -> None:
    mocker.patch("pynvml.nvmlInit")
    mocker.patch("pynvml.nvmlShutdown")
    mocker.patch("pynvml.nvmlSystemGetDriverVersion", return_value="535.183.01")
    mocker.patch("pynvml.nvmlSystemGetCudaDriverVersion", return_value=12020)
    mocker.patch("pynvml.nvmlDeviceGetCount", return_value=2)
    mocker.patch("pynvml.nvmlDeviceGetHandleByIndex", side_effect=lambda i: f"h{i}")
    mocker.patch(
        "pynvml.nvmlDeviceGetMemoryInfo",
        return_value=SimpleNamespace(total=16106127360, free=0, used=0),
    )
    mocker.patch(
        "pynvml.nvmlDeviceGetPciInfo", return_value=SimpleNamespace(busId=b"00000000:00:04.0")
    )
    mocker.patch("pynvml.nvmlDeviceGetName", return_value=b"Tesla T4")
    mocker.patch("pynvml.nvmlDeviceGetUUID", side_effect=lambda h: f"GPU-{h}")
    finding = gpu.Driver().check(host)
    assert finding.status is Status.OK
    assert "driver 535.183.01, CUDA 12.2, 2 GPU(s)" in finding.observed
    assert [g["uuid"] for g in finding.details["gpus"]] == ["GPU-h0", "GPU-h1"]
    assert finding.details["gpus"][0]["memory_mib"] == 15360


def test_nvml_missing_fails_with_the_seed_driver_remedy(host: Host, mocker: MockerFixture) -> None:
    mocker.patch(
        "pynvml.nvmlInit",
        side_effect=pynvml.NVMLError(pynvml.NVML_ERROR_LIBRARY_NOT_FOUND),
    )
    finding = gpu.Driver().check(host)
    assert finding.status is Status.FAIL
    assert "NVML Shared Library Not Found" in finding.observed
    assert "ubuntu-drivers install nvidia:535" in (finding.remedy or "")
    assert finding.doc == "provider-guide#nvidia-driver"


def test_nvidia_smi_answers(host: Host, fakebin: FakeBin) -> None:
    fakebin.nvidia_smi(gpus=(("NVIDIA A100-SXM4-80GB", 81920),))
    finding = gpu.NvidiaSmi().check(host)
    assert finding.status is Status.OK
    assert finding.details["gpus"] == ["0, NVIDIA A100-SXM4-80GB, 81920 MiB, 535.183.01"]
    assert fakebin.calls() == [f"nvidia-smi {NVIDIA_SMI_QUERY}"]


def test_hanging_nvidia_smi_is_killed_and_bounds_the_run(fakebin: FakeBin, root: Path) -> None:
    """A wedged driver makes nvidia-smi hang for good; doctor must still finish, report it
    as timed out, and leave no process behind."""
    fakebin.nvidia_smi(hang=True)
    host = Host(root, search_path=fakebin.env_path(), default_timeout=0.5)
    report = run_checks(host, [gpu.NvidiaSmi(), toolkit.NvidiaCtk()], timeout=0.5)
    by_id = {f.id: f for f in report.findings}
    assert by_id["gpu.nvidia-smi"].status is Status.FAIL
    assert "no answer within" in by_id["gpu.nvidia-smi"].observed
    assert "dmesg" in (by_id["gpu.nvidia-smi"].remedy or "")
    # The other check was not held up by the hang.
    assert by_id["toolkit.nvidia-ctk"].observed == "nvidia-ctk not found"
    pid = int((fakebin.path / "nvidia-smi.pid").read_text())
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)


def test_nvidia_ctk_version_and_absence(host: Host, fakebin: FakeBin) -> None:
    missing = toolkit.NvidiaCtk().check(host)
    assert missing.status is Status.FAIL
    assert "sudo apt-get install -y nvidia-container-toolkit" in (missing.remedy or "")
    fakebin.nvidia_ctk("1.17.8")
    found = toolkit.NvidiaCtk().check(host)
    assert found.status is Status.OK
    assert found.details["version"] == "1.17.8"


def test_containerd_installed_uses_the_real_binary(host: Host) -> None:
    if host.which("containerd") is None:
        pytest.skip("containerd not installed (apt-get install containerd)")
    finding = Installed().check(host)
    assert finding.status is Status.OK
    assert finding.observed.startswith("containerd 1.") or finding.observed.startswith(
        "containerd v2"
    )


def test_containerd_version_too_old_fails(host: Host, fakebin: FakeBin) -> None:
    fakebin.add(
        "containerd",
        {"--version": Reply("containerd github.com/containerd/containerd 1.5.9 1407cab\n")},
    )
    finding = Installed().check(host)
    assert finding.status is Status.FAIL
    assert "older than 1.6" in finding.observed


@pytest.mark.parametrize(
    ("state", "status"), [("active", Status.OK), ("inactive", Status.FAIL), ("failed", Status.FAIL)]
)
def test_containerd_running_per_systemd(
    host: Host, fakebin: FakeBin, state: str, status: Status
) -> None:
    fakebin.systemctl(containerd=state)
    finding = Running().check(host)
    assert finding.status is status
    assert state in finding.observed
    if status is Status.FAIL:
        assert finding.remedy == "sudo systemctl enable --now containerd"


def test_containerd_running_without_systemd_asks_the_socket(fakebin: FakeBin) -> None:
    fakebin.add(
        "systemctl",
        Reply(
            stderr="System has not been booted with systemd as init system (PID 1).\n",
            exit_code=1,
        ),
    )
    # A short root under /tmp: Unix socket paths are limited to 108 bytes.
    with tempfile.TemporaryDirectory(prefix="wl", dir="/tmp") as short:
        root = Path(short)
        sock_path = root / "run/containerd/containerd.sock"
        sock_path.parent.mkdir(parents=True)
        host = Host(root, search_path=fakebin.env_path())
        down = Running().check(host)
        assert down.status is Status.FAIL
        assert down.remedy == "sudo systemctl enable --now containerd"  # never `containerd &`
        with socket.socket(socket.AF_UNIX) as server:
            server.bind(str(sock_path))
            server.listen(1)
            finding = Running().check(host)
    assert finding.status is Status.OK
    assert "accepts connections" in finding.observed


def test_kube_binaries_consistent(host: Host, fakebin: FakeBin) -> None:
    fakebin.kube_tools()
    finding = kube.Binaries().check(host)
    assert finding.status is Status.OK
    assert finding.details["versions"] == {
        "kubeadm": "v1.29.3",
        "kubelet": "v1.29.3",
        "kubectl": "v1.29.3",
    }


@pytest.mark.parametrize(
    ("kubeadm", "kubelet", "status", "words"),
    [
        ("v1.29.3", "v1.29.1", Status.OK, None),
        # The version skew policy: kubelet up to three minors older (two below 1.25).
        ("v1.30.1", "v1.29.3", Status.WARN, "within the supported skew"),
        ("v1.32.0", "v1.29.3", Status.WARN, "within the supported skew"),
        ("v1.33.0", "v1.29.3", Status.FAIL, "4 minor versions older than kubeadm (at most 3)"),
        ("v1.26.0", "v1.23.5", Status.FAIL, "3 minor versions older than kubeadm (at most 2)"),
        ("v1.29.3", "v1.30.0", Status.FAIL, "kubelet is newer than kubeadm"),
    ],
)
def test_kube_binaries_follow_the_kubelet_skew_policy(
    host: Host,
    fakebin: FakeBin,
    kubeadm: str,
    kubelet: str,
    status: Status,
    words: str | None,
) -> None:
    fakebin.kube_tools(kubeadm=kubeadm, kubelet=kubelet, kubectl=kubeadm)
    finding = kube.Binaries().check(host)
    assert finding.status is status, finding.observed
    if words:
        assert words in finding.observed
        assert "apt-get install -y kubelet kubeadm kubectl" in (finding.remedy or "")


def test_kube_binaries_kubectl_skew_warns(host: Host, fakebin: FakeBin) -> None:
    fakebin.kube_tools(kubectl="v1.27.0")
    skew = kube.Binaries().check(host)
    assert skew.status is Status.WARN
    assert "kubectl is more than one minor version" in skew.observed


def test_kube_binaries_missing_tool_names_it(host: Host, fakebin: FakeBin) -> None:
    fakebin.kube_tools()
    fakebin.remove("kubeadm")
    finding = kube.Binaries().check(host)
    assert finding.status is Status.FAIL
    assert "kubeadm: command not found" in finding.observed
    assert "apt-get install -y kubelet kubeadm kubectl" in (finding.remedy or "")


@pytest.mark.parametrize(
    ("kubelet", "status", "remedy_part"),
    [
        ("enabled", Status.OK, None),
        ("disabled", Status.FAIL, "sudo systemctl enable kubelet"),
        ("masked", Status.FAIL, "sudo systemctl unmask kubelet && sudo systemctl enable kubelet"),
        (None, Status.FAIL, "apt-get install -y kubelet"),
    ],
)
def test_kubelet_enabled(
    host: Host, fakebin: FakeBin, kubelet: str | None, status: Status, remedy_part: str | None
) -> None:
    fakebin.systemctl(kubelet=kubelet)
    finding = kube.KubeletEnabled().check(host)
    assert finding.status is status
    if remedy_part:
        assert remedy_part in (finding.remedy or "")
