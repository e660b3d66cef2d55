"""The send/receive commands: arguments, exit codes, --json, and a cheap start-up."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tests.support.sshd import SSH_KEYGEN, SshdServer
from tests.transfer.conftest import random_file, sha256_of
from worldland_cli.main import app

runner = CliRunner()


def _auth(sshd: SshdServer) -> list[str]:
    return ["--identity", str(sshd.client_key), "--known-hosts", str(sshd.known_hosts)]


@pytest.mark.slow
def test_200_mb_round_trip_through_the_cli_over_both_engines(
    sshd: SshdServer, tmp_path: Path
) -> None:
    src = random_file(tmp_path / "weights.bin", 200 * 1000 * 1000)
    remote = tmp_path / "remote"
    sent = runner.invoke(app, ["send", str(src), sshd.url(str(remote)), "--json", *_auth(sshd)])
    assert sent.exit_code == 0, sent.output
    doc = json.loads(sent.stdout)
    assert doc["ok"] is True and doc["bytes"] == 200 * 1000 * 1000
    assert doc["files"][0]["sha256"] == sha256_of(src) == sha256_of(remote / "weights.bin")
    assert doc["files"][0]["carried_by"] == "openssh"

    back = tmp_path / "back"
    source = sshd.url(str(remote / "weights.bin"))
    got = runner.invoke(app, ["receive", source, str(back), "--json", "--no-openssh", *_auth(sshd)])
    assert got.exit_code == 0, got.output
    received = json.loads(got.stdout)["files"][0]
    assert received["sha256"] == sha256_of(back / "weights.bin")
    assert received["carried_by"] == "asyncssh"
    assert sha256_of(back / "weights.bin") == sha256_of(src)


def test_global_json_flag_and_several_sources(sshd: SshdServer, tmp_path: Path) -> None:
    a = random_file(tmp_path / "a.bin", 10)
    b = random_file(tmp_path / "d" / "b.bin", 20)
    remote = tmp_path / "remote"
    result = runner.invoke(
        app, ["--json", "send", str(a), str(b.parent), sshd.url(str(remote)), *_auth(sshd)]
    )
    assert result.exit_code == 0, result.output
    assert sorted(f["path"] for f in json.loads(result.stdout)["files"]) == ["a.bin", "d/b.bin"]
    assert sha256_of(remote / "d" / "b.bin") == sha256_of(b)


def test_changed_host_key_exits_4_with_one_json_document(sshd: SshdServer, tmp_path: Path) -> None:
    key = tmp_path / "other"
    subprocess.run([SSH_KEYGEN, "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
    known = tmp_path / "known"
    known.write_text(f"[127.0.0.1]:{sshd.port} {Path(f'{key}.pub').read_text()}")
    result = runner.invoke(
        app,
        [
            *("receive", sshd.url("/etc/hostname"), str(tmp_path), "--json"),
            *("--identity", str(sshd.client_key), "--known-hosts", str(known)),
        ],
    )
    assert result.exit_code == 4
    doc = json.loads(result.stdout)
    assert doc["ok"] is False and "CHANGED" in doc["error"]


def test_unreachable_exits_3_and_says_so(sshd: SshdServer, tmp_path: Path) -> None:
    sshd.stop()
    result = runner.invoke(
        app, ["receive", sshd.url("/x"), str(tmp_path), "--retries", "0", *_auth(sshd)]
    )
    assert result.exit_code == 3
    assert "cannot reach" in result.output


def test_a_checksum_or_missing_file_exits_1(sshd: SshdServer, tmp_path: Path) -> None:
    result = runner.invoke(app, ["receive", sshd.url("/no/such/file"), str(tmp_path), *_auth(sshd)])
    assert result.exit_code == 1
    assert "does not exist" in result.output


def test_usage_errors_exit_2() -> None:
    assert runner.invoke(app, ["send", "only-one-arg"]).exit_code == 2
    assert runner.invoke(app, ["send", "a", "./host:/x"]).exit_code == 2  # a path, not a pod
    assert runner.invoke(app, ["receive", "ssh://h:99999/x"]).exit_code == 2
    assert runner.invoke(app, ["receive", "ssh://h"]).exit_code == 2


def test_a_dry_run_never_spends_or_makes_a_code(tmp_path: Path) -> None:
    code = "4817-cactus-walrus-ember-quill-topaz"
    claimed = runner.invoke(app, ["receive", code, str(tmp_path), "--dry-run"])
    assert claimed.exit_code == 2 and "would spend it" in " ".join(claimed.output.split())
    src = random_file(tmp_path / "a.bin", 10)
    offered = runner.invoke(app, ["send", str(src), "--pod", "pod-1", "--dry-run"])
    assert offered.exit_code == 2 and "no dry run" in " ".join(offered.output.split())


def test_start_up_does_not_import_the_ssh_libraries() -> None:
    code = (
        "import sys, worldland_cli.main, worldland_cli.commands.transfer, "
        "worldland_cli.transfer.targets\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in "
        "('asyncssh', 'cryptography', 'httpx')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_people_get_one_line_saying_what_was_verified(sshd: SshdServer, tmp_path: Path) -> None:
    src = random_file(tmp_path / "a.bin", 1000)
    result = runner.invoke(app, ["send", str(src), sshd.url(str(tmp_path / "r")), *_auth(sshd)])
    assert result.exit_code == 0, result.output
    assert "1 file(s), 1000 bytes" in result.stdout and "sha256 verified" in result.stdout
