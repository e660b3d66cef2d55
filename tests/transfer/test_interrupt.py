"""Ctrl-C mid-tree, then the same command again: it completes and moves only what was missing.

A real ``worldland`` process gets a real SIGINT while a large file of the tree is half-way
(its small files went first, packed); the rerun must skip every file that arrived, resume the
half-way one from its verified ``.part``, and leave every file verified on both sides.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.support.sshd import SshdServer
from tests.transfer.conftest import random_file, sha256_of

WORLDLAND = str(Path(sys.executable).with_name("worldland"))
BIG = 96 << 20


def _tree(top: Path) -> Path:
    for i in range(200):
        random_file(top / "small" / f"s{i:03d}.bin", 8192)
    random_file(top / "big1.bin", BIG)
    random_file(top / "big2.bin", BIG)
    return top


def _finals(top: Path) -> set[str]:
    """The files under ``top`` that have their final names (no .part, mark or staging file)."""
    return {
        str(p.relative_to(top))
        for p in top.rglob("*")
        if p.is_file() and not p.name.endswith((".part", ".worldland", ".worldland-tmp"))
    }


def _size(path: Path) -> int:
    """A file's size, 0 once it is gone (a .part renamed between the listing and now)."""
    try:
        return path.stat().st_size
    except FileNotFoundError:
        return 0


def _interrupt_mid_tree(argv: list[str], where: Path) -> subprocess.CompletedProcess[str]:
    """Run ``argv`` and send it SIGINT once files have arrived under ``where`` and a
    ``.part`` there holds 8 MiB."""
    process = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and process.poll() is None:
        parts = list(where.rglob("*.part")) if where.exists() else []
        grown = any(_size(p) >= 8 << 20 for p in parts)
        if grown and _finals(where / "tree"):
            process.send_signal(signal.SIGINT)
            break
        time.sleep(0.005)
    out, err = process.communicate(timeout=30)
    return subprocess.CompletedProcess(argv, process.returncode, out, err)


@pytest.mark.parametrize("direction", ["send", "receive"])
def test_ctrl_c_mid_tree_then_the_same_command_completes_it(
    sshd: SshdServer, tmp_path: Path, direction: str
) -> None:
    auth = ["--identity", str(sshd.client_key), "--known-hosts", str(sshd.known_hosts)]
    if direction == "send":
        tree = _tree(tmp_path / "here" / "tree")
        dest = tmp_path / "pod"
        argv = [WORLDLAND, "send", str(tree), sshd.url(str(dest)), *auth]
    else:
        tree = _tree(tmp_path / "pod" / "tree")
        dest = tmp_path / "back"
        argv = [WORLDLAND, "receive", sshd.url(str(tree)), str(dest), *auth]

    stopped = _interrupt_mid_tree(argv, dest)
    assert stopped.returncode == 130, stopped.stderr
    assert "Traceback" not in stopped.stderr
    assert "interrupted" in stopped.stderr and "run the same command again" in stopped.stderr
    arrived = _finals(dest / "tree")
    parts = {str(p.relative_to(dest / "tree")) for p in (dest / "tree").glob("*.part")}
    assert 0 < len(arrived) < 202 and parts  # stopped mid-tree, a large file half-way
    # The far side's helper sees its stdin end and removes its staging files: on its own
    # time, after our process has gone (0.5 s was not always enough on a loaded machine).
    deadline = time.monotonic() + 10
    while list((dest / "tree").rglob("*.worldland-tmp")) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not list((dest / "tree").rglob("*.worldland-tmp"))

    again = subprocess.run([*argv, "--json"], capture_output=True, text=True, timeout=120)
    assert again.returncode == 0, again.stderr
    doc = json.loads(again.stdout)
    moved = {f["path"].removeprefix("tree/") for f in doc["files"]}
    unchanged = {s["path"].removeprefix("tree/") for s in doc["skipped"]}
    assert unchanged == arrived  # each one hashed on both sides, and skipped
    assert moved == _finals(tree) - arrived  # only what was missing moved
    resumed = {f["path"].removeprefix("tree/"): f["resumed_from"] for f in doc["files"]}
    assert all(resumed[p.removesuffix(".part")] > 0 for p in parts)
    assert _finals(dest / "tree") == _finals(tree)
    for name in _finals(tree):
        assert sha256_of(tree / name) == sha256_of(dest / "tree" / name), name
