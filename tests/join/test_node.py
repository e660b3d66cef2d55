"""join's node steps against the real hub: register, WireGuard peer, kubeadm join, daemon unit.

The hub is real (HTTP and TLS, real SIWE logins with a wallet key file on the fake root, a
real CA); kubeadm, wg-quick and systemctl are the stateful fakes of the fake root. Join must
leave a node the hub knows, with the address the hub gave in a wg0.conf (0600) that alone
holds the private key, the hub's join parameters in a JoinConfiguration (0600) that alone
holds the bootstrap token, and the units enabled; reset must take it all back, at the hub
too.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner, Result

from tests.join.conftest import FakeHost, snapshot
from tests.join.nodehub import (
    API_SERVER,
    HOSTNAME,
    KEY_FILE,
    TOKEN,
    WORLDLAND,
    Cluster,
    node_steps,
    owner_client,
    prepare_root,
    server_config,
    settings_for,
)
from tests.support.hub import RunningHub
from worldland_cli import config
from worldland_cli.auth.node import load_node
from worldland_cli.hubclient import HubRejected
from worldland_cli.join.journal import Journal
from worldland_cli.join.plan import plan_join
from worldland_cli.join.run import JoinFailed, join_host, reset_host
from worldland_cli.main import app
from worldland_cli.requirements.base import Status

NODE_STEPS = ["hub.registered", "vpn.wireguard", "kube.joined", "daemon.health"]
WG0 = "etc/wireguard/wg0.conf"
JOIN_CONFIG = "etc/worldland/kubeadm-join.yaml"
LABELS = "worldland.io/gpu-model=Tesla-T4,worldland.io/gpu-count=1"


def cli(*args: str) -> Result:
    return CliRunner().invoke(app, list(args))


def files_holding(root: Path, secret: str) -> list[str]:
    """Every file under root (journal, backups and logs included) that contains ``secret``."""
    found = []
    for directory, _, files in os.walk(root):
        for name in files:
            path = Path(directory) / name
            if not path.is_symlink() and secret.encode() in path.read_bytes():
                found.append(path.relative_to(root).as_posix())
    return sorted(found)


def private_key(root: Path) -> str:
    match = re.search(r"(?m)^PrivateKey = (\S+)$", (root / WG0).read_text())
    assert match is not None
    return match.group(1)


def test_the_plan_shows_the_node_steps_hides_secrets_and_asks_the_hub_nothing(
    fake: FakeHost, http_hub: RunningHub, cluster: Cluster, nvml_t4: str
) -> None:
    prepare_root(fake, cluster)
    before = snapshot(fake.root)
    plan = plan_join(fake.host, node_steps(), settings_for(http_hub))
    assert [s.id for s in plan.steps] == NODE_STEPS
    described = [[a.describe() for a in s.actions] for s in plan.steps]
    assert described[0] == [
        f"log in to the hub at {http_hub.url}, register this node, fetch its certificate"
    ]
    assert described[1][0] == "install wireguard-tools"
    assert described[1][2:] == ["bring wg0 up (wg-quick up wg0)", "enable wg-quick@wg0"]
    assert described[2] == [
        "write /etc/worldland/kubeadm-join.yaml (mode 600): kubeadm's JoinConfiguration "
        "from the hub",
        "join the cluster: kubeadm join --config /etc/worldland/kubeadm-join.yaml",
    ]
    assert described[3] == [
        "write /etc/systemd/system/worldland-node.service (mode 644)",
        "reload systemd's unit files (systemctl daemon-reload)",
        "enable and start worldland-node.service",  # this worldland has the daemon
    ]
    wg_diff = plan.steps[1].diffs[1]
    assert "+PrivateKey = (made on this host when join runs; never shown)" in wg_diff
    join_diff = plan.steps[2].diffs[0]
    assert '+    token: "(from the hub when join runs; never shown)"' in join_diff
    assert '+    node-labels: "worldland.io/gpu-model=Tesla-T4,worldland.io/gpu-count=1"' in (
        join_diff
    )
    assert f'+  name: "{HOSTNAME}"' in join_diff
    unit_diff = plan.steps[3].diffs[0]
    assert f"+ExecStart={WORLDLAND} daemon" in unit_diff
    assert "+Restart=always" in unit_diff
    assert snapshot(fake.root) == before  # no login, no session.json, nothing
    changes = [c for c in fake.calls() if not c.startswith("systemctl is-enabled ")]
    # Only the test's own (kubeadm from pkgs.k8s.io, as a person installs it), and reads.
    assert changes == ["apt-get update", "apt-get install -y kubeadm"]
    with owner_client(http_hub, fake) as client:
        assert client.list_nodes() == []


def test_join_makes_a_node_of_the_hub_and_reset_takes_it_all_back(
    fake: FakeHost, node_hub: RunningHub, cluster: Cluster, nvml_t4: str
) -> None:
    prepare_root(fake, cluster)
    before = snapshot(fake.root)
    settings = settings_for(node_hub)
    result = join_host(fake.host, fake.journal, node_steps(), settings)
    assert result.done == NODE_STEPS
    assert len(result.warnings) == 1
    assert result.warnings[0].startswith(  # started; nothing answers in a fake root
        "daemon.health: worldland-node.service is installed and enabled, but "
    )

    # The hub knows the node, by the id node.json names.
    node = load_node(fake.host)
    assert node is not None and node.hub == node_hub.url
    with owner_client(node_hub, fake) as client:
        assert [n.node_id for n in client.list_nodes()] == [node.node_id]

    # wg0.conf: 0600, the hub's address and server, the private key there and only there.
    wg0 = fake.root / WG0
    assert wg0.stat().st_mode & 0o777 == 0o600
    text = wg0.read_text()
    address = re.search(r"(?m)^Address = (10\.100\.1\.\d+)/16$", text)
    assert address is not None
    assert "AllowedIPs = 10.100.0.0/16" in text and "PersistentKeepalive = 25" in text
    with node_hub.client() as anonymous:
        info = anonymous.get("/v1/info").json()
    assert f"PublicKey = {info['vpn_server_public_key']}" in text
    assert f"Endpoint = {info['vpn_endpoint']}" in text
    public = fake.host.run(["wg", "show", "wg0", "public-key"]).stdout.strip()
    served = server_config(node_hub)
    assert f"# node {node.node_id}\nPublicKey = {public}\nAllowedIPs = {address[1]}/32" in served
    secret = private_key(fake.root)
    assert files_holding(fake.root, secret) == [WG0]

    # The JoinConfiguration: 0600, the hub's parameters, the token there and only there.
    join_config = fake.root / JOIN_CONFIG
    assert join_config.stat().st_mode & 0o777 == 0o600
    doc = yaml.safe_load(join_config.read_text())
    assert doc["apiVersion"] == "kubeadm.k8s.io/v1beta3" and doc["kind"] == "JoinConfiguration"
    assert doc["discovery"]["bootstrapToken"] == {
        "apiServerEndpoint": API_SERVER,
        "token": TOKEN,
        "caCertHashes": [cluster.pin],
    }
    assert doc["nodeRegistration"] == {
        "name": HOSTNAME,
        "criSocket": "unix:///run/containerd/containerd.sock",
        "kubeletExtraArgs": {"node-labels": LABELS},
    }
    assert files_holding(fake.root, TOKEN) == [JOIN_CONFIG]
    kubelet = yaml.safe_load((fake.root / "etc/kubernetes/kubelet.conf").read_text())
    assert kubelet["clusters"][0]["cluster"]["server"] == f"https://{API_SERVER}"
    flags = (fake.root / "var/lib/kubelet/kubeadm-flags.env").read_text()
    assert "--node-labels=worldland.io/gpu-model=Tesla-T4,worldland.io/gpu-count=1" in flags
    assert not (fake.root / "etc/kubernetes/bootstrap-kubelet.conf").exists()

    # The units: wg-quick@wg0 and the node daemon's, enabled the way systemd links them.
    wants = fake.root / "etc/systemd/system/multi-user.target.wants"
    assert os.readlink(wants / "wg-quick@wg0.service") == "/lib/systemd/system/wg-quick@.service"
    assert os.readlink(wants / "worldland-node.service") == (
        "/etc/systemd/system/worldland-node.service"
    )
    unit = (fake.root / "etc/systemd/system/worldland-node.service").read_text()
    assert f"\nExecStart={WORLDLAND} daemon\n" in unit and "\nRestart=always\n" in unit

    # Doctor agrees, but for the daemon: the unit is there and this worldland has the daemon,
    # yet nothing answers on :8444 in a fake root, which doctor reports as a failure. A
    # second join has nothing to do: the unit is join's part.
    doctor = {r.id: r.check(fake.host) for r in node_steps(joining=False)}
    assert {i: f.status for i, f in doctor.items()} == {
        "hub.registered": Status.OK,
        "vpn.wireguard": Status.OK,
        "kube.joined": Status.OK,
        "daemon.health": Status.FAIL,
    }
    assert "sudo systemctl restart worldland-node.service" in (doctor["daemon.health"].remedy or "")
    assert plan_join(fake.host, node_steps(), settings).empty

    # Reset: every file back, the node gone from the hub with its VPN address.
    undone = reset_host(fake.host, fake.journal, purge=True)
    assert undone.failures == []
    assert snapshot(fake.root) == before
    with owner_client(node_hub, fake) as client:
        assert client.list_nodes() == []
        with pytest.raises(HubRejected) as gone:
            client.heartbeat(node.node_id)
    assert gone.value.status == 404
    assert public not in server_config(node_hub)
    logs = [p for p in fake.root.glob("var/lib/worldland/join.reset-*/logs/*kube.joined.log")]
    assert any("/etc/cni/net.d" in p.read_text() for p in logs)


def test_a_hub_that_refuses_the_login_stops_join_at_the_first_hub_step(
    fake: FakeHost,
    http_hub: RunningHub,
    cluster: Cluster,
    nvml_t4: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    prepare_root(fake, cluster)
    before = snapshot(fake.root)
    monkeypatch.setenv("WORLDLAND_CHAIN_ID", "5")  # the hub allows chain 1 only
    with pytest.raises(JoinFailed) as failed:
        join_host(fake.host, fake.journal, node_steps(), settings_for(http_hub))
    message = failed.value.message
    assert message.startswith(f"hub.registered: registering with the hub at {http_hub.url}: ")
    assert "SIWE authentication failed" in message and "chain" in message
    assert failed.value.hint is not None and "var/lib/worldland/join/logs/" in failed.value.hint
    assert [(e.step, e.state) for e in fake.journal.entries()] == [("hub.registered", "failed")]
    assert reset_host(fake.host, fake.journal, purge=True).failures == []
    assert snapshot(fake.root) == before


def test_kubeadm_failing_names_the_step_and_its_log_and_reset_still_works(
    fake: FakeHost, http_hub: RunningHub, cluster: Cluster, nvml_t4: str, tmp_path: Path
) -> None:
    prepare_root(fake, cluster)
    # A cluster that no longer knows the hub's token (it expired there, say).
    described = json.loads((fake.fakes / "cluster.json").read_text())
    described["tokens"] = ["zzzzzz.zzzzzzzzzzzzzzzz"]
    (fake.fakes / "cluster.json").write_text(json.dumps(described))
    before = snapshot(fake.root)
    with pytest.raises(JoinFailed) as failed:
        join_host(fake.host, fake.journal, node_steps(), settings_for(http_hub))
    assert failed.value.message == (
        "kube.joined: `kubeadm join --config /etc/worldland/kubeadm-join.yaml` failed: "
        "error execution phase preflight: couldn't validate the identity of the API Server: "
        'could not find a JWS signature in the cluster-info ConfigMap for token ID "abcdef"'
    )
    hint = failed.value.hint or ""
    log = Path(hint.split("what it printed is in ")[1].split(";")[0])
    assert log.name.endswith("kube.joined.log")
    assert "$ kubeadm join --config /etc/worldland/kubeadm-join.yaml" in log.read_text()
    node = load_node(fake.host)
    assert node is not None
    assert reset_host(fake.host, fake.journal, purge=True).failures == []
    assert snapshot(fake.root) == before
    with owner_client(http_hub, fake) as client:
        assert client.list_nodes() == []


def test_a_node_registered_before_join_stays_registered_after_reset(
    fake: FakeHost, http_hub: RunningHub, cluster: Cluster, nvml_t4: str
) -> None:
    """`worldland register` first, then join (which only has the VPN, kubeadm and daemon
    left to do): reset releases the VPN peer but leaves the node registered."""
    from worldland_cli.auth.provider import register_this_node

    prepare_root(fake, cluster)
    settings = settings_for(http_hub)
    from worldland_cli import config
    from worldland_cli.auth.relogin import SignIn

    register_this_node(
        config.load(), SignIn(hub=http_hub.url, private_key_file=KEY_FILE), host=fake.host
    )
    node = load_node(fake.host)
    assert node is not None
    before = snapshot(fake.root)
    result = join_host(fake.host, fake.journal, node_steps(), settings)
    assert result.met == ["hub.registered"] and result.done == NODE_STEPS[1:]
    public = fake.host.run(["wg", "show", "wg0", "public-key"]).stdout.strip()
    assert public in server_config(http_hub)
    assert reset_host(fake.host, fake.journal, purge=True).failures == []
    assert snapshot(fake.root) == before
    assert public not in server_config(http_hub)
    with owner_client(http_hub, fake) as client:
        assert [n.node_id for n in client.list_nodes()] == [node.node_id]


@contextmanager
def crash_after(events: int) -> Iterator[None]:
    """The process 'dies' right after the journal's ``events``-th line (as a kill would)."""
    real = Journal._append
    written = 0

    def append(self: Journal, doc: dict[str, object]) -> None:
        nonlocal written
        real(self, doc)
        written += 1
        if written == events:
            raise KeyboardInterrupt

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(Journal, "_append", append)
        with pytest.raises(KeyboardInterrupt):
            yield


