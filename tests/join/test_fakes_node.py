"""The node steps' fakes refuse what the real tools refuse, and leave what they leave.

A fake kubeadm that accepted any file would let a wrong JoinConfiguration through; these
tests hold the fake to kubeadm 1.29's loading, validation, preflight and discovery, and
wg-quick's fake to wg-quick's and ``wg setconf``'s reading of a config.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from tests.join.conftest import FakeHost, install_kube_packages, snapshot
from tests.support import fakes_node

API = "10.100.0.1:6443"
TOKEN = "abcdef.0123456789abcdef"
LABELS = ("worldland.io/gpu-model=Tesla-T4", "worldland.io/gpu-count=1")
CONFIG = "/etc/worldland/kubeadm-join.yaml"


@pytest.fixture
def pin(fake: FakeHost) -> str:
    """The fake cluster, and kubeadm installed on the fake root; the CA pin."""
    install_kube_packages(fake, "kubeadm")
    (fake.root / "etc/hostname").write_text("gpu-node-1\n")
    return fakes_node.make_cluster(fake.fakes, API, TOKEN)


def write_config(fake: FakeHost, text: str) -> None:
    path = fake.root / CONFIG.lstrip("/")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    path.chmod(0o600)


def good_config(pin: str, labels: tuple[str, ...] = LABELS) -> str:
    """A JoinConfiguration as kubeadm's documentation writes one (v1beta3)."""
    return (
        "apiVersion: kubeadm.k8s.io/v1beta3\nkind: JoinConfiguration\ndiscovery:\n"
        f"  bootstrapToken:\n    apiServerEndpoint: {API}\n    token: {TOKEN}\n"
        f"    caCertHashes:\n    - {pin}\nnodeRegistration:\n  name: gpu-node-1\n"
        "  criSocket: unix:///run/containerd/containerd.sock\n  kubeletExtraArgs:\n"
        f'    node-labels: "{",".join(labels)}"\n'
    )


def kubeadm_join(fake: FakeHost) -> subprocess.CompletedProcess[str]:
    result = fake.host.run(["kubeadm", "join", "--config", CONFIG])
    return subprocess.CompletedProcess(result.argv, result.returncode, result.stdout, result.stderr)


BAD_CONFIGS = {
    "an old API": (
        "apiVersion: kubeadm.k8s.io/v1beta2\nkind: JoinConfiguration\n",
        'your configuration file uses an old API spec: "kubeadm.k8s.io/v1beta2".',
    ),
    "a newer API than 1.29 knows": (
        "apiVersion: kubeadm.k8s.io/v1beta4\nkind: JoinConfiguration\n",
        'no kind "JoinConfiguration" is registered for version "kubeadm.k8s.io/v1beta4"',
    ),
    "no JoinConfiguration": (
        "apiVersion: kubeadm.k8s.io/v1beta3\nkind: InitConfiguration\n",
        "no JoinConfiguration found in the supplied config",
    ),
    "no pins and a bad token": (
        "apiVersion: kubeadm.k8s.io/v1beta3\nkind: JoinConfiguration\ndiscovery:\n"
        "  bootstrapToken:\n    apiServerEndpoint: 10.100.0.1:6443\n    token: abc\n",
        '[discovery.bootstrapToken.caCertHashes: Invalid value: "": using token-based '
        "discovery without caCertHashes can be unsafe.",
    ),
    "no discovery": (
        "apiVersion: kubeadm.k8s.io/v1beta3\nkind: JoinConfiguration\n",
        'discovery: Invalid value: "": bootstrapToken or file must be set',
    ),
    "v1beta4's list of kubelet args in v1beta3": (
        "apiVersion: kubeadm.k8s.io/v1beta3\nkind: JoinConfiguration\ndiscovery:\n"
        "  bootstrapToken:\n    apiServerEndpoint: 10.100.0.1:6443\n"
        f"    token: {TOKEN}\n    caCertHashes: [sha256:{'0' * 64}]\n"
        "nodeRegistration:\n  kubeletExtraArgs:\n  - name: node-labels\n    value: a=b\n",
        "cannot unmarshal array into Go struct field NodeRegistrationOptions",
    ),
}


@pytest.mark.parametrize("case", sorted(BAD_CONFIGS))
def test_kubeadm_refuses_a_bad_join_configuration_like_kubeadm(
    fake: FakeHost, pin: str, case: str
) -> None:
    text, words = BAD_CONFIGS[case]
    write_config(fake, text)
    before = snapshot(fake.root)
    result = kubeadm_join(fake)
    assert result.returncode == 1
    assert words in result.stderr
    assert result.stderr.endswith(f"{fakes_node.STACK_HINT}\n")
    assert snapshot(fake.root) == before


def test_kubeadm_joins_with_the_rendered_configuration_and_reset_takes_back_its_files(
    fake: FakeHost, pin: str
) -> None:
    write_config(fake, good_config(pin))
    before = snapshot(fake.root)
    joined = kubeadm_join(fake)
    assert joined.returncode == 0, joined.stderr
    assert "This node has joined the cluster" in joined.stdout
    kubelet = fake.root / "var/lib/kubelet"
    assert sorted(p.name for p in kubelet.iterdir()) == ["config.yaml", "kubeadm-flags.env", "pki"]
    assert (fake.root / "etc/kubernetes/pki/ca.crt").exists()
    current = os.readlink(kubelet / "pki/kubelet-client-current.pem")  # absolute, as kubelet's
    assert current.startswith("/var/lib/kubelet/pki/kubelet-client-20")
    assert b"PRIVATE KEY" in (fake.root / current.lstrip("/")).read_bytes()
    again = kubeadm_join(fake)
    assert again.returncode == 1
    assert "[ERROR FileAvailable--etc-kubernetes-kubelet.conf]: /etc/kubernetes/kubelet.conf " \
        "already exists" in again.stderr  # fmt: skip
    reset = fake.host.run(["kubeadm", "reset", "-f"])
    assert reset.ok and "does not clean CNI configuration" in reset.stdout
    left = {p for p in snapshot(fake.root)} - set(before)
    assert left == {"etc/kubernetes", "etc/kubernetes/pki", "var/lib/kubelet"}  # emptied dirs


