"""`diag fix cni`: the seed's remedy, with the real `ip` inside a network namespace."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tests.diag.conftest import ToolMaker
from worldland_cli.diag.fix import apply_cni_fix
from worldland_cli.host import Host
from worldland_cli.main import app


@pytest.fixture
def stale_cni(root: Path, tool: ToolMaker, tmp_path: Path) -> Path:
    """/etc/cni/net.d with a flannel conflist and a leftover directory; systemctl records."""
    netd = root / "etc/cni/net.d"
    netd.mkdir(parents=True)
    (netd / "10-flannel.conflist").write_text('{"name": "cbr0", "cniVersion": "0.3.1"}')
    (netd / "old").mkdir()
    (netd / "old" / "87-podman.conflist").write_text("{}")
    calls = tmp_path / "systemctl.calls"
    tool("systemctl", f'echo "$*" >> "{calls}"')
    return calls


def test_fix_with_fake_ip_removes_config_and_restarts(
    host: Host, root: Path, tool: ToolMaker, stale_cni: Path
) -> None:
    tool("ip", 'echo "Cannot find device \\"cni0\\"" >&2; exit 1')
    seen: list[str] = []
    results = apply_cni_fix(host, on_step=lambda r: seen.append(r.step))
    assert [r.ok for r in results] == [True, True, True]
    assert results[0].detail == "cni0 was already absent"
    assert os.listdir(root / "etc/cni/net.d") == []
    assert stale_cni.read_text() == "restart containerd kubelet\n"
    assert seen == [
        "ip link delete cni0",
        "rm -rf /etc/cni/net.d/*",
        "systemctl restart containerd kubelet",
    ]


def test_failed_restart_is_reported_not_hidden(
    host: Host, tool: ToolMaker, stale_cni: Path
) -> None:
    tool("ip", "exit 0")
    tool("systemctl", 'echo "Failed to restart kubelet.service: Unit not found." >&2; exit 5')
    results = apply_cni_fix(host)
    assert results[2].ok is False and "Unit not found" in results[2].detail


def _ip(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["ip", *args], capture_output=True, text=True, check=False)


@pytest.fixture
def netns() -> Iterator[str]:
    if os.geteuid() != 0:
        pytest.skip("needs root to create a network namespace")
    if shutil.which("ip") is None:
        pytest.skip("iproute2 (ip) is not installed")
    name = f"wl-diag-{uuid.uuid4().hex[:8]}"
    if _ip("netns", "add", name).returncode != 0:
        pytest.skip("cannot create network namespaces here")
    try:
        yield name
    finally:
        _ip("netns", "delete", name)


@pytest.mark.root
def test_real_ip_deletes_a_stale_cni0_bridge_in_a_namespace(
    host: Host, netns: str, stale_cni: Path
) -> None:
    assert _ip("-n", netns, "link", "add", "cni0", "type", "bridge").returncode == 0
    assert _ip("-n", netns, "addr", "add", "10.244.1.1/24", "dev", "cni0").returncode == 0
    results = apply_cni_fix(host, netns=netns)
    assert results[0].ok and results[0].detail == "cni0 deleted"
    assert results[0].step == f"ip -n {netns} link delete cni0"
    assert _ip("-n", netns, "link", "show", "cni0").returncode != 0
    # A second run finds nothing to delete and still succeeds: the fix is idempotent.
    assert apply_cni_fix(host, netns=netns)[0].detail == "cni0 was already absent"


def test_cli_asks_first_and_changes_nothing_when_declined(
    root: Path, bindir: Path, tool: ToolMaker, stale_cni: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    tool("ip", "exit 0")
    monkeypatch.setenv("PATH", f"{bindir}:/usr/bin:/bin")
    res = CliRunner().invoke(app, ["diag", "fix", "cni", "--root", str(root)], input="n\n")
    assert res.exit_code == 1 and "ip link delete cni0" in res.output
    assert (root / "etc/cni/net.d/10-flannel.conflist").exists()
    assert not stale_cni.exists()

    # --json cannot prompt: it says what it would run and that --yes is needed, exit 2.
    res = CliRunner().invoke(app, ["diag", "fix", "cni", "--root", str(root), "--json"])
    assert res.exit_code == 2
    doc = json.loads(res.stdout)
    assert doc["ok"] is False and doc["confirmation_needed"] is True
    assert doc["would_run"][0] == "ip link delete cni0"
    assert "--yes" in doc["hint"]
    assert (root / "etc/cni/net.d/10-flannel.conflist").exists()
    assert not stale_cni.exists()

    res = CliRunner().invoke(app, ["diag", "fix", "cni", "--root", str(root), "--yes", "--json"])
    assert res.exit_code == 0, res.output
    doc = json.loads(res.stdout)
    assert doc["ok"] is True
    assert [s["ok"] for s in doc["steps"]] == [True, True, True]
    assert not (root / "etc/cni/net.d/10-flannel.conflist").exists()
