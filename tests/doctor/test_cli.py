"""`worldland doctor` end to end: the Typer app (in process and as a real subprocess) over
a fake root and a PATH of fake tools; exit codes, --only, --ignore, the JSON document."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from tests.doctor.hosts import make_ready_root, realbin
from tests.support.fakebin import FakeBin
from worldland_cli.main import app
from worldland_cli.requirements import all_requirements

ALL_IDS = [r.id for r in all_requirements()]


@pytest.fixture
def ready(tmp_path: Path, fakebin: FakeBin, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fully set-up provider root; PATH = fakes + the real containerd and wg."""
    real = realbin(tmp_path, "containerd", "wg")
    if not (real / "containerd").exists() or not (real / "wg").exists():
        pytest.skip("needs Debian's containerd and wireguard-tools installed")
    fakebin.provider_ready()
    monkeypatch.setenv("PATH", fakebin.env_path(str(real)))
    return make_ready_root(tmp_path)


def doctor(*args: str) -> tuple[int, dict[str, Any]]:
    result = CliRunner().invoke(app, ["doctor", "--json", *args])
    return result.exit_code, json.loads(result.stdout)


def by_id(doc: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {c["id"]: c for c in doc["checks"]}


def test_ready_host_exits_0_and_lists_every_check(ready: Path, nvml_t4: str) -> None:
    code, doc = doctor("--root", str(ready))
    checks = by_id(doc)
    assert code == 0, [(c["id"], c["observed"]) for c in doc["checks"] if c["status"] == "fail"]
    assert doc["schema"] == "worldland.doctor/v1"
    assert doc["ready"] is True
    assert doc["ok"] is True  # every --json document says ok, doctor's too
    assert [c["id"] for c in doc["checks"]] == ALL_IDS
    for check in doc["checks"]:
        assert {"id", "area", "status", "observed", "remedy", "doc", "details"} <= set(check)
    assert checks["kube.gpu-allocatable"]["status"] == "skip"
    assert checks["daemon.health"]["status"] == "skip"
    assert checks["containerd.nvidia-runtime"]["status"] == "ok"
    assert doc["hostname"] == "gpu-node-1"
    assert sum(doc["summary"].values()) == len(ALL_IDS)


def test_a_failure_exits_1_with_its_remedy(ready: Path, nvml_t4: str, fakebin: FakeBin) -> None:
    fakebin.systemctl(kubelet="disabled")
    code, doc = doctor("--root", str(ready))
    assert code == 1
    assert doc["ready"] is False
    assert doc["ok"] is False
    failed = [c for c in doc["checks"] if c["status"] == "fail"]
    assert [c["id"] for c in failed] == ["kube.kubelet-enabled"]
    assert failed[0]["remedy"] == "sudo systemctl enable kubelet"


def test_ignore_turns_a_failure_into_a_warning(ready: Path, nvml_t4: str, fakebin: FakeBin) -> None:
    fakebin.systemctl(kubelet="disabled")
    code, doc = doctor("--root", str(ready), "--ignore", "kube.kubelet-enabled")
    assert code == 0
    check = by_id(doc)["kube.kubelet-enabled"]
    assert check["status"] == "warn"
    assert check["ignored"] is True


def test_only_runs_the_named_checks_and_areas(ready: Path, nvml_t4: str) -> None:
    code, doc = doctor("--root", str(ready), "--only", "gpu,system.swap")
    assert code == 0
    assert [c["id"] for c in doc["checks"]] == ["gpu.driver", "gpu.nvidia-smi", "system.swap"]


def test_unknown_check_is_a_usage_error(ready: Path) -> None:
    result = CliRunner().invoke(app, ["doctor", "--root", str(ready), "--only", "gpu.nope"])
    assert result.exit_code == 2
    assert "unknown check 'gpu.nope'" in result.output


def test_table_output_groups_and_prints_fixes(ready: Path, nvml_t4: str, fakebin: FakeBin) -> None:
    fakebin.remove("nvidia-ctk")
    result = CliRunner().invoke(app, ["doctor", "--root", str(ready)])
    assert result.exit_code == 1
    assert "toolkit.nvidia-ctk" in result.stdout
    assert "To fix, paste these blocks into a shell, in this order:" in result.stdout
    assert "# 1. toolkit.nvidia-ctk: nvidia-ctk not found" in result.stdout
    assert "sudo apt-get install -y nvidia-container-toolkit" in result.stdout
    assert "NOT READY" in result.stdout


def test_subprocess_with_hanging_nvidia_smi_finishes_and_reports(
    tmp_path: Path, fakebin: FakeBin
) -> None:
    """The installed entry point as a person runs it; a wedged nvidia-smi must not hang it."""
    root = make_ready_root(tmp_path)
    fakebin.provider_ready()
    fakebin.nvidia_smi(hang=True)
    env = {**os.environ, "PATH": fakebin.env_path()}
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "worldland_cli.main",
            "doctor",
            "--json",
            "--root",
            str(root),
            "--timeout",
            "1",
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert proc.returncode == 1, proc.stderr
    doc = json.loads(proc.stdout)
    smi = by_id(doc)["gpu.nvidia-smi"]
    assert smi["status"] == "fail"
    assert "no answer within" in smi["observed"]
    assert doc["timeout_s"] == 1.0
    pid = int((fakebin.path / "nvidia-smi.pid").read_text())
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)