# 10 actions: each a begin and a done line, and a facts line for the two that tell the hub
# something (the node id, the public key): 22 lines. A crash after any of them.
@pytest.mark.slow
@pytest.mark.parametrize("events", range(1, 23))
def test_a_join_cut_short_anywhere_ends_the_same_and_resets_clean(
    fake: FakeHost,
    http_hub: RunningHub,
    cluster: Cluster,
    nvml_t4: str,
    events: int,
) -> None:
    prepare_root(fake, cluster)
    before = snapshot(fake.root)
    settings = settings_for(http_hub)
    with crash_after(events):
        join_host(fake.host, fake.journal, node_steps(), settings)
    join_host(fake.host, fake.journal, node_steps(), settings)
    assert all(r.check(fake.host).status is not Status.FAIL for r in node_steps())
    public = fake.host.run(["wg", "show", "wg0", "public-key"]).stdout.strip()
    assert public in server_config(http_hub)
    assert reset_host(fake.host, fake.journal, purge=True).failures == []
    assert snapshot(fake.root) == before
    with owner_client(http_hub, fake) as client:
        assert client.list_nodes() == []


@pytest.mark.parametrize("events", [1, 2, 3, 6, 7, 15, 16])
def test_reset_after_a_join_cut_short_undoes_it_at_the_hub_too(
    fake: FakeHost,
    http_hub: RunningHub,
    cluster: Cluster,
    nvml_t4: str,
    events: int,
) -> None:
    prepare_root(fake, cluster)
    before = snapshot(fake.root)
    with crash_after(events):
        join_host(fake.host, fake.journal, node_steps(), settings_for(http_hub))
    assert reset_host(fake.host, fake.journal, purge=True).failures == []
    assert snapshot(fake.root) == before
    with owner_client(http_hub, fake) as client:
        assert client.list_nodes() == []


