"""`diag network` against a real HTTPS hub on loopback, real certs, and fake wg/ip output."""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tests.diag.conftest import ToolMaker
from tests.diag.tlsserver import https_server
from tests.support.pki import Pki
from worldland_cli.diag.base import Finding, Status
from worldland_cli.diag.network import probe_network, wireguard_check
from worldland_cli.host import Host
from worldland_cli.main import app

HOME = "/home/p/.worldland"
CERTS = f"{HOME}/certs"  # the default cert_dir under that home
WG_PRIVATE = "yAnz5TF+lXXJte14tji3zlMNq+hd2rYUIgJBgB3fBmk="
PEER = "xTIBA5rboUvnH4htodjb6e697QjLERt1NAB4mZqp8Dg="


def wg_dump(handshake: int) -> str:
    """`wg show wg0 dump`: interface line (private key first), then one line per peer."""
    return (
        f"{WG_PRIVATE}\tHIgo9xNzJMWLKASShiTqIybxZ0U3wGLiUeJ1PKf8ykw=\t51820\toff\n"
        f"{PEER}\t(none)\t203.0.113.9:51820\t10.100.1.0/24\t{handshake}\t9876\t5432\t25\n"
    )


@pytest.fixture
def joined(root: Path, pki: Pki, tmp_path: Path, tool: ToolMaker) -> Path:
    pki.write_node_certs(root / CERTS.lstrip("/"))
    tool("wg", f"printf '{wg_dump(int(time.time()) - 30)}'")
    tool(
        "ip",
        """case "$*" in
*route*) echo "default via 10.128.0.1 dev ens4 proto dhcp src 10.128.0.5 metric 100";;
*) echo "1: lo: <LOOPBACK,UP,LOWER_UP> mtu 65536 qdisc noqueue state UNKNOWN mode DEFAULT"
   echo "2: ens4: <BROADCAST,MULTICAST,UP,LOWER_UP> mtu 1460 qdisc mq state UP mode DEFAULT"
   echo "3: wg0: <POINTOPOINT,NOARP,UP,LOWER_UP> mtu 1420 qdisc noqueue state UNKNOWN";;
esac""",
    )
    return pki.write_server(tmp_path / "server")[0].parent


def by_id(checks: list[Finding]) -> dict[str, Finding]:
    return {c.id: c for c in checks}


def test_every_layer_against_a_real_mtls_hub(host: Host, pki: Pki, joined: Path) -> None:
    d = joined
    with (
        https_server(d / "server.crt", d / "server.key", d / "ca.crt") as (hub_port, hub_seen),
        https_server(d / "server.crt", d / "server.key", d / "ca.crt") as (api_port, api_seen),
    ):
        report = probe_network(
            host, CERTS, f"https://localhost:{hub_port}", 3.0, node_api=("127.0.0.1", api_port)
        )
    c = by_id(report.checks)
    for step in ("dns", "tcp", "tls", "http", "clock", "mtls", "wireguard", "node-api"):
        assert c[f"network.{step}"].status is Status.OK, c[f"network.{step}"]
    assert "GET /health -> 200" in c["network.http"].observed
    # The hub and the node API really saw the node's certificate on the mTLS calls.
    subjects = [dict(x[0] for x in s["subject"]) for s in hub_seen + api_seen if s]
    assert {"commonName": "gpu-node-1"} in subjects and len(api_seen) == 1
    assert "handshake 3" in c["network.wireguard"].observed  # 30 s ago, give or take
    mtu = c["network.mtu"]
    assert mtu.status is Status.WARN and "mtu 1380" in (mtu.remedy or "")
    assert WG_PRIVATE not in json.dumps(report.to_dict())


def test_clock_skew_against_the_hub_date_header(host: Host, joined: Path) -> None:
    d = joined
    with https_server(d / "server.crt", d / "server.key", skew_s=-600) as (port, _):
        report = probe_network(host, CERTS, f"https://localhost:{port}", 3.0, ("127.0.0.1", 1))
    clock = by_id(report.checks)["network.clock"]
    # The Date header has one-second resolution, so the measured skew is 600 s give or take 1.
    assert clock.status is Status.FAIL and "local clock ahead of the hub by" in clock.observed
    assert 599 <= -clock.details["skew_s"] <= 602
    assert "timedatectl" in (clock.remedy or "")
    node_api = by_id(report.checks)["network.node-api"]  # nothing listens on port 1
    assert node_api.status is Status.FAIL
    assert node_api.remedy == (
        "sudo systemctl restart worldland-node.service && "
        "journalctl -u worldland-node.service -n 50"
    )


def test_untrusted_hub_certificate_is_named(host: Host, root: Path, joined: Path) -> None:
    (root / CERTS.lstrip("/") / "ca.crt").unlink()  # trust only the system CAs now
    d = joined
    with https_server(d / "server.crt", d / "server.key") as (port, _):
        report = probe_network(host, CERTS, f"https://localhost:{port}", 3.0, ("127.0.0.1", 1))
    c = by_id(report.checks)
    assert c["network.tls"].status is Status.FAIL and "not trusted" in c["network.tls"].observed
    assert (c["network.tls"].remedy or "").startswith("worldland config set hub_ca FILE   # ")
    assert c["network.http"].status is Status.SKIP


def test_a_refused_hub_is_answered_with_commands_not_prose(host: Host) -> None:
    # The remedies are printed under "paste these blocks into a shell": each must be shell.
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    report = probe_network(host, CERTS, f"https://127.0.0.1:{port}", 1.0, ("127.0.0.1", 1))
    tcp = by_id(report.checks)["network.tcp"]
    assert tcp.status is Status.FAIL and "cannot connect" in tcp.observed
    assert (tcp.remedy or "").startswith("worldland config show   # ")


@pytest.fixture
def black_hole() -> Iterator[int]:
    """Accepts TCP connections (the kernel does) but never speaks: a wedged TLS peer."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    s.listen(8)
    yield s.getsockname()[1]
    s.close()


def test_a_hanging_hub_is_cut_by_the_timeout(host: Host, black_hole: int) -> None:
    report = probe_network(host, CERTS, f"https://127.0.0.1:{black_hole}", 0.5, ("127.0.0.1", 1))
    tls = by_id(report.checks)["network.tls"]
    assert tls.status is Status.FAIL and "timed out" in tls.observed


def test_cli_exit_3_when_the_hub_name_does_not_resolve(
    root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WORLDLAND_HUB", "https://hub.does-not-exist.invalid")
    res = CliRunner().invoke(app, ["diag", "network", "--root", str(root), "--json"])
    assert res.exit_code == 3, res.output
    checks = by_id_json(json.loads(res.stdout))
    assert checks["network.dns"]["status"] == "fail"
    assert checks["network.tcp"]["status"] == "skip"


def by_id_json(doc: dict[str, object]) -> dict[str, dict[str, str]]:
    return {c["id"]: c for c in doc["checks"]}  # type: ignore[attr-defined, index]


@pytest.mark.parametrize(("age", "words"), [(None, "never completed"), (900, "900 s ago")])
def test_wireguard_without_a_recent_handshake_fails(
    host: Host, tool: ToolMaker, age: int | None, words: str
) -> None:
    now = 1_700_000_000
    tool("wg", f"printf '{wg_dump(0 if age is None else now - age)}'")
    check = wireguard_check(host, 2.0, now=now)
    assert check.status is Status.FAIL and words in check.observed
    assert check.details["peers"][0]["rx_bytes"] == 9876
    assert WG_PRIVATE not in json.dumps(check.to_dict())
