"""Cut links, stale .part files and corrupted sources: never a wrong file under the final name."""

from __future__ import annotations

import asyncio
import dataclasses
import os
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.support.sshd import SshdServer
from tests.transfer.conftest import Hook, random_file, sha256_of
from worldland_cli.transfer.download import download
from worldland_cli.transfer.errors import ChecksumError, UnreachableError
from worldland_cli.transfer.model import Options
from worldland_cli.transfer.ssh import Credentials
from worldland_cli.transfer.targets import parse_ssh_url
from worldland_cli.transfer.upload import upload

SIZE = 24 * (1 << 20) + 123
CHUNK = 255 * 1024
FAST_RETRY = Options(retries=3, backoff=0.05)
REFUSED = r"checksum mismatch|changed during the transfer"
# The smallest file that moves on its own (smaller ones travel packed, tests/transfer/test_tree.py).
ONE_BY_ONE = 5 * CHUNK


# Both data paths (the OpenSSH lane, and asyncssh's) share the pipeline that keeps a .part
# a clean prefix; each is cut here.
BOTH_PATHS = pytest.mark.parametrize("openssh", [True, False], ids=["lane", "asyncssh"])


@BOTH_PATHS
def test_upload_cut_midway_resumes_and_sends_only_the_rest(
    sshd: SshdServer, creds: Credentials, tmp_path: Path, openssh: bool
) -> None:
    src = random_file(tmp_path / "big.bin", SIZE)
    remote = tmp_path / "remote"
    hook = Hook(SIZE // 3, sshd.kill_sessions)
    opts = dataclasses.replace(FAST_RETRY, openssh=openssh)
    summary = asyncio.run(
        upload([src], parse_ssh_url(sshd.url(str(remote)), "x"), creds, opts, hook)
    )
    assert hook.fired_at is not None
    assert summary.retries == 1
    assert sha256_of(remote / "big.bin") == sha256_of(src)
    result = summary.files[0]
    assert result.resumed_from >= hook.fired_at
    assert result.bytes_after_resume <= SIZE - hook.fired_at + CHUNK
    assert openssh or result.carried_by == "asyncssh"
    assert any("resuming" in n for n in hook.notes)


@BOTH_PATHS
def test_download_cut_midway_resumes_and_fetches_only_the_rest(
    sshd: SshdServer, creds: Credentials, tmp_path: Path, openssh: bool
) -> None:
    src = random_file(tmp_path / "remote" / "big.bin", SIZE)
    hook = Hook(SIZE // 2, sshd.kill_sessions)
    back = tmp_path / "back"
    opts = dataclasses.replace(FAST_RETRY, openssh=openssh)
    summary = asyncio.run(download(parse_ssh_url(sshd.url(str(src)), "x"), back, creds, opts, hook))
    assert hook.fired_at is not None and summary.retries == 1
    assert sha256_of(back / "big.bin") == sha256_of(src)
    result = summary.files[0]
    assert result.resumed_from >= hook.fired_at - CHUNK
    assert result.bytes_after_resume <= SIZE - hook.fired_at + CHUNK
    assert not (back / "big.bin.part").exists()


def test_a_second_run_resumes_the_part_left_by_a_failed_one(
    sshd: SshdServer, creds: Credentials, tmp_path: Path
) -> None:
    src = random_file(tmp_path / "remote" / "big.bin", SIZE)
    back = tmp_path / "back"
    loc = parse_ssh_url(sshd.url(str(src)), "x")
    # Few requests in flight, so the bytes already asked for when the link is cut (up to
    # 64 x 255 KiB by default, more than half of SIZE) cannot finish the file anyway.
    no_retry = Options(retries=0, requests_in_flight=4)
    with pytest.raises(UnreachableError, match="kept dropping"):
        asyncio.run(download(loc, back, creds, no_retry, Hook(SIZE // 2, sshd.kill_sessions)))
    left = (back / "big.bin.part").stat().st_size
    assert 0 < left < SIZE and not (back / "big.bin").exists()

    summary = asyncio.run(download(loc, back, creds))
    assert summary.files[0].resumed_from == left
    assert summary.files[0].bytes_after_resume == SIZE - left
    assert sha256_of(back / "big.bin") == sha256_of(src)
    assert sorted(p.name for p in back.iterdir()) == ["big.bin"]  # no .part, no mark


def test_a_stale_part_that_does_not_match_is_discarded(
    sshd: SshdServer, creds: Credentials, tmp_path: Path
) -> None:
    src = random_file(tmp_path / "remote" / "big.bin", SIZE)
    back = tmp_path / "back"
    loc = parse_ssh_url(sshd.url(str(src)), "x")
    no_retry = Options(retries=0, requests_in_flight=4)
    with pytest.raises(UnreachableError):
        asyncio.run(download(loc, back, creds, no_retry, Hook(SIZE // 2, sshd.kill_sessions)))
    _corrupt(back / "big.bin.part")  # our .part, but no longer a prefix of the source
    summary = asyncio.run(download(loc, back, creds))
    assert summary.files[0].resumed_from == 0
    assert sha256_of(back / "big.bin") == sha256_of(src)
    assert sorted(p.name for p in back.iterdir()) == ["big.bin"]


def _corrupt(path: Path) -> None:
    with path.open("r+b") as f:
        first = f.read(1)
        f.seek(0)
        f.write(bytes([first[0] ^ 0xFF]))


def test_download_of_content_that_changes_under_us_fails_and_keeps_no_file(
    sshd: SshdServer, creds: Credentials, tmp_path: Path
) -> None:
    # The far side hashes the source while we read it; a change after every byte arrived
    # (its hash may already be done) is still caught by its before/after stat of the file.
    src = random_file(tmp_path / "remote" / "f.bin", ONE_BY_ONE)
    back = tmp_path / "back"
    hook = Hook(ONE_BY_ONE, lambda: _corrupt(src))  # after every byte arrived, before the check
    with pytest.raises(ChecksumError, match=REFUSED):
        asyncio.run(download(parse_ssh_url(sshd.url(str(src)), "x"), back, creds, None, hook))
    assert hook.fired_at is not None
    assert list(back.iterdir()) == []


def test_download_of_a_source_changed_midway_fails_and_keeps_no_file(
    sshd: SshdServer, creds: Credentials, tmp_path: Path
) -> None:
    src = random_file(tmp_path / "remote" / "big.bin", SIZE)
    back = tmp_path / "back"
    hook = Hook(SIZE // 3, lambda: _corrupt(src))  # a byte we already hold
    with pytest.raises(ChecksumError, match=REFUSED):
        asyncio.run(download(parse_ssh_url(sshd.url(str(src)), "x"), back, creds, None, hook))
    assert hook.fired_at is not None
    assert list(back.iterdir()) == []


def _replace_with_other_bytes(path: Path) -> None:
    other = path.with_name("other")
    random_file(other, path.stat().st_size)
    other.replace(path)


def _shrink(path: Path) -> None:
    os.truncate(path, path.stat().st_size - 1)


@pytest.mark.parametrize(
    "corrupt", [_replace_with_other_bytes, _shrink], ids=["replaced", "shrunk"]
)
def test_upload_corrupted_on_the_far_side_fails_and_keeps_no_file(
    sshd: SshdServer, creds: Credentials, tmp_path: Path, corrupt: Callable[[Path], None]
) -> None:
    # The corruption comes after the last write was acknowledged, just before the far side
    # hashes the finished .part: that hash must catch it.
    src = random_file(tmp_path / "f.bin", ONE_BY_ONE)
    remote = tmp_path / "remote"
    hook = Hook(ONE_BY_ONE, lambda: corrupt(remote / "f.bin.part"))
    with pytest.raises(ChecksumError):
        asyncio.run(upload([src], parse_ssh_url(sshd.url(str(remote)), "x"), creds, None, hook))
    assert hook.fired_at is not None
    assert sorted(p.name for p in remote.iterdir()) == []
