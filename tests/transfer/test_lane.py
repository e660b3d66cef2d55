"""The OpenSSH lane: large files through the system's ssh with our SFTP framing, real sshd."""

from __future__ import annotations

import asyncio
import hashlib
import os
from pathlib import Path

import asyncssh
import pytest

from tests.support.procs import process_table
from tests.support.sshd import SshdServer
from tests.transfer.conftest import Hook, random_file, sha256_of
from worldland_cli.transfer import pipeline
from worldland_cli.transfer.download import download
from worldland_cli.transfer.errors import (
    ChecksumError,
    DestinationExistsError,
    HostKeyError,
    TransferError,
)
from worldland_cli.transfer.lane import OpenSshLane, ssh_argv
from worldland_cli.transfer.lanes import LANE_MIN
from worldland_cli.transfer.model import Options
from worldland_cli.transfer.ssh import Credentials
from worldland_cli.transfer.targets import parse_ssh_url
from worldland_cli.transfer.upload import upload


def test_large_files_take_the_lane_and_small_ones_asyncssh_both_ways(
    sshd: SshdServer, creds: Credentials, tmp_path: Path
) -> None:
    tree = tmp_path / "out" / "run"
    big = random_file(tree / "big.bin", LANE_MIN + 255 * 1024 * 3 + 17)
    edge = random_file(tree / "edge.bin", LANE_MIN)
    small = random_file(tree / "small.bin", LANE_MIN - 1)
    remote = tmp_path / "remote"
    sent = asyncio.run(upload([tree], parse_ssh_url(sshd.url(str(remote)), "x"), creds))
    by_name = {Path(f.path).name: f for f in sent.files}
    assert by_name["big.bin"].carried_by == by_name["edge.bin"].carried_by == "openssh"
    assert by_name["small.bin"].carried_by == "asyncssh"
    for f in (big, edge, small):
        assert sha256_of(remote / "run" / f.name) == sha256_of(f) == by_name[f.name].sha256
        assert by_name[f.name].verified_by == "remote-exec"

    back = tmp_path / "back"
    got = asyncio.run(download(parse_ssh_url(sshd.url(str(remote / "run")), "x"), back, creds))
    assert {Path(f.path).name: f.carried_by for f in got.files} == {
        "big.bin": "openssh",
        "edge.bin": "openssh",
        "small.bin": "asyncssh",
    }
    for f in (big, edge, small):
        assert sha256_of(back / "run" / f.name) == sha256_of(f)
    assert sorted(p.name for p in (back / "run").iterdir()) == ["big.bin", "edge.bin", "small.bin"]


