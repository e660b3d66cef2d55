"""The node API over TLS, /metrics, and the certificate: served, checked, renewed in place.

A real daemon process with the node certificate the real hub issued. /health answers anyone
who reaches the port (the seed's `curl -k`); /v1/* only a client with a certificate from the
hub CA: none is refused by the API (403), one from another CA by the TLS handshake.
"""

from __future__ import annotations

import socket
import ssl
import time
from pathlib import Path

import httpx
import pytest
from cryptography import x509
from prometheus_client.parser import text_string_to_metric_families
from typer.testing import CliRunner

from tests.daemon.conftest import Rig, rig_for
from tests.support.daemon import DaemonProcess, cli, running, wait_for
from tests.support.fakekube import FakeKube
from tests.support.hub import start_hub
from tests.support.pki import Pki
from worldland_cli.host import Host
from worldland_cli.main import app
from worldland_cli.requirements.base import Status
from worldland_cli.requirements.daemon import DaemonHealth


def served_serial(daemon: DaemonProcess) -> int:
    """The serial of the certificate the node API presents to a new connection."""
    context = ssl.create_default_context(cafile=str(daemon.node.certs / "ca.crt"))
    context.check_hostname = False
    with (
        socket.create_connection(("127.0.0.1", daemon.api_port), timeout=10) as raw,
        context.wrap_socket(raw) as tls,
    ):
        der = tls.getpeercert(binary_form=True)
    assert der is not None
    return x509.load_der_x509_certificate(der).serial_number


def disk_serial(rig: Rig) -> int:
    pem = (rig.node.certs / "node.crt").read_bytes()
    return x509.load_pem_x509_certificate(pem).serial_number


def test_health_is_open_and_v1_needs_a_certificate_from_the_hub_ca(
    rig: Rig, tmp_path: Path
) -> None:
    with running(rig.start()) as daemon:
        wait_for(lambda: daemon.health()["hub_reachable"] is True)
        health = daemon.health()  # no client certificate, as `curl -k` asks
        assert health["ok"] is True and health["version"]
        assert health["node_id"] == rig.node.node_id
        assert health["outbox_depth"] == 0
        assert health["certificate_expires_in_s"] > 0
        assert served_serial(daemon) == disk_serial(rig)  # the node's own certificate

        with daemon.client() as anonymous:
            for path in ("/v1/usage", "/v1/gpus"):
                assert anonymous.get(path).status_code == 403
        stranger = Pki.make().write_all(tmp_path / "stranger")
        with (
            pytest.raises(httpx.TransportError),
            daemon.client((str(stranger.client_cert), str(stranger.client_key))) as foreign,
        ):
            foreign.get("/v1/usage")
        with daemon.node_client() as node:
            assert node.get("/v1/usage").json()["outbox_depth"] == 0
            gpus = node.get("/v1/gpus").json()
            assert gpus["available"] is False and gpus["reason"]  # no NVML on this machine

        # Doctor's check verifies the daemon's certificate against the hub CA, which needs
        # serverAuth in it: the hub's node certificates carry it.
        url = f"https://localhost:{daemon.api_port}/health"
        finding = DaemonHealth(url=url, cert_dir=str(rig.node.certs)).check(Host())
        assert finding.status is Status.OK, finding.observed


def test_metrics_parse_and_count_what_the_daemon_did(rig: Rig) -> None:
    started = int(time.time()) - 4
    rig.run_pod(started)
    rig.end_pod(started, started + 4)
    with running(rig.start()) as daemon:
        wait_for(lambda: rig.billed(4))
        wait_for(lambda: daemon.health()["hub_reachable"] is True)
        families = {f.name: f for f in text_string_to_metric_families(daemon.metrics())}

        def value(name: str) -> float:
            return families[name].samples[0].value

        assert families["worldland_daemon_heartbeats_sent"].type == "counter"
        assert value("worldland_daemon_heartbeats_sent") >= 1
        assert value("worldland_daemon_heartbeats_failed") == 0
        assert value("worldland_daemon_billed_seconds") == 4
        assert value("worldland_daemon_outbox_depth") == 0
        assert value("worldland_daemon_hub_reachable") == 1
        assert value("worldland_daemon_certificate_expiry_timestamp_seconds") > time.time()
        info = families["worldland_daemon_info"].samples[0]
        assert info.labels["node_id"] == rig.node.node_id


def test_a_renewed_certificate_is_served_without_a_restart(rig: Rig) -> None:
    with running(rig.start()) as daemon:
        before = served_serial(daemon)
        renewed = cli(["certs", "renew"], rig.node.home, rig.node.hub)
        assert renewed["action"] == "renewed"
        wait_for(lambda: served_serial(daemon) == disk_serial(rig) != before, timeout=10)
        assert daemon.process.poll() is None
        # The hub revoked the old certificate: heartbeats go on, with the new one.
        last = daemon.health()["last_heartbeat"]
        wait_for(lambda: daemon.health()["last_heartbeat"] != last, timeout=10)
        assert daemon.health()["hub_reachable"] is True
        assert daemon.events("heartbeat.failed") == []


def test_the_daemon_renews_its_certificate_before_it_expires(
    kube: FakeKube, tmp_path: Path
) -> None:
    # 34 s of life, back-dated 60 s by the hub: a third of it is left 3 s after issue.
    hub = start_hub(tmp_path / "hub", tls=True, extra_args=["--cert-lifetime", "34s"])
    try:
        rig = rig_for(hub, kube, tmp_path)
        first = disk_serial(rig)
        with running(rig.start()) as daemon:
            wait_for(lambda: daemon.events("certificate.renewed") != [], timeout=15)
            wait_for(lambda: served_serial(daemon) == disk_serial(rig) != first, timeout=5)
            last = daemon.health()["last_heartbeat"]
            wait_for(lambda: daemon.health()["last_heartbeat"] != last, timeout=10)
            assert daemon.health()["hub_reachable"] is True
            assert daemon.events("heartbeat.failed") == []
    finally:
        hub.stop()


def test_a_port_in_use_or_a_missing_registration_is_said_plainly(
    rig: Rig, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    runner = CliRunner()
    unregistered = runner.invoke(app, ["daemon", "--json", "--state-dir", str(tmp_path / "s")])
    assert unregistered.exit_code == 1
    assert "not registered" in unregistered.stdout
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        monkeypatch.setenv("WORLDLAND_HOME", str(rig.node.home))
        busy = runner.invoke(
            app,
            ["daemon", "--json", "--listen", f"127.0.0.1:{port}", "--metrics-listen", "off"],
        )
    assert busy.exit_code == 1
    assert f"cannot listen on 127.0.0.1:{port}" in busy.stdout


def test_on_a_plain_http_hub_the_daemon_uses_the_owners_session(
    kube: FakeKube, tmp_path: Path
) -> None:
    """No client certificate can be presented over plain HTTP: the heartbeat and the usage
    go with the bearer token `worldland register` saved (a silent login renews it)."""
    hub = start_hub(tmp_path / "hub")
    try:
        rig = rig_for(hub, kube, tmp_path)
        started = int(time.time()) - 3
        rig.run_pod(started)
        rig.end_pod(started, started + 3)
        with running(rig.start()) as daemon:
            wait_for(lambda: daemon.health()["hub_reachable"] is True)
            wait_for(lambda: rig.billed(3))
    finally:
        hub.stop()
