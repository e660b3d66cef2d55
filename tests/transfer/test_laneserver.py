"""The lane's own far end (laneserver.py): run through a real sshd, and run bare on pipes."""

from __future__ import annotations

import hashlib
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.sshd import SshdServer, account_home, sshd_missing_reason, start_sshd
from tests.transfer.conftest import random_file
from worldland_cli.transfer import pipeline
from worldland_cli.transfer.errors import RemoteRefused
from worldland_cli.transfer.farprogram import START
from worldland_cli.transfer.lane import OpenSshLane
from worldland_cli.transfer.laneserver import HELLO, PROGRAM
from worldland_cli.transfer.sftpcodec import (
    DATA,
    DATA_HEAD,
    FX_EOF,
    PF_CREAT,
    PF_READ,
    PF_TRUNC,
    PF_WRITE,
    VERSION,
    Codec,
)
from worldland_cli.transfer.ssh import Credentials
from worldland_cli.transfer.targets import parse_ssh_url

BLOCK = 255 * 1024


class Collect:
    def __init__(self) -> None:
        self.got = bytearray()

    def write(self, view: memoryview) -> None:
        self.got += view


def round_trip(lane: OpenSshLane, tmp_path: Path) -> None:
    """A file pushed through ``lane`` (created owner-only), then fetched back from 1000."""
    src = random_file(tmp_path / "src.bin", 3 * BLOCK + 99)
    data = src.read_bytes()
    remote = tmp_path / "remote.bin"
    digest = hashlib.sha256()
    reached = pipeline.push(
        lane, src, str(remote), 0, digest, lambda n, r: None, fsync=True, in_flight=3
    )
    assert reached == len(data) and remote.read_bytes() == data
    assert remote.stat().st_mode & 0o777 == 0o600
    sink = Collect()
    pipeline.fetch(lane, str(remote), 1000, len(data), sink, lambda n, r: None, in_flight=3)
    assert bytes(sink.got) == data[1000:]


def open_lane(server: SshdServer, tmp_path: Path) -> OpenSshLane:
    creds = Credentials(identity=server.client_key, known_hosts=server.known_hosts)
    loc = parse_ssh_url(server.url(str(tmp_path)), "x")
    return OpenSshLane.open(loc, creds, [server.host_public_key])


def test_the_lane_runs_our_server_where_the_pod_has_python3(
    sshd: SshdServer, tmp_path: Path
) -> None:
    lane = open_lane(sshd, tmp_path)
    try:
        assert lane.far_end == "worldland"
        assert lane.can_fsync and lane.block == BLOCK
        round_trip(lane, tmp_path)
    finally:
        lane.close()


