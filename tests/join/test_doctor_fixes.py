"""doctor's fixes on a fresh host: in the seed's order, each once, and shell a person can paste.

The acceptance test of the issue "the first hour": doctor runs on the fresh Ubuntu host of
tests/join/conftest.py, its printed fixes (at 80 columns, as in tmux) are pasted, in order,
into ``sh`` with the stateful fakes on the PATH and a ``sudo`` that runs on the fake root
(tests/support/fakes_sudo.py), and afterwards every check doctor can judge before a join is
green.
"""

from __future__ import annotations

import json
import os
import re
import subprocess

import pytest
from pytest_mock import MockerFixture
from typer.testing import CliRunner, Result

from tests.join.conftest import FakeHost
from tests.support import fakesystem
from tests.support.nvml import no_nvml, patch_t4  # noqa: F401  (no_nvml: a fixture)
from worldland_cli.main import app
from worldland_cli.requirements import all_requirements
from worldland_cli.requirements.base import Status

CONTAINERD = "/usr/bin/containerd"
# What the fresh host lacks, in the order of the seed's checklist (all_requirements').
FRESH_FIXES = [
    ["gpu.driver", "gpu.nvidia-smi"],
    ["toolkit.nvidia-ctk"],
    ["containerd.installed"],
    ["containerd.running"],
    ["containerd.nvidia-runtime", "containerd.systemd-cgroup"],
    ["kernel.modules"],
    ["kernel.sysctl"],
    ["system.swap"],
    ["kube.binaries"],
    ["kube.kubelet-enabled"],
    ["vpn.wireguard"],
]
# What doctor skips before join: join's own steps (the hub, kubeadm, the daemon's unit).
AFTER_JOIN = ("hub.registered", "kube.joined", "daemon.health", "kube.gpu-allocatable")
pytestmark = pytest.mark.usefixtures("no_nvml")  # no driver until the fixes reboot


def doctor(fake: FakeHost, *args: str) -> Result:
    env = {"COLUMNS": "80"}
    return CliRunner().invoke(app, ["doctor", "--root", str(fake.root), *args], env=env)


def fix_section(output: str) -> str:
    """What doctor printed between "To fix" and its verdict: the lines a person pastes."""
    start = output.index("To fix")
    body = output[output.index("\n", start) + 1 :]
    return body[: body.rindex("NOT READY")]


def test_the_fixes_follow_the_checklist_each_once(fake: FakeHost) -> None:
    report = json.loads(doctor(fake, "--json").stdout)
    checks = [fix["checks"] for fix in report["fixes"]]
    assert checks == FRESH_FIXES
    order = [r.id for r in all_requirements()]
    flat = [check for group in checks for check in group]
    assert flat == sorted(flat, key=order.index)
    commands = [c for fix in report["fixes"] for c in fix["commands"]]
    assert len(commands) == len(set(commands))  # not one command twice
    driver = report["fixes"][0]["commands"]
    assert driver == [
        "sudo apt-get update && sudo apt-get install -y ubuntu-drivers-common",
        "sudo ubuntu-drivers install nvidia:535",
        "sudo reboot",
    ]
    # containerd's config is join's to write once containerd and the toolkit are there.
    assert report["fixes"][4]["commands"] == [
        "sudo worldland join --yes --only containerd.nvidia-runtime,containerd.systemd-cgroup"
    ]
    assert report["fixes"][-1]["commands"] == ["sudo apt-get install -y wireguard-tools"]


def test_every_printed_line_fits_80_columns_where_a_shell_allows_a_break(fake: FakeHost) -> None:
    shown = doctor(fake)
    assert shown.exit_code == 1, shown.output
    section = fix_section(shown.stdout)
    heredoc = None
    for line in section.splitlines():
        if heredoc is not None:
            heredoc = None if line == heredoc else heredoc
            continue
        match = re.search(r"<<'(\w+)'", line)
        if match:
            heredoc = match.group(1)
        assert len(line) <= 80, line
    assert "# 1. gpu.driver, gpu.nvidia-smi: " in section
    assert "# more: worldland docs " in section


@pytest.mark.skipif(
    not os.access(CONTAINERD, os.X_OK), reason="Debian's containerd is not installed"
)
def test_pasting_the_fixes_in_order_ends_with_the_checks_green(
    fake: FakeHost, mocker: MockerFixture
) -> None:
    fakesystem.install(fake.fakes, ("sudo",))
    section = fix_section(doctor(fake).stdout)
    pasted = subprocess.run(
        ["/bin/sh", "-e"],
        input=section,
        capture_output=True,
        text=True,
        env={**os.environ, "PATH": str(fake.fakes)},
        timeout=240,
    )
    assert pasted.returncode == 0, pasted.stdout + pasted.stderr
    patch_t4(mocker)  # the fixes rebooted: NVML answers now
    found = {r.id: r.check(fake.host) for r in all_requirements()}
    not_ok = {i: (f.status, f.observed) for i, f in found.items() if f.status is not Status.OK}
    assert set(not_ok) == {*AFTER_JOIN, "system.iommu"}, not_ok
    assert {status for status, _ in not_ok.values()} == {Status.SKIP}
    again = json.loads(doctor(fake, "--json").stdout)
    assert again["fixes"] == []
