"""``worldland-hub`` flags: bad combinations fail fast with a message, secrets are guarded."""

from __future__ import annotations

import ipaddress
import os
import subprocess
import sys
from pathlib import Path

import pytest

from hub_stub import __version__
from hub_stub.__main__ import config_from_args, parser
from tests.support.hub import start_hub

BASE = ["--data-dir", "/tmp/x"]


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--tls-cert", "c.pem"], "--tls-cert and --tls-key go together"),
        (["--kube-api-server", "h:6443"], "stub join needs all of"),
        (["--host", "0.0.0.0"], "pass --public-url"),
    ],
)
def test_inconsistent_flags_exit_with_a_message(extra: list[str], message: str) -> None:
    with pytest.raises(SystemExit, match=message):
        config_from_args(parser().parse_args(BASE + extra))


@pytest.mark.parametrize(
    "extra",
    [
        ["--vpn-pool", "10.100.1.9-10.100.1.2"],
        ["--vpn-pool", "192.168.0.2-192.168.0.9"],
        ["--kube-token", "short.token"],
        ["--kube-ca-hash", "md5:abc"],
        ["--cert-lifetime", "7 days"],
        ["--public-url", "ftp://hub.example"],
        ["--public-url", "https://hub.example/?x=1"],
        ["--auth-rate", "5 per second"],
        ["--claim-rate", "0/s"],
    ],
)
def test_malformed_values_are_usage_errors(
    extra: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exited:
        parser().parse_args(BASE + extra)
    assert exited.value.code == 2
    assert "worldland-hub: error:" in capsys.readouterr().err


def test_defaults_follow_the_seed_documents() -> None:
    config = config_from_args(parser().parse_args(BASE))
    assert config.vpn_pool == (
        ipaddress.IPv4Address("10.100.1.2"),
        ipaddress.IPv4Address("10.100.1.254"),
    )
    assert config.cert_lifetime.days == 7
    assert config.chain_ids == (1,)


def test_the_siwe_domain_is_the_public_urls_host_and_port() -> None:
    served = config_from_args(parser().parse_args([*BASE, "--port", "3000"]))
    assert (served.siwe_domain, served.origin.uri) == ("127.0.0.1:3000", "http://127.0.0.1:3000")
    public = config_from_args(
        parser().parse_args([*BASE, "--host", "0.0.0.0", "--public-url", "https://Hub.Example/"])
    )
    assert (public.siwe_domain, public.origin.uri) == ("hub.example", "https://hub.example")


def test_a_readable_admin_token_file_is_refused(tmp_path: Path) -> None:
    token = tmp_path / "admin-token"
    token.write_text("x" * 32)
    os.chmod(token, 0o644)
    with pytest.raises(RuntimeError, match=f"chmod 600 {token}"):
        start_hub(tmp_path / "hub", extra_args=["--admin-token-file", str(token)])


def test_help_ends_with_examples_line_by_line() -> None:
    hub = Path(sys.executable).with_name("worldland-hub")
    proc = subprocess.run(
        [str(hub), "--help"], capture_output=True, text=True, timeout=60, check=True
    )
    lines = proc.stdout.splitlines()
    block = lines[lines.index("examples:") + 1 :]
    assert block[0].startswith("  worldland-hub --data-dir ")
    assert any(line.startswith("  worldland-hub vpn server-config ") for line in block)


def test_version_prints_it_and_exits_0() -> None:
    hub = Path(sys.executable).with_name("worldland-hub")
    proc = subprocess.run([str(hub), "--version"], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == f"worldland-hub {__version__}\n"


@pytest.mark.parametrize("tls", [False, True], ids=["http", "https"])
def test_the_hub_says_where_it_listens_and_its_public_url(tls: bool, tmp_path: Path) -> None:
    public = "https://hub.example.org:8443"
    running = start_hub(tmp_path, tls=tls, extra_args=["--public-url", public])
    try:
        lines = running.log.read_text().splitlines()
    finally:
        running.stop()
    assert f"worldland-hub {__version__} listening on {running.url} (public URL {public})" in lines