def test_without_ssh_installed_asyncssh_carries_everything(
    sshd: SshdServer, creds: Credentials, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    empty = tmp_path / "no-tools"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    src = random_file(tmp_path / "big.bin", LANE_MIN + 5)
    remote = tmp_path / "remote"
    hook = Hook(1 << 60, lambda: None)
    sent = asyncio.run(upload([src], parse_ssh_url(sshd.url(str(remote)), "x"), creds, None, hook))
    assert sent.files[0].carried_by == "asyncssh"
    assert sha256_of(remote / "big.bin") == sha256_of(src)
    assert any("not using the OpenSSH client" in n and "not installed" in n for n in hook.notes)


def test_the_lane_can_be_turned_off(sshd: SshdServer, creds: Credentials, tmp_path: Path) -> None:
    src = random_file(tmp_path / "remote" / "big.bin", LANE_MIN + 1)
    back = tmp_path / "back"
    got = asyncio.run(
        download(parse_ssh_url(sshd.url(str(src)), "x"), back, creds, Options(openssh=False))
    )
    assert got.files[0].carried_by == "asyncssh"
    assert sha256_of(back / "big.bin") == sha256_of(src)


def test_the_lane_refuses_any_host_key_but_the_verified_one(
    sshd: SshdServer, creds: Credentials, tmp_path: Path
) -> None:
    other = asyncssh.generate_private_key("ssh-ed25519").export_public_key().decode()
    loc = parse_ssh_url(sshd.url(str(tmp_path)), "x")
    with pytest.raises(HostKeyError, match="another host key"):
        OpenSshLane.open(loc, creds, [" ".join(other.split()[:2])])
    lane = OpenSshLane.open(loc, creds, [sshd.host_public_key])
    lane.close()


class Collect:
    """A sink that keeps what a fetch gives it."""

    def __init__(self) -> None:
        self.got = bytearray()

    def write(self, view: memoryview) -> None:
        self.got += view


def test_the_lane_resumes_onto_a_prefix_and_fetches_a_range(
    sshd: SshdServer, creds: Credentials, tmp_path: Path
) -> None:
    size = 3 * 255 * 1024 + 99
    src = random_file(tmp_path / "src.bin", size)
    data = src.read_bytes()
    remote = tmp_path / "remote.part"
    half = size // 2 + 3
    remote.write_bytes(data[:half])
    moved: list[tuple[int, int]] = []
    lane = OpenSshLane.open(
        parse_ssh_url(sshd.url(str(tmp_path)), "x"), creds, [sshd.host_public_key]
    )
    try:
        digest = hashlib.sha256(data[:half])
        reached = pipeline.push(
            lane,
            src,
            str(remote),
            half,
            digest,
            lambda n, r: moved.append((n, r)),
            fsync=True,
            in_flight=2,
        )
        assert reached == size and digest.hexdigest() == hashlib.sha256(data).hexdigest()
        assert remote.read_bytes() == data
        assert sum(n for n, _ in moved) == size - half and moved[-1][1] == size

        sink = Collect()
        pipeline.fetch(lane, str(src), 1000, size, sink, lambda n, r: None, in_flight=3)
        assert bytes(sink.got) == data[1000:]
    finally:
        lane.close()


def test_the_lane_reports_remote_errors_plainly(
    sshd: SshdServer, creds: Credentials, tmp_path: Path
) -> None:
    lane = OpenSshLane.open(
        parse_ssh_url(sshd.url(str(tmp_path)), "x"), creds, [sshd.host_public_key]
    )
    try:
        with pytest.raises(TransferError, match=r"cannot open .*missing\.bin on the remote"):
            pipeline.fetch(
                lane,
                str(tmp_path / "missing.bin"),
                0,
                10,
                Collect(),
                lambda n, r: None,
                in_flight=1,
            )
    finally:
        lane.close()


def test_a_source_that_shrinks_during_a_lane_download_keeps_no_file(
    sshd: SshdServer, creds: Credentials, tmp_path: Path
) -> None:
    size = LANE_MIN * 2
    src = random_file(tmp_path / "remote" / "big.bin", size)
    back = tmp_path / "back"
    hook = Hook(LANE_MIN // 2, lambda: os.truncate(src, size // 2))
    with pytest.raises((TransferError, ChecksumError)):
        asyncio.run(download(parse_ssh_url(sshd.url(str(src)), "x"), back, creds, None, hook))
    assert hook.fired_at is not None
    assert not (back / "big.bin").exists()


def test_the_lane_reads_no_ssh_config_and_forwards_nothing(tmp_path: Path) -> None:
    loc = parse_ssh_url("ssh://renter@pod.example:2222/workspace", "x")
    key = tmp_path / "id"
    key.write_text("k")
    argv = ssh_argv(loc, Credentials(identity=key, use_agent=False), tmp_path / "kh")
    assert argv[:3] == ["ssh", "-F", "none"]
    assert {"-x", "-a", "-T"} <= set(argv)
    options = {argv[i + 1] for i, a in enumerate(argv) if a == "-o"}
    assert {
        "BatchMode=yes",
        "StrictHostKeyChecking=yes",
        f"UserKnownHostsFile={tmp_path / 'kh'}",
        "GlobalKnownHostsFile=none",
        "ClearAllForwardings=yes",
        "IdentityAgent=none",
        "IdentitiesOnly=yes",
        "PasswordAuthentication=no",
    } <= options
    assert argv[-5:] == ["renter", "-s", "--", "pod.example", "sftp"]
    assert argv[argv.index("-i") + 1] == str(key)


def _our_ssh_children() -> list[int]:
    return [
        pid
        for pid, (name, parent) in process_table().items()
        if name == "ssh" and parent == os.getpid()
    ]


def test_no_ssh_process_outlives_a_transfer_that_worked_or_failed(
    sshd: SshdServer, creds: Credentials, tmp_path: Path
) -> None:
    src = random_file(tmp_path / "big.bin", LANE_MIN + 1)
    target = parse_ssh_url(sshd.url(str(tmp_path / "remote")), "x")
    sent = asyncio.run(upload([src], target, creds))
    assert sent.files[0].carried_by == "openssh"
    assert _our_ssh_children() == []
    # A lane is not needed once the destination is taken by other content.
    random_file(src, LANE_MIN + 1)
    with pytest.raises(DestinationExistsError):
        asyncio.run(upload([src], target, creds))
    assert _our_ssh_children() == []


def test_a_lane_writes_ranges_out_of_order_into_a_file_it_creates(
    sshd: SshdServer, creds: Credentials, tmp_path: Path
) -> None:
    """Either carrier may carry a ranged file's share (pipeline.push_ranges): the first
    range to arrive creates the .part owner-only, later ones never cut it."""
    data = os.urandom(3 * 255 * 1024 + 7)
    remote = tmp_path / "ranged.part"
    todo = [(255 * 1024, len(data)), (0, 255 * 1024)]  # the end first
    acked: list[tuple[int, int]] = []
    lane = OpenSshLane.open(
        parse_ssh_url(sshd.url(str(tmp_path)), "x"), creds, [sshd.host_public_key]
    )
    try:
        pipeline.push_ranges(
            lane,
            lambda offset, length: data[offset : offset + length],
            str(remote),
            lambda: todo.pop(0) if todo else None,
            lambda offset, length: acked.append((offset, length)),
            in_flight=2,
        )
    finally:
        lane.close()
    assert remote.read_bytes() == data
    assert remote.stat().st_mode & 0o777 == 0o600
    assert sorted(acked)[0] == (0, 255 * 1024) and sum(n for _, n in acked) == len(data)
