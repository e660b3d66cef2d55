"""A large file over several lanes at once (ranged.py): cut at random points, resumed by blocks.

The real sshd is on loopback, where the round trip asks for one lane; ``--lanes`` (the
``lanes`` option) forces several, as a far link would choose them.
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import json
import os
import random
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.support.sshd import SshdServer
from tests.transfer.conftest import Hook, random_file, sha256_of
from worldland_cli.transfer.download import download
from worldland_cli.transfer.errors import UnreachableError
from worldland_cli.transfer.model import Options
from worldland_cli.transfer.partmark import PartMark, mark_of
from worldland_cli.transfer.ranged import (
    BLOCK,
    CHUNK,
    MAX_LANES,
    Frontier,
    block_size,
    chunks,
    kept_blocks,
    lanes_for,
)
from worldland_cli.transfer.ssh import WINDOW, Credentials
from worldland_cli.transfer.targets import parse_ssh_url
from worldland_cli.transfer.upload import upload

SIZE = 5 * BLOCK + 4321  # six blocks, the last one short
LANES = Options(lanes=4, retries=6, backoff=0.05)


class Cuts(Hook):
    """A progress sink that cuts every SSH session at each of ``points`` (bytes moved)."""

    def __init__(self, points: list[int], cut: Callable[[], object]) -> None:
        super().__init__(min(points), cut)
        self.points = sorted(points)
        self.fired = 0

    def advance(self, nbytes: int) -> None:
        self.done += nbytes
        while self.points and self.done >= self.points[0]:
            self.points.pop(0)
            self.fired += 1
            self.action()


def test_the_number_of_lanes_follows_the_round_trip() -> None:
    assert lanes_for(0.0005) == 1  # loopback
    assert lanes_for(0.014) == 1
    assert lanes_for(0.020) == 2
    assert lanes_for(0.100) == MAX_LANES  # 100 ms: the 2 MiB windows of 8 lanes, 168 MB/s
    assert lanes_for(5.0) == MAX_LANES
    # Receiving, each lane's window is ours, 16 MiB: two lanes fill 168 MB/s at 100 ms.
    assert lanes_for(0.100, WINDOW) == 2
    assert lanes_for(0.290, WINDOW) == 3


def test_chunks_cover_exactly_the_blocks_not_kept() -> None:
    size = 7 * BLOCK + 10
    todo = list(chunks(size, BLOCK, {1, 2, 5}))
    covered = sorted({start // BLOCK for start, _ in todo})
    assert covered == [0, 3, 4, 6, 7]
    assert all(0 < end - start <= CHUNK for start, end in todo)
    assert todo == sorted(todo) and todo[-1][1] == size
    assert sum(end - start for start, end in todo) == size - 3 * BLOCK
    # A huge file gets larger blocks, so one answer lists a bounded number of hashes.
    assert block_size(1 << 50) > BLOCK and (1 << 50) / block_size(1 << 50) <= 4096


def test_the_frontier_is_the_complete_prefix_whatever_order_pieces_finish_in() -> None:
    seen: list[int] = []
    frontier = Frontier(seen.append)
    pieces = [(i * 10, 10) for i in range(20)]
    random.Random(7).shuffle(pieces)
    for start, length in pieces:
        frontier.done(start, length)
    assert seen[-1] == 200 and seen == sorted(seen)
    assert all(at % 10 == 0 for at in seen)


def test_only_whole_blocks_within_what_is_held_are_kept() -> None:
    ours = ["a", "b", "c", "d"]
    theirs = ["a", "x", "c", "d"]
    size = 3 * BLOCK + 5
    # block 1 differs; block 3 (the short last one) is whole only if all of it is held
    assert kept_blocks(ours, theirs, size, size, BLOCK) == {0, 2, 3}
    assert kept_blocks(ours, theirs, 3 * BLOCK + 4, size, BLOCK) == {0, 2}


@pytest.mark.parametrize("direction", ["send", "receive"])
def test_a_file_over_several_lanes_arrives_whole(
    sshd: SshdServer, creds: Credentials, tmp_path: Path, direction: str
) -> None:
    if direction == "send":
        src = random_file(tmp_path / "big.bin", SIZE)
        dest = tmp_path / "remote" / "big.bin"
        summary = asyncio.run(
            upload([src], parse_ssh_url(sshd.url(str(dest.parent)), "x"), creds, LANES)
        )
    else:
        src = random_file(tmp_path / "remote" / "big.bin", SIZE)
        dest = tmp_path / "back" / "big.bin"
        loc = parse_ssh_url(sshd.url(str(src)), "x")
        summary = asyncio.run(download(loc, dest.parent, creds, LANES))
    result = summary.files[0]
    assert (result.carried_by, result.lanes) == ("asyncssh", 4)
    assert sha256_of(dest) == sha256_of(src) == result.sha256
    assert result.bytes_moved == SIZE
    assert sorted(p.name for p in dest.parent.iterdir()) == ["big.bin"]  # no .part, no mark
    assert dest.stat().st_mode & 0o777 == src.stat().st_mode & 0o777


@pytest.mark.parametrize("direction", ["send", "receive"])
@pytest.mark.parametrize("seed", [1, 2])
def test_lanes_cut_at_random_points_resume_and_the_whole_file_is_right(
    sshd: SshdServer, creds: Credentials, tmp_path: Path, direction: str, seed: int
) -> None:
    """Every session killed at three random points; each retry keeps the blocks that match."""
    rng = random.Random(seed)
    cuts = Cuts([rng.randrange(BLOCK // 2, SIZE - BLOCK) for _ in range(3)], sshd.kill_sessions)
    # Few requests in flight, so a cut finds the lanes mid-chunk rather than done.
    opts = dataclasses.replace(LANES, requests_in_flight=4)
    if direction == "send":
        src = random_file(tmp_path / "big.bin", SIZE)
        dest = tmp_path / "remote" / "big.bin"
        loc = parse_ssh_url(sshd.url(str(dest.parent)), "x")
        summary = asyncio.run(upload([src], loc, creds, opts, cuts))
    else:
        src = random_file(tmp_path / "remote" / "big.bin", SIZE)
        dest = tmp_path / "back" / "big.bin"
        summary = asyncio.run(
            download(parse_ssh_url(sshd.url(str(src)), "x"), dest.parent, creds, opts, cuts)
        )
    assert cuts.fired >= 1 and summary.retries >= 1
    assert sha256_of(dest) == sha256_of(src)
    assert sorted(p.name for p in dest.parent.iterdir()) == ["big.bin"]
    # Resumes kept blocks: far less than a fresh start per cut crossed the link.
    assert summary.files[0].bytes_moved < SIZE * (1 + summary.retries) - BLOCK


def test_a_rerun_sends_only_the_blocks_that_differ(
    sshd: SshdServer, creds: Credentials, tmp_path: Path
) -> None:
    """A .part of ours with blocks right, wrong, unwritten (a hole) and missing at the end."""
    src = random_file(tmp_path / "big.bin", SIZE)
    remote = tmp_path / "remote"
    remote.mkdir()
    part = remote / "big.bin.part"
    data = src.read_bytes()
    with part.open("wb") as f:
        f.write(data[: 4 * BLOCK])
        f.seek(BLOCK)
        f.write(os.urandom(BLOCK))  # block 1 wrong
        f.seek(2 * BLOCK)
        f.write(bytes(BLOCK))  # block 2 a hole, as a lane that never wrote it leaves
    # blocks 4 and 5 were never written: the .part ends after block 3
    mark = PartMark(str(src.absolute()), SIZE, int(src.stat().st_mtime))
    Path(mark_of(str(part))).write_bytes(mark.encode())

    loc = parse_ssh_url(sshd.url(str(remote)), "x")
    summary = asyncio.run(upload([src], loc, creds, LANES))
    result = summary.files[0]
    assert result.resumed_from == 2 * BLOCK  # blocks 0 and 3
    assert result.bytes_moved == SIZE - 2 * BLOCK
    assert hashlib.sha256((remote / "big.bin").read_bytes()).hexdigest() == sha256_of(src)


def test_a_killed_run_leaves_a_part_the_next_run_resumes(
    sshd: SshdServer, creds: Credentials, tmp_path: Path
) -> None:
    src = random_file(tmp_path / "remote" / "big.bin", SIZE)
    back = tmp_path / "back"
    loc = parse_ssh_url(sshd.url(str(src)), "x")
    no_retry = Options(lanes=3, retries=0, requests_in_flight=4)
    with pytest.raises(UnreachableError):
        asyncio.run(download(loc, back, creds, no_retry, Cuts([SIZE // 2], sshd.kill_sessions)))
    assert (back / "big.bin.part").exists() and not (back / "big.bin").exists()

    summary = asyncio.run(download(loc, back, creds, Options(lanes=3)))
    result = summary.files[0]
    assert result.resumed_from >= BLOCK
    assert result.bytes_moved == SIZE - result.resumed_from
    assert sha256_of(back / "big.bin") == sha256_of(src)


def test_lanes_is_a_flag_of_the_real_command_and_json_says_how_many_carried(
    sshd: SshdServer, tmp_path: Path
) -> None:
    src = random_file(tmp_path / "big.bin", 9 << 20)
    remote = tmp_path / "remote"
    remote.mkdir()
    auth = ["--identity", str(sshd.client_key), "--known-hosts", str(sshd.known_hosts)]
    worldland = str(Path(sys.executable).with_name("worldland"))
    argv = [worldland, "send", str(src), sshd.url(str(remote)), "--lanes", "3", "--json", *auth]
    done = subprocess.run(argv, capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    (result,) = json.loads(done.stdout)["files"]
    assert (result["lanes"], result["carried_by"]) == (3, "asyncssh")
    assert result["sha256"] == sha256_of(remote / "big.bin") == sha256_of(src)

    argv[argv.index("3")] = "0"
    refused = subprocess.run(argv, capture_output=True, text=True, check=False)
    assert refused.returncode == 2 and "--lanes" in json.loads(refused.stdout)["error"]
