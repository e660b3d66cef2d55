"""`worldland -v` / `-vv`: what the command does, logged on stderr; stdout unchanged.

Real processes against the real hub: logging is configured once per process, and what a
person sees is the process's stderr.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

from tests.auth.conftest import cli
from tests.support.hub import RunningHub
from worldland_cli.auth.session import load_session

WORLDLAND = str(Path(sys.executable).with_name("worldland"))


def worldland(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [WORLDLAND, *args], capture_output=True, text=True, timeout=60, check=False, env=os.environ
    )


def test_v_logs_each_hub_request_and_json_stays_one_document(plain_hub: RunningHub) -> None:
    assert cli("wallet", "new").exit_code == 0
    login = worldland("-v", "login", "--hub", plain_hub.url, "--json")
    assert login.returncode == 0, login.stderr
    assert json.loads(login.stdout)["hub"] == plain_hub.url  # one document, nothing else
    logged = login.stderr.splitlines()
    requests = [re.sub(r" in \d+ ms$", "", line) for line in logged]
    sent = f"INFO worldland_cli.hubclient: POST {plain_hub.url}"
    assert f"{sent}/v1/auth/nonce -> 200" in requests, logged
    assert f"{sent}/v1/auth/login -> 200" in requests, logged
    assert not any(line.startswith("DEBUG") for line in logged), logged
    session = load_session(plain_hub.url)
    assert session is not None and session.token not in login.stderr


def test_vv_adds_debug_lines_the_config_file_read(worldland_home: Path) -> None:
    shown = worldland("-vv", "--json", "whoami")
    assert shown.returncode == 4
    assert json.loads(shown.stdout)["ok"] is False
    config = worldland_home / "config.toml"
    assert f"DEBUG worldland_cli.config: no config file at {config}" in shown.stderr
    assert cli("config", "set", "hub", "http://127.0.0.1:9").exit_code == 0
    again = worldland("-vv", "whoami")
    assert f"DEBUG worldland_cli.config: reading settings from {config}" in again.stderr


def test_without_v_nothing_is_logged(plain_hub: RunningHub) -> None:
    assert cli("wallet", "new").exit_code == 0
    login = worldland("login", "--hub", plain_hub.url, "--json")
    assert login.returncode == 0, login.stderr
    assert login.stderr == ""


def test_a_transfer_code_stays_out_of_the_log(plain_hub: RunningHub, tmp_path: Path) -> None:
    code = "4417-abbey-acid-acorn-acre-actor"
    assert cli("wallet", "new").exit_code == 0
    assert cli("login", "--hub", plain_hub.url).exit_code == 0
    claim = worldland("-v", "receive", code, str(tmp_path), "--hub", plain_hub.url)
    assert claim.returncode != 0
    assert f"GET {plain_hub.url}/v1/transfers/**** -> 404" in claim.stderr
    logged = [line for line in claim.stderr.splitlines() if line.startswith(("INFO", "DEBUG"))]
    assert logged and not any(code in line for line in logged), logged
