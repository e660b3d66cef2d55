"""Checks that only mean something after join: the GPU seen by Kubernetes (the real
kubernetes client against tests/support/fakekube.py) and the daemon's mTLS /health."""

from __future__ import annotations

import contextlib
import json
import shutil
import ssl
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from tests.doctor.hosts import HOSTNAME, write
from tests.support.fakekube import Cluster, start_fake_kube
from tests.support.pki import Pki, PkiFiles
from worldland_cli import config
from worldland_cli.host import Host
from worldland_cli.main import app
from worldland_cli.requirements.base import Status
from worldland_cli.requirements.daemon import DaemonHealth
from worldland_cli.requirements.kube import GPU_REMEDY, KUBELET_CONF, GpuAllocatable

PKI_DIR = "/var/lib/kubelet/pki"


def _kubelet_conf(root: Path, url: str, ca_pem: str | None = None) -> None:
    """kubelet.conf as kubeadm writes it: client cert and key by file path."""
    import base64

    cluster: dict[str, Any] = {"server": url}
    if ca_pem:
        cluster["certificate-authority-data"] = base64.b64encode(ca_pem.encode()).decode()
    doc = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "default-cluster", "cluster": cluster}],
        "contexts": [
            {
                "name": "default-context",
                "context": {
                    "cluster": "default-cluster",
                    "namespace": "default",
                    "user": "default-auth",
                },
            }
        ],
        "current-context": "default-context",
        "preferences": {},
        "users": [
            {
                "name": "default-auth",
                "user": {
                    "client-certificate": f"{PKI_DIR}/kubelet-client-current.pem",
                    "client-key": f"{PKI_DIR}/kubelet-client-current.pem",
                },
            }
        ],
    }
    write(root, KUBELET_CONF, json.dumps(doc, indent=2))


@pytest.fixture
def pki(tmp_path: Path) -> PkiFiles:
    return Pki.make().write_all(tmp_path / "pki")


@pytest.fixture
def joined_root(root: Path, pki: PkiFiles) -> Path:
    """The kubelet's client cert+key in one PEM file, as kubelet rotates it."""
    pem = pki.client_cert.read_text() + pki.client_key.read_text()
    write(root, f"{PKI_DIR}/kubelet-client-current.pem", pem, 0o600)
    return root


def test_gpu_allocatable_skips_before_join(host: Host) -> None:
    finding = GpuAllocatable().check(host)
    assert finding.status is Status.SKIP
    assert KUBELET_CONF in finding.observed


@pytest.mark.parametrize(
    ("allocatable", "status"), [({"nvidia.com/gpu": "1"}, Status.OK), ({}, Status.FAIL)]
)
def test_gpu_allocatable_reads_this_node(
    host: Host, joined_root: Path, allocatable: dict[str, str], status: Status
) -> None:
    cluster = Cluster()
    cluster.add_node(HOSTNAME, allocatable=allocatable)
    cluster.add_node("other-node", allocatable={"nvidia.com/gpu": "8"})
    with start_fake_kube(cluster) as kube:
        _kubelet_conf(joined_root, kube.url)
        finding = GpuAllocatable().check(host)
    assert finding.status is status, finding.observed
    assert ("GET", f"/api/v1/nodes/{HOSTNAME}") in cluster.requests
    if status is Status.FAIL:
        assert finding.remedy == GPU_REMEDY
        assert "Insufficient nvidia.com/gpu" in finding.observed
    else:
        assert finding.details["gpus"] == 1


def test_gpu_allocatable_over_tls_with_the_cluster_ca(
    host: Host, joined_root: Path, pki: PkiFiles
) -> None:
    cluster = Cluster()
    cluster.add_node(HOSTNAME, allocatable={"nvidia.com/gpu": "2"})
    tls = (pki.server_cert, pki.server_key, pki.ca_cert.read_text())
    with start_fake_kube(cluster, tls=tls) as kube:
        assert kube.url.startswith("https://")
        _kubelet_conf(joined_root, kube.url, kube.ca_pem)
        finding = GpuAllocatable().check(host)
    assert finding.status is Status.OK, finding.observed
    assert "allocatable = 2" in finding.observed


def test_gpu_allocatable_unregistered_node_and_missing_cert(host: Host, joined_root: Path) -> None:
    with start_fake_kube(Cluster()) as kube:
        _kubelet_conf(joined_root, kube.url)
        missing = GpuAllocatable().check(host)
        assert missing.status is Status.FAIL
        assert f"node {HOSTNAME!r} is not registered" in missing.observed
        (joined_root / PKI_DIR.lstrip("/") / "kubelet-client-current.pem").unlink()
        no_cert = GpuAllocatable().check(host)
    assert no_cert.status is Status.FAIL
    assert "kubelet-client-current.pem" in no_cert.observed