def test_the_cli_joins_with_the_hub_flags_says_what_is_left_and_resets(
    fake: FakeHost,
    tls_hub: RunningHub,
    cluster: Cluster,
    nvml_t4: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(
        "worldland_cli.requirements.all_requirements",
        lambda **kw: node_steps(joining=kw.get("joining", False)),
    )
    prepare_root(fake, cluster)
    before = snapshot(fake.root)
    root = str(fake.root)
    flags = ["--hub", tls_hub.url, "--hub-ca", str(tls_hub.ca_cert), "--private-key-file", KEY_FILE]
    dry = cli("join", "--dry-run", "--root", root, *flags, "--json")
    assert dry.exit_code == 0, dry.output
    steps = json.loads(dry.stdout)["plan"]["steps"]
    assert [s["id"] for s in steps] == NODE_STEPS
    assert steps[0]["actions"][0]["shell"] == (
        f"sudo worldland register --hub {tls_hub.url} --hub-ca {tls_hub.ca_cert} "
        f"--private-key-file {KEY_FILE} --cert-dir {config.default_cert_dir()}"
    )
    assert steps[2]["actions"][1]["shell"] == (
        "sudo kubeadm join --config /etc/worldland/kubeadm-join.yaml"
    )
    done = cli("join", "--root", root, "--yes", *flags)
    assert done.exit_code == 0, done.output
    assert "Joined: 4 step(s) done" in done.stdout
    assert "note: daemon.health: worldland-node.service is installed and enabled" in (
        " ".join(done.stdout.split())
    )
    secret = private_key(fake.root)
    assert secret not in done.output and TOKEN not in done.output
    assert cli("join", "--root", root, "--yes", *flags).stdout.startswith("Nothing to do")
    undone = cli("reset", "--root", root, "--yes", "--purge", "--json")
    assert undone.exit_code == 0, undone.output
    assert json.loads(undone.stdout)["failures"] == []
    assert snapshot(fake.root) == before


def test_a_step_undone_behind_joins_back_is_planned_alone(
    fake: FakeHost, http_hub: RunningHub, cluster: Cluster, nvml_t4: str
) -> None:
    """A certificate gone and wg-quick@wg0 disabled: doctor says so, and the next join does
    just those two things; reset still takes everything back."""
    prepare_root(fake, cluster)
    before = snapshot(fake.root)
    settings = settings_for(http_hub)
    join_host(fake.host, fake.journal, node_steps(), settings)
    node = load_node(fake.host)
    assert node is not None
    cert = fake.root / config.default_cert_dir().as_posix().lstrip("/") / "node.crt"
    cert.unlink()
    assert fake.host.run(["systemctl", "disable", "wg-quick@wg0"]).ok
    doctor = {r.id: r.check(fake.host) for r in node_steps(joining=False)}
    assert doctor["hub.registered"].status is Status.FAIL
    assert "no certificate in" in doctor["hub.registered"].observed
    assert doctor["vpn.wireguard"].status is Status.WARN
    assert doctor["vpn.wireguard"].remedy == "sudo systemctl enable wg-quick@wg0"
    plan = plan_join(fake.host, node_steps(), settings)
    assert [[a.kind for a in s.actions] for s in plan.steps] == [
        ["register-node"],
        ["enable-unit"],
    ]
    again = join_host(fake.host, fake.journal, node_steps(), settings)
    assert again.done == ["hub.registered", "vpn.wireguard"]
    renewed = load_node(fake.host)
    assert cert.exists() and renewed is not None and renewed.node_id == node.node_id
    assert reset_host(fake.host, fake.journal, purge=True).failures == []
    assert snapshot(fake.root) == before
    with owner_client(http_hub, fake) as client:
        assert client.list_nodes() == []
