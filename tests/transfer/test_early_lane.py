"""The first lane's ssh started by the command, before the engine is imported (lanestart.py).

Its handshake used to wait for the import of the engine (asyncssh above all, ~0.1 s) and
the connection's start; now it runs meanwhile. It trusts what OpenSSH reads in the same
known_hosts file; whatever goes wrong with it, the lane pinned to the verified key is what
the transfer falls back to, and one nobody takes is stopped.
"""

from __future__ import annotations

import asyncio
import dataclasses
from pathlib import Path

import asyncssh
import pytest

from tests.support.sshd import SshdServer
from tests.transfer.conftest import random_file, sha256_of
from tests.transfer.test_first_lane import LaneSpy
from tests.transfer.test_lane import _our_ssh_children
from worldland_cli.transfer.credentials import Credentials
from worldland_cli.transfer.download import download
from worldland_cli.transfer.errors import HostKeyError
from worldland_cli.transfer.lane import OpenSshLane
from worldland_cli.transfer.lanestart import LANE_MIN, EarlyLane
from worldland_cli.transfer.model import Options
from worldland_cli.transfer.targets import parse_ssh_url
from worldland_cli.transfer.upload import upload


@pytest.mark.parametrize("way", ["send", "receive"])
def test_an_early_lane_carries_the_file_and_no_other_lane_opens(
    sshd: SshdServer, creds: Credentials, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, way: str
) -> None:
    spy = LaneSpy(monkeypatch)
    src = random_file(tmp_path / "src" / "big.bin", LANE_MIN + 7)
    if way == "send":
        loc = parse_ssh_url(sshd.url(str(tmp_path / "remote")), "x")
        early = EarlyLane.start(loc, creds, Options(), [LANE_MIN + 7])
        assert early is not None
        done = asyncio.run(upload([src], loc, creds, None, None, early))
        landed = tmp_path / "remote" / "big.bin"
    else:
        loc = parse_ssh_url(sshd.url(str(src)), "x")
        early = EarlyLane.start(loc, creds, Options(), None)
        assert early is not None
        done = asyncio.run(download(loc, tmp_path / "back", creds, None, None, early))
        landed = tmp_path / "back" / "big.bin"
    early.discard()
    assert done.files[0].carried_by == "openssh"
    assert sha256_of(landed) == sha256_of(src)
    assert spy.opened == []  # the early lane was the one, adopted
    assert _our_ssh_children() == []


def test_an_early_lane_starts_only_where_the_first_lane_would(
    sshd: SshdServer, creds: Credentials, tmp_path: Path
) -> None:
    loc = parse_ssh_url(sshd.url(str(tmp_path)), "x")
    big = [LANE_MIN]
    refused = [
        EarlyLane.start(loc, creds, Options(), [LANE_MIN - 1, 10]),  # no large file
        EarlyLane.start(loc, creds, Options(dry_run=True), big),
        EarlyLane.start(loc, creds, Options(openssh=False), big),
        EarlyLane.start(loc, creds, Options(lanes=2), big),
        EarlyLane.start(
            dataclasses.replace(loc, host_key=sshd.host_public_key), creds, Options(), big
        ),
        EarlyLane.start(
            loc, dataclasses.replace(creds, known_hosts=tmp_path / "none"), Options(), big
        ),
    ]
    assert refused == [None] * len(refused)
    assert _our_ssh_children() == []
    early = EarlyLane.start(loc, creds, Options(), big)
    assert early is not None and _our_ssh_children() != []
    claimed = early.claim()
    early.discard()  # claimed: nothing of it left to stop
    assert claimed is not None and _our_ssh_children() != []
    claimed.discard()
    assert _our_ssh_children() == []


def test_an_early_lane_nobody_takes_is_stopped(
    sshd: SshdServer, creds: Credentials, tmp_path: Path
) -> None:
    """A receive starts one on the chance of a large file; here there is none."""
    small = random_file(tmp_path / "pod" / "small.bin", 1000)
    loc = parse_ssh_url(sshd.url(str(small)), "x")
    early = EarlyLane.start(loc, creds, Options(), None)
    assert early is not None
    got = asyncio.run(download(loc, tmp_path / "back", creds, None, None, early))
    early.discard()
    assert got.files[0].carried_by != "openssh"
    assert sha256_of(tmp_path / "back" / "small.bin") == sha256_of(small)
    assert _our_ssh_children() == []


def test_an_early_lane_trusts_only_what_known_hosts_says(
    sshd: SshdServer, creds: Credentials, tmp_path: Path
) -> None:
    other = asyncssh.generate_private_key("ssh-ed25519").export_public_key().decode()
    known = tmp_path / "known_hosts"
    known.write_text(f"[{sshd.host}]:{sshd.port} {' '.join(other.split()[:2])}\n")
    loc = parse_ssh_url(sshd.url(str(tmp_path)), "x")
    early = EarlyLane.start(loc, dataclasses.replace(creds, known_hosts=known), Options(), None)
    assert early is not None
    with pytest.raises(HostKeyError):
        OpenSshLane.adopt(early)
    assert _our_ssh_children() == []
    assert known.read_text().count("\n") == 1  # nothing added to the user's file
