"""Settings: flag > env > config.toml > default, `config set` validation, `config show`."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.auth.conftest import PLANTED_KEY, cli, write_key
from tests.support.hub import RunningHub
from worldland_cli import config
from worldland_cli.hubclient import HubEndpoint


def test_precedence_flag_over_env_over_file_over_default(
    worldland_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert config.load().resolve("hub") == config.Setting("hub", config.DEFAULT_HUB, "default")
    config.set_value("hub", "http://file.example:1")
    assert config.load().resolve("hub") == config.Setting("hub", "http://file.example:1", "file")
    monkeypatch.setenv("WORLDLAND_HUB", "http://env.example:2/")
    assert config.load().resolve("hub") == config.Setting("hub", "http://env.example:2", "env")
    flagged = config.load().resolve("hub", "https://flag.example:3")
    assert flagged == config.Setting("hub", "https://flag.example:3", "flag")


def test_paths_follow_worldland_home(worldland_home: Path) -> None:
    cfg = config.load()
    assert cfg.get("private_key_file") == str(worldland_home / "private-key.txt")
    assert cfg.get("cert_dir") == str(worldland_home / "certs")
    assert cfg.get_int("price_per_sec") == 1_000_000_000
    assert config.session_file() == worldland_home / "session.json"
    assert config.node_file() == worldland_home / "node.json"


def test_hub_endpoint_carries_the_ca(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("WORLDLAND_HUB_CA", str(tmp_path / "ca.pem"))
    endpoint = HubEndpoint.from_config(config.load(), "hub.example:8443")
    assert endpoint.url == "http://hub.example:8443"
    assert endpoint.ca_file == str(tmp_path / "ca.pem")


def test_set_keeps_other_keys_and_rejects_bad_values(worldland_home: Path) -> None:
    config.set_value("price_per_sec", "2000")
    config.set_value("siwe_domain", "35.193.237.225:3000")
    text = (worldland_home / "config.toml").read_text()
    assert "price_per_sec = 2000" in text and 'siwe_domain = "35.193.237.225:3000"' in text
    with pytest.raises(config.ConfigError, match="whole number"):
        config.set_value("price_per_sec", "1.5")
    with pytest.raises(config.ConfigError, match="unknown setting 'hubb'") as info:
        config.set_value("hubb", "x")
    assert "hub" in (info.value.hint or "")
    with pytest.raises(config.ConfigError, match="http:// or https://"):
        config.set_value("hub", "ftp://hub.example")
    assert config.load().get_int("price_per_sec") == 2000


def test_broken_toml_is_a_clear_error(worldland_home: Path) -> None:
    worldland_home.mkdir(parents=True)
    (worldland_home / "config.toml").write_text("hub = [unterminated\n")
    result = cli("config", "show")
    assert result.exit_code == 2
    assert "is not valid TOML" in result.stderr and "config.toml" in result.stderr


def test_config_set_and_show_cli(worldland_home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert cli("config", "set", "hub", "https://ops:hunter2@hub.example:8443").exit_code == 0
    monkeypatch.setenv("WORLDLAND_SIWE_DOMAIN", "app.example:3000")
    session = {
        "token": "SECRET-TOKEN-VALUE",
        "address": "0xabc",
        "hub": "https://hub.example:8443",
        "expires_at": "2099-01-01T00:00:00Z",
    }
    sessions = {"sessions": {"https://hub.example:8443": session}}
    worldland_home.joinpath("session.json").write_text(json.dumps(sessions))
    human = cli("config", "show")
    assert human.exit_code == 0, human.output
    assert "hunter2" not in human.output and "SECRET-TOKEN-VALUE" not in human.output
    assert "https://ops:****@hub.example:8443  [file]" in human.stdout
    assert "app.example:3000  [env]" in human.stdout
    doc = json.loads(cli("config", "show", "--json").stdout)
    assert doc["settings"]["hub"] == {
        "value": "https://ops:****@hub.example:8443",
        "source": "file",
        "env": "WORLDLAND_HUB",
    }
    assert doc["settings"]["siwe_domain"]["source"] == "env"
    assert doc["session"]["token"] == "****" and doc["session"]["address"] == "0xabc"
    assert "SECRET-TOKEN-VALUE" not in json.dumps(doc)


def test_config_set_unknown_key_exits_2_with_the_known_ones() -> None:
    result = cli("config", "set", "--json", "gpu", "T4")
    assert result.exit_code == 2
    doc = json.loads(result.stdout)
    assert doc["ok"] is False and "gpu_type" in doc["hint"]


@pytest.mark.parametrize("key", [PLANTED_KEY, "0x" + PLANTED_KEY])
def test_a_private_key_given_as_the_key_file_is_refused_unechoed(
    worldland_home: Path, monkeypatch: pytest.MonkeyPatch, key: str
) -> None:
    # The setting wants a file name; a pasted key would be stored in config.toml (0644) and
    # printed by `config set`, `config show` and the "key file ... does not exist" error.
    result = cli("config", "set", "private_key_file", key)
    assert result.exit_code == 2
    assert "looks like a private key itself" in result.output
    assert PLANTED_KEY not in result.output
    assert not (worldland_home / "config.toml").exists()
    login = cli("login", "--private-key-file", key)
    assert login.exit_code == 2 and PLANTED_KEY not in login.output
    monkeypatch.setenv("WORLDLAND_PRIVATE_KEY_FILE", key)
    show = cli("config", "show")
    assert show.exit_code == 2 and PLANTED_KEY not in show.output


@pytest.mark.parametrize(
    "url",
    [
        "ftp://hub.example",
        "https://",
        "https://hub.example:99999",
        "https://hub.example:port",
        "https://hub.example:0",
        "http://hub example",
        "https://hub.example/?x=1",
        "https://hub.example/#top",
    ],
)
def test_config_set_refuses_a_hub_url_nothing_can_reach(url: str, worldland_home: Path) -> None:
    result = cli("config", "set", "hub", url)
    assert result.exit_code == 2, result.output
    assert "error: hub must be an http:// or https:// URL" in result.stderr
    assert not (worldland_home / "config.toml").exists()


@pytest.mark.parametrize(
    ("make", "says"),
    [
        (lambda d: d / "missing.pem", "does not exist"),
        (lambda d: d, "is a directory"),
        (lambda d: write_key(d / "notes.txt", "not a certificate\n", 0o644), "holds no PEM"),
    ],
    ids=["missing", "directory", "not-pem"],
)
def test_config_set_hub_ca_names_a_file_it_cannot_use(
    make: Callable[[Path], Path], says: str, tmp_path: Path, worldland_home: Path
) -> None:
    path = make(tmp_path)
    result = cli("config", "set", "hub_ca", str(path))
    assert result.exit_code == 2, result.output
    assert f"error: hub_ca: {path} {says}" in result.stderr
    assert not (worldland_home / "config.toml").exists()
    doc = json.loads(cli("config", "set", "hub_ca", str(path), "--json").stdout)
    assert doc["ok"] is False and str(path) in doc["error"]


def test_config_set_stores_paths_absolute(
    tls_hub: RunningHub, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "hub-ca.pem").write_bytes(tls_hub.ca_cert.read_bytes())
    monkeypatch.chdir(tmp_path)
    assert cli("config", "set", "hub_ca", "hub-ca.pem").exit_code == 0
    assert cli("config", "set", "cert_dir", "certs").exit_code == 0
    monkeypatch.chdir("/")
    cfg = config.load()
    assert cfg.get("hub_ca") == str(tmp_path / "hub-ca.pem")
    assert cfg.get("cert_dir") == str(tmp_path / "certs")


def test_a_configured_hub_ca_that_vanished_is_named_with_exit_2(
    tls_hub: RunningHub, tmp_path: Path
) -> None:
    ca = tmp_path / "hub-ca.pem"
    ca.write_bytes(tls_hub.ca_cert.read_bytes())
    assert cli("wallet", "new").exit_code == 0
    assert cli("config", "set", "hub", tls_hub.url).exit_code == 0
    assert cli("config", "set", "hub_ca", str(ca)).exit_code == 0
    assert cli("login").exit_code == 0
    ca.unlink()
    for argv in (["login"], ["pods"], ["diag", "network", "--timeout", "2"]):
        result = cli(*argv)
        assert result.exit_code == 2, (argv, result.output)
        assert f"error: cannot load the hub's CA bundle {ca}: No such file" in result.stderr
        assert "worldland config set hub_ca FILE" in result.stderr
    doc = json.loads(cli("login", "--json").stdout)
    assert doc["ok"] is False and str(ca) in doc["error"]