@pytest.mark.parametrize(
    ("tamper", "words"),
    [
        ({"api_server": "10.9.9.9:6443"}, "dial tcp 10.100.0.1:6443: connect: connection refused"),
        ({"tokens": ["zzzzzz.zzzzzzzzzzzzzzzz"]}, 'for token ID "abcdef"'),
        ({"ca": True}, "cluster CA found in cluster-info ConfigMap is invalid: none of the"),
    ],
)
def test_kubeadm_discovery_checks_the_endpoint_token_and_ca_pin(
    fake: FakeHost, pin: str, tamper: dict[str, object], words: str
) -> None:
    import json

    if tamper.pop("ca", False):
        fakes_node.make_cluster(fake.fakes, API, TOKEN)  # another CA than the pin names
    described = json.loads((fake.fakes / "cluster.json").read_text())
    described.update(tamper)
    (fake.fakes / "cluster.json").write_text(json.dumps(described))
    write_config(fake, good_config(pin))
    before = snapshot(fake.root)
    result = kubeadm_join(fake)
    assert result.returncode == 1
    assert "error execution phase preflight: couldn't validate the identity" in result.stderr
    assert words in result.stderr
    assert snapshot(fake.root) == before


WG0 = """[Interface]
Address = 10.100.1.2/16
PrivateKey = {key}

[Peer]
PublicKey = {peer}
Endpoint = 127.0.0.1:41820
AllowedIPs = 10.100.0.0/16
PersistentKeepalive = 25
"""


@pytest.fixture
def wg(fake: FakeHost) -> FakeHost:
    """wireguard-tools on the fake root (its wg genkey and pubkey are the real wg's)."""
    if not Path(fakes_node.REAL_WG).exists():
        pytest.skip("wg not installed (apt-get install wireguard-tools)")
    assert fake.host.run(["apt-get", "install", "-y", "wireguard-tools"]).ok
    return fake


def keypair(fake: FakeHost) -> tuple[str, str]:
    private = fake.host.run(["wg", "genkey"]).stdout.strip()
    public = fake.host.run(["wg", "pubkey"], input=private + "\n").stdout.strip()
    return private, public


def write_wg0(fake: FakeHost, text: str, mode: int = 0o600) -> None:
    path = fake.root / "etc/wireguard/wg0.conf"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    path.chmod(mode)


@pytest.mark.parametrize(
    ("change", "words"),
    [
        (("Endpoint = 127.0.0.1:41820", "Endpoint = 127.0.0.1"), "Unable to parse endpoint"),
        (("PersistentKeepalive = 25", "Keepalive = 25"), "Line unrecognized: `Keepalive = 25'"),
        (("Address = 10.100.1.2/16", "Address = 10.100.1.2/99"), "any valid prefix"),
    ],
)
def test_wg_quick_refuses_a_config_wg_quick_refuses(
    wg: FakeHost, change: tuple[str, str], words: str
) -> None:
    key, _ = keypair(wg)
    write_wg0(wg, WG0.format(key=key, peer=keypair(wg)[1]).replace(*change))
    result = wg.host.run(["wg-quick", "up", "wg0"])
    assert result.returncode == 1 and words in result.stderr
    assert not wg.host.run(["wg", "show", "wg0", "latest-handshakes"]).ok


def test_wg_quick_up_down_and_wg_show_like_the_real_ones(wg: FakeHost) -> None:
    key, public = keypair(wg)
    peer = keypair(wg)[1]
    write_wg0(wg, WG0.format(key=key, peer=peer), mode=0o644)
    up = wg.host.run(["wg-quick", "up", "wg0"])
    assert up.ok and "Warning: `/etc/wireguard/wg0.conf' is world accessible" in up.stderr
    assert key not in up.stdout + up.stderr
    assert wg.host.run(["wg", "show", "wg0", "public-key"]).stdout.strip() == public
    shown = wg.host.run(["wg", "show", "wg0", "latest-handshakes"]).stdout.split()
    assert shown[0] == peer and int(shown[1]) > 0
    again = wg.host.run(["wg-quick", "up", "wg0"])
    assert again.returncode == 1 and "`wg0' already exists" in again.stderr
    assert wg.host.run(["wg-quick", "down", "wg0"]).ok
    down = wg.host.run(["wg-quick", "down", "wg0"])
    assert down.returncode == 1 and "is not a WireGuard interface" in down.stderr


def test_a_fake_answers_only_what_join_sends(fake: FakeHost, tmp_path: Path) -> None:
    install_kube_packages(fake, "kubeadm")
    assert fake.host.run(["apt-get", "install", "-y", "wireguard-tools"]).ok
    for argv in (["kubeadm", "join", "10.0.0.1:6443"], ["wg", "set", "wg0"], ["wg-quick", "save"]):
        assert fake.host.run(argv).returncode == 64
