"""``--exclude PATTERN`` (rsync's rules) and ``--dry-run`` (what would move, and why)."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tests.support.sshd import SshdServer
from tests.transfer.conftest import Hook, random_file, sha256_of
from worldland_cli.main import app
from worldland_cli.transfer.download import download
from worldland_cli.transfer.errors import UnreachableError
from worldland_cli.transfer.exclude import Excludes
from worldland_cli.transfer.model import Options
from worldland_cli.transfer.ssh import Credentials
from worldland_cli.transfer.targets import parse_ssh_url

runner = CliRunner()


@pytest.mark.parametrize(
    ("pattern", "rel", "is_dir", "excluded"),
    [
        ("*.pyc", "data/a.pyc", False, True),
        ("*.pyc", "data/sub/deep/a.pyc", False, True),
        ("*.pyc", "data/a.pyc.txt", False, False),
        ("__pycache__", "data/pkg/__pycache__", True, True),
        ("cache/*.bin", "data/cache/a.bin", False, True),
        ("cache/*.bin", "data/cache/sub/a.bin", False, False),  # * stops at a /
        ("cache/**.bin", "data/cache/sub/a.bin", False, True),  # ** does not
        ("cache/*.bin", "data/mycache/a.bin", False, False),  # a name boundary
        ("/data/logs", "data/logs", True, True),
        ("/data/logs", "data/sub/data/logs", True, False),  # anchored at the top
        ("logs/", "data/logs", True, True),
        ("logs/", "data/logs", False, False),  # directories only
        ("f?.bin", "data/f1.bin", False, True),
        ("f[0-4].bin", "data/f5.bin", False, False),
        ("f[!0-4].bin", "data/f5.bin", False, True),
        ("data", "data", True, True),  # the sent directory itself
    ],
)
def test_patterns_follow_rsyncs_rules(pattern: str, rel: str, is_dir: bool, excluded: bool) -> None:
    assert Excludes([pattern]).excluded(rel, is_dir) is excluded


def _auth(sshd: SshdServer) -> list[str]:
    return ["--identity", str(sshd.client_key), "--known-hosts", str(sshd.known_hosts)]


def _tree(top: Path) -> Path:
    random_file(top / "keep.bin", 100)
    random_file(top / "pkg" / "mod.py", 50)
    random_file(top / "pkg" / "__pycache__" / "mod.cpython-311.pyc", 60)
    random_file(top / "logs" / "run.log", 70)
    random_file(top / "pkg" / "old.pyc", 80)
    return top


def test_send_and_receive_leave_out_what_is_excluded(sshd: SshdServer, tmp_path: Path) -> None:
    tree = _tree(tmp_path / "data")
    remote = tmp_path / "pod"
    patterns = ["--exclude", "*.pyc", "--exclude", "__pycache__", "--exclude", "logs/"]
    sent = runner.invoke(
        app, ["send", str(tree), sshd.url(str(remote)), *patterns, "--json", *_auth(sshd)]
    )
    assert sent.exit_code == 0, sent.output
    doc = json.loads(sent.stdout)
    assert sorted(f["path"] for f in doc["files"]) == ["data/keep.bin", "data/pkg/mod.py"]
    assert doc["counts"]["excluded"] == 3  # two directories (not walked) and old.pyc
    assert sorted(str(p.relative_to(remote)) for p in remote.rglob("*")) == [
        "data", "data/keep.bin", "data/pkg", "data/pkg/mod.py",
    ]  # fmt: skip

    _tree(remote / "data")  # the pod now has them all
    back = tmp_path / "back"
    got = runner.invoke(
        app,
        ["receive", sshd.url(str(remote / "data")), str(back), "--exclude", "/data/pkg",
         "--json", *_auth(sshd)],
    )  # fmt: skip
    assert got.exit_code == 0, got.output
    assert sorted(str(p.relative_to(back)) for p in back.rglob("*")) == [
        "data", "data/keep.bin", "data/logs", "data/logs/run.log",
    ]  # fmt: skip
    assert json.loads(got.stdout)["counts"]["excluded"] == 1


def test_a_dry_run_says_what_would_move_and_why_and_moves_nothing(
    sshd: SshdServer, tmp_path: Path
) -> None:
    tree = _tree(tmp_path / "data")
    remote = tmp_path / "pod"
    url = sshd.url(str(remote))
    first = runner.invoke(app, ["send", str(tree), url, "--dry-run", "--json", *_auth(sshd)])
    assert first.exit_code == 0, first.output
    plan = {p["path"]: p for p in json.loads(first.stdout)["plan"]}
    assert plan["data/keep.bin"]["action"] == "new" and plan["data/keep.bin"]["moves"] is True
    assert not remote.exists()  # not even the directory

    assert runner.invoke(app, ["send", str(tree), url, *_auth(sshd)]).exit_code == 0
    random_file(tree / "keep.bin", 100)  # the same size, other bytes
    random_file(tree / "new.bin", 5)
    again = runner.invoke(app, ["send", str(tree), url, "--dry-run", "--json", *_auth(sshd)])
    assert again.exit_code == 1  # a real run would refuse keep.bin
    doc = json.loads(again.stdout)
    assert doc["ok"] is False and doc["dry_run"] is True
    plan = {p["path"]: p for p in doc["plan"]}
    assert (plan["data/keep.bin"]["action"], plan["data/keep.bin"]["moves"]) == ("differs", False)
    assert plan["data/keep.bin"]["why"] == "the same size, another sha256"
    assert (plan["data/new.bin"]["action"], plan["data/pkg/mod.py"]["action"]) == ("new", "same")
    assert not (remote / "data" / "new.bin").exists()

    words = runner.invoke(app, ["send", str(tree), url, "--dry-run", "--overwrite", *_auth(sshd)])
    assert words.exit_code == 0, words.output
    assert "would move data/keep.bin: differs, the same size, another sha256" in words.stdout
    assert "would move data/new.bin: new" in words.stdout
    assert "2 to move, 4 the same (skipped), 0 refused; nothing was moved" in words.stdout


def test_a_dry_run_names_a_part_that_would_resume(
    sshd: SshdServer, creds: Credentials, tmp_path: Path
) -> None:
    size = 24 << 20
    src = random_file(tmp_path / "pod" / "big.bin", size)
    back = tmp_path / "back"
    loc = parse_ssh_url(sshd.url(str(src)), "x")
    cut = Options(retries=0, requests_in_flight=4)
    with pytest.raises(UnreachableError):
        asyncio.run(download(loc, back, creds, cut, Hook(size // 2, sshd.kill_sessions)))
    result = runner.invoke(
        app, ["receive", sshd.url(str(src)), str(back), "--dry-run", "--json", *_auth(sshd)]
    )
    assert result.exit_code == 0, result.output
    (entry,) = json.loads(result.stdout)["plan"]
    assert (entry["path"], entry["action"], entry["moves"]) == ("big.bin", "partial", True)
    real = runner.invoke(app, ["receive", sshd.url(str(src)), str(back), "--json", *_auth(sshd)])
    doc = json.loads(real.stdout)
    held = doc["files"][0]["resumed_from"]
    assert held > 0
    # The rate counts the bytes that crossed the link, not the prefix already here.
    assert doc["bytes"] == size and doc["bytes_moved"] == size - held
    rate = (size - held) / doc["seconds"] / 1e6
    assert doc["mb_per_s"] == pytest.approx(rate, rel=0.02, abs=0.1)
    assert sha256_of(back / "big.bin") == sha256_of(src)
