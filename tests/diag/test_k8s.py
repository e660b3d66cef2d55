"""`diag k8s` against the fake API server (real kubernetes client) and fake journalctl/systemctl."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tests.diag.conftest import ToolMaker
from tests.support.fakekube import Cluster, FakeKube, start_fake_kube
from tests.support.pki import Pki, cert_pem, key_pem
from worldland_cli.diag.base import Finding, Status
from worldland_cli.diag.k8s import CNI_REMEDY, probe_k8s
from worldland_cli.host import Host
from worldland_cli.main import app

NODE = "gpu-node-1"
CNI_LINE = (
    "2024-05-02T10:01:07+0000 gpu-node-1 kubelet[812]: E0502 10:01:07.441 812 "
    'pod_workers.go:1298] "Error syncing pod" err="failed to \\"CreatePodSandbox\\" for '
    '\\"cuda-job\\": rpc error: code = Unknown desc = failed to setup network for sandbox: '
    'plugin type=\\"bridge\\" failed (add): failed to set bridge addr: \\"cni0\\" already '
    'has an IP address different from 10.244.1.1/24"'
)
OK_LINE = (
    "2024-05-02T10:00:00+0000 gpu-node-1 kubelet[812]: I0502 10:00:00.1 812 "
    'kubelet_node_status.go:73] "Successfully registered node" node="gpu-node-1"'
)


@pytest.fixture
def kube(root: Path) -> Iterator[FakeKube]:
    with start_fake_kube(Cluster()) as fake:
        fake.write_kubeconfig(
            root / "etc/kubernetes/kubelet.conf", user={"token": "kubelet-bootstrap-token"}
        )
        yield fake


@pytest.fixture
def units(tool: ToolMaker, tmp_path: Path) -> Path:
    """Per-unit journals the fake journalctl prints; kubelet active per systemctl show."""
    logs = tmp_path / "journal"
    logs.mkdir()
    (logs / "kubelet").write_text(OK_LINE + "\n")
    tool("journalctl", f'f="{logs}/$2"; [ -f "$f" ] && cat "$f"; exit 0')
    systemctl(tool, "ActiveState=active\\nSubState=running\\nNRestarts=0\\nResult=success")
    return logs


def systemctl(tool: ToolMaker, show: str) -> None:
    """kubelet installed and enabled; ``systemctl show kubelet`` prints ``show``."""
    tool("systemctl", f"[ \"$1\" = is-enabled ] && {{ echo enabled; exit 0; }}; printf '{show}\\n'")


def test_kubelet_client_cert_is_read_under_the_root(
    host: Host, root: Path, pki: Pki, units: Path, tmp_path: Path
) -> None:
    """kubelet.conf names /var/lib/kubelet/pki/...: that is the inspected system's file, not
    this machine's, so under --root it must be read from the root."""
    pem_path = "/var/lib/kubelet/pki/kubelet-client-current.pem"
    pem = root / pem_path.lstrip("/")
    pem.parent.mkdir(parents=True)
    pem.write_bytes(cert_pem(pki.node) + key_pem(pki.node_key))
    cluster = Cluster()
    cluster.add_node(NODE, allocatable={"nvidia.com/gpu": "1"})
    # Over https, as a real API server: only then does the client load the cert files.
    crt, key, ca = pki.write_server(tmp_path / "server")
    with start_fake_kube(cluster, tls=(crt, key, ca.read_text())) as fake:
        fake.write_kubeconfig(
            root / "etc/kubernetes/kubelet.conf",
            user={"client-certificate": pem_path, "client-key": pem_path},
        )
        c = checks(host)
    assert c["k8s.api"].status is Status.OK, c["k8s.api"].observed
    assert c["k8s.gpu-allocatable"].status is Status.OK


def checks(host: Host) -> dict[str, Finding]:
    return {c.id: c for c in probe_k8s(host, 3.0, NODE).checks}


def test_healthy_gpu_node(host: Host, kube: FakeKube, units: Path) -> None:
    kube.cluster.add_node(NODE, allocatable={"nvidia.com/gpu": "1"})
    kube.cluster.add_pod(
        "nvidia-device-plugin-ds-x7k2p",
        "kube-system",
        labels={"name": "nvidia-device-plugin-ds"},
        node_name=NODE,
        log="Registered device plugin for 'nvidia.com/gpu' with Kubelet\n",
    )
    report = probe_k8s(host, 3.0, NODE)
    c = {x.id: x for x in report.checks}
    for cid in (
        "k8s.kubelet",
        "k8s.kubelet-log",
        "k8s.api",
        "k8s.node",
        "k8s.gpu-allocatable",
        "k8s.device-plugin",
        "k8s.events",
        "k8s.cni",
    ):
        assert c[cid].status is Status.OK, c[cid]
    assert (
        "Registered device plugin"
        in report.data["device_plugin_logs"]["nvidia-device-plugin-ds-x7k2p"]
    )
    # The API was called as the kubelet, with the kubelet's own credentials.
    assert ("GET", f"/api/v1/nodes/{NODE}") in kube.cluster.requests


