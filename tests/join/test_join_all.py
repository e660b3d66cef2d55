"""The whole of join on one fresh host: every step, in all_requirements' order, together.

Each area's tests drive its own steps; these drive them all as `worldland join` runs them on
a fresh Ubuntu host with a GPU and no driver: the dry run first (it changes nothing), then
join, which stops for the driver's reboot; after the reboot the resume unit's command (with
the hub flags it carries) does the rest, from the toolkit to the node daemon's unit; reset
takes it all back byte for byte, at the hub too. The fakes are the shared ones of
tests/join/conftest.py; the hub is the real one.
"""

from __future__ import annotations

import json
import shlex
from pathlib import Path

import pytest
from pytest_mock import MockerFixture
from typer.testing import CliRunner, Result

from tests.join.conftest import FakeHost, snapshot
from tests.join.nodehub import KEY_FILE, NO_DAEMON, Cluster, owner_client, prepare_root
from tests.support import fakes_gpu
from tests.support.hub import RunningHub
from tests.support.nvml import no_nvml, patch_t4  # noqa: F401  (no_nvml: a fixture)
from worldland_cli import config
from worldland_cli.join.resume import UNIT, UNIT_PATH
from worldland_cli.main import app
from worldland_cli.requirements import all_requirements, daemon
from worldland_cli.requirements.base import Requirement, Status

# What join does, in this order, each requirement once; system.iommu, information only
# (it never fails), comes after the last of join's.
JOIN_ORDER = [
    "gpu.driver",
    "gpu.nvidia-smi",
    "toolkit.nvidia-ctk",
    "containerd.installed",
    "containerd.running",
    "containerd.nvidia-runtime",
    "containerd.systemd-cgroup",
    "kernel.modules",
    "kernel.sysctl",
    "system.swap",
    "kube.binaries",
    "kube.kubelet-enabled",
    "hub.registered",
    "vpn.wireguard",
    "kube.joined",
    "daemon.health",
    "kube.gpu-allocatable",
]
# The end-to-end proof needs the cluster's API server and device plugin; the fake cluster
# is a description kubeadm's fake reads, with no API server to ask.
NO_API_SERVER = "kube.gpu-allocatable"
# What the plan may run on the host: reads only.
READS = ("dpkg-query -W ", "systemctl is-enabled ", "systemctl is-active ")
WANTS = "etc/systemd/system/multi-user.target.wants"
pytestmark = pytest.mark.usefixtures("no_nvml")  # no driver until the test "reboots"


def cli(*args: str) -> Result:
    return CliRunner().invoke(app, list(args))


def every_step(*, joining: bool = False, cert_dir: str | None = None) -> list[Requirement]:
    """all_requirements, with the node daemon's API where nothing listens."""
    return [
        daemon.DaemonHealth(url=NO_DAEMON, cert_dir=cert_dir, joining=joining)
        if r.id == "daemon.health"
        else r
        for r in all_requirements(cert_dir, joining=joining)
    ]


def resume_argv(root: Path) -> list[str]:
    """What the resume unit runs, without the executable (the test runs it in-process)."""
    text = (root / UNIT_PATH.lstrip("/")).read_text()
    exec_start = next(line for line in text.splitlines() if line.startswith("ExecStart="))
    return shlex.split(exec_start.removeprefix("ExecStart="))[1:]


def test_join_takes_every_requirement_once_in_the_seeds_order() -> None:
    assert [r.id for r in all_requirements(joining=True)] == [*JOIN_ORDER, "system.iommu"]


def test_the_dry_run_on_a_fresh_host_plans_every_area_and_changes_nothing(
    fake: FakeHost,
) -> None:
    before = snapshot(fake.root)
    root = str(fake.root)
    shown = cli("join", "--dry-run", "--root", root)
    assert shown.exit_code == 0, shown.output
    for words in (
        "install the NVIDIA driver nvidia:535 (ubuntu-drivers)",
        "stop here for a reboot",
        "install nvidia-container-toolkit",  # the toolkit
        "install containerd",
        "enable and start containerd",
        "containerd.nvidia-runtime",  # the nvidia runtime, planned once containerd is there
        "+overlay\n",  # kernel modules
        "modprobe -a overlay br_netfilter",
        "+net.ipv4.ip_forward = 1",  # sysctl
        "turn swap off now",
        "+#/swap.img",
        "install kubelet, kubeadm, kubectl and hold them",
        "enable kubelet",
        "register this node",
        "install wireguard-tools",
        "write /etc/wireguard/wg0.conf (mode 600)",
        "kube.joined",
        "write /etc/systemd/system/worldland-node.service (mode 644)",
    ):
        assert words in shown.stdout, words
    planned = json.loads(cli("join", "--dry-run", "--root", root, "--json").stdout)
    assert [s["id"] for s in planned["plan"]["steps"]] == JOIN_ORDER[:-1]
    assert snapshot(fake.root) == before
    assert [c for c in fake.calls() if not c.startswith(READS)] == []
    assert not config.session_file().exists()  # the plan asked no hub anything


def test_a_fresh_host_joins_across_the_reboot_and_resets_byte_for_byte(
    fake: FakeHost,
    http_hub: RunningHub,
    cluster: Cluster,
    mocker: MockerFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr("worldland_cli.requirements.all_requirements", every_step)
    prepare_root(fake, cluster, kubeadm=False)
    before = snapshot(fake.root)
    root = str(fake.root)
    flags = ["--skip", NO_API_SERVER, "--hub", http_hub.url, "--private-key-file", KEY_FILE]
    stopped = cli("join", "--root", root, "--yes", *flags)
    assert stopped.exit_code == 0, stopped.output
    assert "Reboot now (sudo reboot)" in stopped.stdout
    assert resume_argv(fake.root) == ["join", "--yes", *flags]
    assert (fake.root / WANTS / UNIT).is_symlink()

    fakes_gpu.reboot(fake.root)
    patch_t4(mocker)
    resumed = cli(*resume_argv(fake.root), "--root", root)
    assert resumed.exit_code == 0, resumed.output
    assert f"Joined: {len(JOIN_ORDER) - 3} step(s) done" in resumed.stdout  # not the driver's
    assert "note: daemon.health: worldland-node.service is installed" in resumed.stdout
    assert not (fake.root / WANTS / UNIT).is_symlink()  # ran once, then disabled itself
    found = {r.id: r.check(fake.host) for r in every_step() if r.id != NO_API_SERVER}
    assert {i for i, f in found.items() if f.status is not Status.OK} == {
        "daemon.health",  # a unit, but this worldland has no daemon to answer yet
        "system.iommu",
    }
    with owner_client(http_hub, fake) as client:
        assert len(client.list_nodes()) == 1
    assert cli("join", "--root", root, "--yes", *flags).stdout.startswith("Nothing to do")

    reset = cli("reset", "--root", root, "--yes", "--purge")
    assert reset.exit_code == 0, reset.output
    assert snapshot(fake.root) == before
    with owner_client(http_hub, fake) as client:
        assert client.list_nodes() == []
