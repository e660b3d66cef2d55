"""vpn.wireguard with the real `wg` where it is installed."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from tests.doctor.hosts import write
from worldland_cli.host import Host
from worldland_cli.requirements.base import Status
from worldland_cli.requirements.vpn import WireGuard, parse_latest_handshakes

WG0 = "[Interface]\nAddress = 10.100.1.2/24\nPrivateKey = {key}\n"


@pytest.fixture
def wg_host(host: Host) -> Host:
    if host.which("wg") is None:
        pytest.skip("wg not installed (apt-get install wireguard-tools)")
    return host


def test_without_a_config_only_the_tools_matter(wg_host: Host) -> None:
    finding = WireGuard().check(wg_host)
    assert finding.status is Status.OK
    assert "no /etc/wireguard/wg0.conf yet" in finding.observed


def test_config_without_interface_fails_with_real_wg_output(wg_host: Host, root: Path) -> None:
    write(root, "/etc/wireguard/wg-absent.conf", WG0.format(key="x"), 0o600)
    finding = WireGuard("wg-absent").check(wg_host)
    assert finding.status is Status.FAIL
    # The real wg's words: "Unable to access interface: No such device".
    assert "Unable to access interface" in finding.observed
    assert finding.remedy == "sudo systemctl enable --now wg-quick@wg-absent"


def test_missing_wg_fails(root: Path) -> None:
    finding = WireGuard().check(Host(root, search_path=str(root)))
    assert finding.status is Status.FAIL
    assert finding.remedy == "sudo apt-get install -y wireguard-tools"


def test_latest_handshakes_format() -> None:
    now = int(time.time())
    out = (
        f"xTIBA5rboUvnH4htodjb6e697QjLERt1NAB4mZqp8Dg=\t{now}\n"
        "HIgo9xNzJMWLKASShiTqIybxZ0U3wGLiUeJ1PKf8ykw=\t0\n"
    )
    assert parse_latest_handshakes(out) == {
        "xTIBA5rboUvnH4htodjb6e697QjLERt1NAB4mZqp8Dg=": now,
        "HIgo9xNzJMWLKASShiTqIybxZ0U3wGLiUeJ1PKf8ykw=": 0,
    }
