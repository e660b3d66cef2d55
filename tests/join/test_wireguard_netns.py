"""The wg0.conf join renders makes a real tunnel to the hub's VPN server.

Two network namespaces joined by a veth pair, with userspace WireGuard (wireguard-go, which
wg-quick uses where the kernel has no module): one is the hub's VPN server (10.100.0.1)
brought up from the config the hub renders (``worldland-hub vpn server-config``), the other
the node, brought up from the wg0.conf join wrote with the address the real hub allocated.
A TCP connection from the node to 10.100.0.1 must go through the tunnel.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.join.conftest import FakeHost
from tests.join.nodehub import Cluster, hub_with_cluster, node_steps, prepare_root, settings_for
from tests.support.hub import RunningHub
from tests.support.netns import in_netns, ip, namespace, skip_reason
from worldland_cli.join.run import join_host

SERVER_VETH = "10.200.0.1"
NODE_VETH = "10.200.0.2"
LISTEN_PORT = 51820
ECHO_PORT = 7070
# The PATH of the real tools, taken before the fake root's fixture leaves only the fakes.
SYSTEM_PATH = os.environ.get("PATH", os.defpath)

ECHO = (
    "import socket\n"
    "s = socket.create_server(('10.100.0.1', {port}))\n"
    "c, _ = s.accept()\n"
    "c.sendall(b'pong:' + c.recv(64))\n"
)
CALL = (
    "import socket\n"
    "c = socket.create_connection(('10.100.0.1', {port}), timeout=20)\n"
    "c.sendall(b'ping from the node')\n"
    "print(c.recv(64).decode())\n"
)


@pytest.fixture
def vpn_hub(tmp_path: Path, cluster: Cluster) -> Iterator[RunningHub]:
    """A hub whose VPN endpoint is the server namespace's end of the veth pair."""
    endpoint = ("--vpn-endpoint", f"{SERVER_VETH}:{LISTEN_PORT}")
    running = hub_with_cluster(tmp_path / "hub", cluster, tls=False, extra=endpoint)
    yield running
    running.stop()


def veth_pair(server: str, node: str) -> None:
    """server <-> node over a veth pair (10.200.0.1 and 10.200.0.2)."""
    for args in (
        ("link", "add", "wl-vs", "netns", server, "type", "veth", "peer", "name", "wl-vn",
         "netns", node),
        ("-n", server, "address", "add", f"{SERVER_VETH}/24", "dev", "wl-vs"),
        ("-n", node, "address", "add", f"{NODE_VETH}/24", "dev", "wl-vn"),
        ("-n", server, "link", "set", "wl-vs", "up"),
        ("-n", node, "link", "set", "wl-vn", "up"),
    ):  # fmt: skip
        done = ip(*args)
        assert done.returncode == 0, done.stderr


@pytest.mark.root
def test_the_rendered_wg0_conf_carries_tcp_to_the_hub_vpn_server(
    fake: FakeHost,
    vpn_hub: RunningHub,
    cluster: Cluster,
    nvml_t4: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    prepare_root(fake, cluster)
    steps = node_steps()[:2]  # hub.registered, vpn.wireguard
    assert join_host(fake.host, fake.journal, steps, settings_for(vpn_hub)).done == [
        "hub.registered",
        "vpn.wireguard",
    ]
    monkeypatch.setenv("PATH", SYSTEM_PATH)  # the real wg-quick from here on
    reason = skip_reason("wg", "wg-quick", "wireguard-go")
    if reason:
        pytest.skip(reason)
    node_conf = tmp_path / "wg0.conf"
    shutil.copy(fake.root / "etc/wireguard/wg0.conf", node_conf)  # keeps its mode, 0600
    assert f"Endpoint = {SERVER_VETH}:{LISTEN_PORT}" in node_conf.read_text()
    server_conf = tmp_path / "wlsrv.conf"
    rendered = subprocess.run(
        [sys.executable, "-m", "hub_stub", "vpn", "server-config", "--data-dir",
         str(vpn_hub.data_dir), "--listen-port", str(LISTEN_PORT), "--output", str(server_conf)],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert rendered.returncode == 0, rendered.stderr
    with namespace("wl-srv") as server, namespace("wl-node") as node:
        veth_pair(server, node)
        up = in_netns(server, "wg-quick", "up", str(server_conf))
        assert up.returncode == 0, up.stderr
        up = in_netns(node, "wg-quick", "up", str(node_conf))
        assert up.returncode == 0, up.stderr
        echo = subprocess.Popen(
            ["ip", "netns", "exec", server, sys.executable, "-c", ECHO.format(port=ECHO_PORT)],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        try:
            called = None
            for _ in range(50):  # until the echo server listens
                called = in_netns(node, sys.executable, "-c", CALL.format(port=ECHO_PORT))
                if called.returncode == 0:
                    break
            assert called is not None and called.returncode == 0, called.stderr if called else ""
            assert called.stdout.strip() == "pong:ping from the node"
        finally:
            echo.kill()
            echo.wait()
        handshakes = in_netns(node, "wg", "show", "wg0", "latest-handshakes").stdout.split()
        assert int(handshakes[1]) > 0
        peers = in_netns(server, "wg", "show", "wlsrv", "allowed-ips").stdout
        address = next(
            line.split(" = ")[1]
            for line in node_conf.read_text().splitlines()
            if line.startswith("Address = ")
        )
        assert f"{address.split('/')[0]}/32" in peers
