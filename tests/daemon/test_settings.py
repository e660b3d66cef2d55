"""What the daemon runs with when a provider gives no flags: node.json decides the rest."""

from __future__ import annotations

from pathlib import Path

import pytest

from worldland_cli import config
from worldland_cli.auth.node import NodeRecord, load_node, save_node
from worldland_cli.auth.relogin import SignIn
from worldland_cli.config import ConfigError
from worldland_cli.daemon.settings import parse_address, resolve
from worldland_cli.host import Host

NODE = NodeRecord(
    node_id="0b6f1f0e-8d4e-4c0e-9a54-3c1f0a7d2b11",
    hub="https://hub.example.org:8443",
    host="203.0.113.7",
    registered_at="2026-01-01T00:00:00Z",
    price_per_sec_wei=2500,
)


def test_defaults_bill_at_the_registered_price_and_keep_metrics_local(
    worldland_home: Path,
) -> None:
    save_node(NODE)
    assert load_node() == NODE  # the price survives node.json
    settings = resolve(config.load(env={}), SignIn(), host=Host())
    assert settings.node_id == NODE.node_id
    assert settings.endpoint.url == NODE.hub  # no --hub, env or config.toml: node.json's
    assert settings.price_per_sec_wei == 2500
    assert settings.listen == ("0.0.0.0", 8444)
    assert settings.metrics_listen == ("127.0.0.1", 9444)
    assert settings.kubeconfig == "/etc/kubernetes/kubelet.conf"
    assert settings.outbox_path == str(worldland_home / "daemon" / "outbox.sqlite3")
    assert settings.certs.directory == worldland_home / "certs"


def test_a_hub_named_on_the_command_line_wins(worldland_home: Path) -> None:
    save_node(NODE)
    settings = resolve(
        config.load(env={}),
        SignIn(hub="https://other.example.org"),
        host=Host(),
        metrics_listen="off",
        listen="[::]:9000",
    )
    assert settings.endpoint.url == "https://other.example.org"
    assert settings.metrics_listen is None
    assert settings.listen == ("::", 9000)


@pytest.mark.parametrize("text", ["8444", "host:", ":8444", "host:99999", "host:http"])
def test_an_address_must_be_host_and_port(text: str) -> None:
    with pytest.raises(ConfigError, match="HOST:PORT"):
        parse_address(text, "--listen")