def test_seed_failures_are_recognised_with_their_remedies(
    host: Host, kube: FakeKube, units: Path
) -> None:
    (units / "kubelet").write_text(OK_LINE + "\n" + CNI_LINE + "\n")
    kube.cluster.add_node(NODE, conditions={"Ready": "False"})
    kube.cluster.add_event(
        "default",
        "Pod/train-1",
        "FailedScheduling",
        "0/3 nodes are available: 3 Insufficient nvidia.com/gpu.",
    )
    c = checks(host)
    assert c["k8s.cni"].status is Status.FAIL and c["k8s.cni"].remedy == CNI_REMEDY
    assert "sudo ip link delete cni0" in CNI_REMEDY and "/etc/cni/net.d/*" in CNI_REMEDY
    assert c["k8s.gpu-allocatable"].status is Status.FAIL
    assert "nvidia-ctk runtime configure" in (c["k8s.gpu-allocatable"].remedy or "")
    assert c["k8s.node"].status is Status.FAIL and "NotReady" in c["k8s.node"].observed
    assert c["k8s.device-plugin"].status is Status.FAIL
    assert (
        c["k8s.events"].status is Status.WARN and "Pod/default/train-1" in c["k8s.events"].observed
    )
    assert c["k8s.kubelet-log"].status is Status.WARN


def test_cni_error_found_in_events_alone(host: Host, kube: FakeKube, units: Path) -> None:
    kube.cluster.add_node(NODE, allocatable={"nvidia.com/gpu": "1"})
    kube.cluster.add_event(
        "default",
        "Pod/cuda-job",
        "FailedCreatePodSandBox",
        'failed to set bridge addr: "cni0" already has an IP address different from 10.244.2.1/24',
    )
    assert checks(host)["k8s.cni"].status is Status.FAIL


def test_not_joined_and_kubelet_down(host: Host, tool: ToolMaker, units: Path) -> None:
    systemctl(tool, "ActiveState=activating\\nSubState=auto-restart\\nNRestarts=14")
    c = checks(host)
    assert c["k8s.api"].status is Status.SKIP and "not joined" in c["k8s.api"].observed
    assert c["k8s.kubelet"].status is Status.FAIL and "14 restart" in c["k8s.kubelet"].observed


def test_a_hanging_journalctl_is_cut_and_cli_reports_json(
    root: Path, bindir: Path, tool: ToolMaker, units: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    tool("journalctl", "sleep 30")
    monkeypatch.setenv("PATH", f"{bindir}:/usr/bin:/bin")
    res = CliRunner().invoke(
        app, ["diag", "k8s", "--root", str(root), "--node", NODE, "--timeout", "0.3", "--json"]
    )
    doc = json.loads(res.stdout)
    by_id = {c["id"]: c for c in doc["checks"]}
    # journalctl is killed at its timeout; the probe goes on and reports what it could.
    assert by_id["k8s.kubelet-log"]["status"] == "skip"
    assert by_id["k8s.kubelet"]["status"] == "ok"
    assert res.exit_code == 0


NO_UNIT = (
    'case "$1" in is-enabled) echo "Failed to get unit file state for kubelet.service: '
    'No such file or directory" >&2; exit 1;; '
    "show) printf 'ActiveState=inactive\\nSubState=dead\\nNRestarts=0\\n';; esac"
)
NO_SYSTEMD = (
    "echo 'System has not been booted with systemd as init system (PID 1). Can'\\''t operate.'"
    " >&2; echo 'Failed to connect to bus: Host is down' >&2; exit 1"
)


@pytest.mark.parametrize(
    ("script", "diag_status", "doctor_status"),
    [(NO_UNIT, Status.FAIL, Status.FAIL), (NO_SYSTEMD, Status.SKIP, Status.SKIP)],
)
def test_diag_and_doctor_say_the_same_about_a_missing_kubelet(
    host: Host, tool: ToolMaker, script: str, diag_status: Status, doctor_status: Status
) -> None:
    """No kubelet: diag once said "restart kubelet" where doctor said it was not installed."""
    from worldland_cli.requirements.kube import KubeletEnabled

    tool("systemctl", script)
    tool("journalctl", "echo '-- No entries --'")
    c = checks(host)
    doctor = KubeletEnabled().check(host)
    assert (c["k8s.kubelet"].status, doctor.status) == (diag_status, doctor_status)
    assert doctor.observed.split(":")[0] in c["k8s.kubelet"].observed
    assert "restart" not in (c["k8s.kubelet"].remedy or "")
    assert c["k8s.kubelet-log"].status is Status.SKIP


def test_an_empty_journal_is_not_a_clean_one(host: Host, tool: ToolMaker, units: Path) -> None:
    """journalctl prints "-- No entries --" for an empty journal: that is no evidence."""
    tool("journalctl", "echo '-- No entries --'")
    c = checks(host)
    assert c["k8s.kubelet"].status is Status.OK
    assert c["k8s.kubelet-log"].status is Status.SKIP
    assert "no kubelet journal entries" in c["k8s.kubelet-log"].observed