@pytest.fixture
def account(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[SshdServer]:
    """An sshd whose account's ~/.bashrc is the test's parameter."""
    reason = sshd_missing_reason()
    if reason:
        pytest.skip(reason)
    config = account_home(tmp_path / "home", request.param)
    with start_sshd(tmp_path / "sshd", extra_config=config) as server:
        yield server


@pytest.mark.parametrize(
    ("account", "far_end"),
    [
        ("export PATH=/nonexistent\n", "sftp"),  # no python3: the account's sftp subsystem
        ("echo 'welcome to the pod'\nprintf '\\0\\0\\0'\n", "worldland"),  # chatter skipped
    ],
    indirect=["account"],
    ids=["no-python3", "chatty-bashrc"],
)
def test_the_lane_works_whatever_the_login_shell_does(
    account: SshdServer, far_end: str, tmp_path: Path
) -> None:
    lane = open_lane(account, tmp_path)
    try:
        assert lane.far_end == far_end
        round_trip(lane, tmp_path)
    finally:
        lane.close()


def test_an_account_forced_to_internal_sftp_is_served_as_it_is(tmp_path: Path) -> None:
    reason = sshd_missing_reason()
    if reason:
        pytest.skip(reason)
    with start_sshd(tmp_path / "sshd", extra_config=["ForceCommand internal-sftp"]) as server:
        lane = open_lane(server, tmp_path)
        try:
            assert lane.far_end == "sftp"
            round_trip(lane, tmp_path)
        finally:
            lane.close()


class Bare:
    """The server program on pipes, no ssh between: requests built and answers read by the
    lane's own codec."""

    def __init__(self, python: str | None = None) -> None:
        argv = [python, "-c", PROGRAM] if python else ["sh", "-c", START, PROGRAM]
        self.proc = subprocess.Popen(
            [*argv, "n0nce"], stdin=subprocess.PIPE, stdout=subprocess.PIPE
        )
        self.codec = Codec("bare")
        assert self.read(len(HELLO) + 7) == b"\n" + HELLO + b"n0nce\n"

    def send(self, *parts: bytes) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(b"".join(parts))
        self.proc.stdin.flush()

    def read(self, n: int) -> bytes:
        assert self.proc.stdout is not None
        data = self.proc.stdout.read(n)
        assert len(data) == n
        return data

    def answer(self) -> tuple[int, bytes]:
        length, kind = self.codec.frame(self.read(5))
        return kind, self.read(length - 1)

    def close(self) -> int:
        assert self.proc.stdin is not None
        self.proc.stdin.close()
        return self.proc.wait(timeout=10)


def test_a_refused_write_is_answered_and_the_next_request_read_where_it_starts(
    tmp_path: Path,
) -> None:
    src = random_file(tmp_path / "src.bin", 5000)
    far = Bare()
    far.send(far.codec.init())
    assert far.answer()[0] == VERSION
    far.send(far.codec.open(str(src), PF_READ, None))
    handle = far.codec.handle(*far.answer(), "open")
    far.send(far.codec.write(handle, 0, 100_000), bytes(100_000))  # read-only: refused
    with pytest.raises(RemoteRefused):
        far.codec.expect_status(*far.answer(), "write")
    far.send(far.codec.read(handle, 4000, 2000))
    length, kind = far.codec.frame(far.read(5))
    assert kind == DATA
    n = far.codec.data_length(far.read(DATA_HEAD), length, 2000, "src")
    assert far.read(n) == src.read_bytes()[4000:]  # short: the file ends there
    far.send(far.codec.read(handle, 5000, 10))
    far.codec.expect_status(*far.answer(), "read", FX_EOF)
    far.send(far.codec.open(str(tmp_path / "missing"), PF_READ, None))
    with pytest.raises(RemoteRefused, match="No such file"):
        far.codec.handle(*far.answer(), "open")
    assert far.close() == 0  # stdin closed between requests: a clean end


def _oldest_python() -> str | None:
    """A python 3.6 (the oldest the far-side programs claim to run on), if this machine has
    one: no os.splice there, so WRITE data takes the read-and-pwrite way."""
    pyenv = sorted(Path.home().glob(".pyenv/versions/3.6.*/bin/python3"))
    if pyenv:
        return str(pyenv[0])
    found = shutil.which("python3.6")
    return found if found and "/shims/" not in found else None  # a shim may not run it


def test_the_server_moves_a_file_both_ways_on_python_3_6(tmp_path: Path) -> None:
    python = _oldest_python()
    if python is None:
        pytest.skip("no python 3.6 on this machine")
    data = random_file(tmp_path / "src.bin", 2 * BLOCK + 7).read_bytes()
    path = tmp_path / "copy.bin"
    far = Bare(python)
    far.send(far.codec.init())
    assert far.answer()[0] == VERSION
    far.send(far.codec.open(str(path), PF_WRITE | PF_CREAT | PF_TRUNC, 0o600))
    handle = far.codec.handle(*far.answer(), "open")
    for offset in range(0, len(data), BLOCK):
        chunk = data[offset : offset + BLOCK]
        far.send(far.codec.write(handle, offset, len(chunk)), chunk)
        far.codec.expect_status(*far.answer(), "write")
    far.send(far.codec.close(handle))
    far.codec.expect_status(*far.answer(), "close")
    assert path.read_bytes() == data and path.stat().st_mode & 0o777 == 0o600
    far.send(far.codec.open(str(path), PF_READ, None))
    handle = far.codec.handle(*far.answer(), "open")
    got = b""
    while True:
        far.send(far.codec.read(handle, len(got), BLOCK))
        length, kind = far.codec.frame(far.read(5))
        if kind != DATA:
            far.codec.expect_status(kind, far.read(length - 1), "read", FX_EOF)
            break
        got += far.read(far.codec.data_length(far.read(DATA_HEAD), length, BLOCK, "copy"))
    assert got == data
    assert far.close() == 0