# ------------------------------------------------------------------------ daemon.health


@contextlib.contextmanager
def mtls_health_server(pki: PkiFiles, status: int = 200) -> Iterator[str]:
    """A node API stand-in that, like the daemon, demands a client cert from the hub CA."""

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            """Quiet."""

        def do_GET(self) -> None:
            body = json.dumps({"status": "ok" if status == 200 else "degraded"}).encode()
            self.send_response(status if self.path == "/health" else 404)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(pki.server_cert, pki.server_key)
    ctx.load_verify_locations(pki.ca_cert)
    ctx.verify_mode = ssl.CERT_REQUIRED
    server.socket = ctx.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
    )
    thread.start()
    try:
        yield f"https://127.0.0.1:{server.server_address[1]}/health"
    finally:
        server.shutdown()
        server.server_close()


def _install_certs(root: Path, pki: PkiFiles, with_client: bool = True) -> str:
    cert_dir = "/root/.worldland/certs"
    target = root / cert_dir.lstrip("/")
    target.mkdir(parents=True)
    shutil.copy(pki.ca_cert, target / "ca.crt")
    if with_client:
        shutil.copy(pki.client_cert, target / "node.crt")
        shutil.copy(pki.client_key, target / "node.key")
    return cert_dir


def test_daemon_health_skips_before_join(host: Host) -> None:
    finding = DaemonHealth(cert_dir="/root/.worldland/certs").check(host)
    assert finding.status is Status.SKIP


def test_daemon_health_over_mtls(host: Host, root: Path, pki: PkiFiles) -> None:
    cert_dir = _install_certs(root, pki)
    with mtls_health_server(pki) as url:
        finding = DaemonHealth(url=url, cert_dir=cert_dir).check(host)
    assert finding.status is Status.OK, finding.observed
    assert '"status": "ok"' in finding.observed


def test_daemon_health_unhealthy_and_unreachable(host: Host, root: Path, pki: PkiFiles) -> None:
    cert_dir = _install_certs(root, pki)
    with mtls_health_server(pki, status=503) as url:
        sick = DaemonHealth(url=url, cert_dir=cert_dir).check(host)
    assert sick.status is Status.FAIL
    assert "answered 503" in sick.observed
    gone = DaemonHealth(url=url, cert_dir=cert_dir).check(host)
    assert gone.status is Status.FAIL
    # Registered, not joined: no unit runs the daemon yet, so a restart would not help.
    assert "worldland-node.service is not installed" in gone.observed
    assert gone.remedy is not None and gone.remedy.startswith(
        "sudo worldland join --yes --only daemon.health"
    )
    write(root, "/etc/systemd/system/worldland-node.service", "[Service]\nExecStart=/bin/true\n")
    stopped = DaemonHealth(url=url, cert_dir=cert_dir).check(host)
    assert "systemctl restart worldland-node.service" in (stopped.remedy or "")


def test_daemon_health_rejects_a_server_outside_the_hub_ca(
    host: Host, root: Path, pki: PkiFiles, tmp_path: Path
) -> None:
    cert_dir = _install_certs(root, pki)
    stranger = Pki.make().write_all(tmp_path / "stranger")
    with mtls_health_server(stranger) as url:
        finding = DaemonHealth(url=url, cert_dir=cert_dir).check(host)
    assert finding.status is Status.FAIL
    assert "TLS failed" in finding.observed


def test_daemon_health_without_client_cert_is_refused(
    host: Host, root: Path, pki: PkiFiles
) -> None:
    cert_dir = _install_certs(root, pki, with_client=False)
    write(root, KUBELET_CONF, "apiVersion: v1\n")
    with mtls_health_server(pki) as url:
        finding = DaemonHealth(url=url, cert_dir=cert_dir).check(host)
    assert finding.status is Status.FAIL


def test_doctor_reads_the_configured_cert_dir(root: Path, pki: PkiFiles) -> None:
    """With cert_dir configured, doctor's daemon check finds the node's certificate there
    instead of saying "not joined yet" about ~/.worldland/certs."""
    config.set_value("cert_dir", "/srv/node-certs")
    target = root / "srv" / "node-certs"
    target.mkdir(parents=True)
    shutil.copy(pki.client_cert, target / "node.crt")
    res = CliRunner().invoke(app, ["doctor", "--json", "--only", "daemon", "--root", str(root)])
    daemon = json.loads(res.stdout)["checks"][0]
    assert daemon["id"] == "daemon.health"
    assert daemon["status"] != "skip", daemon["observed"]
