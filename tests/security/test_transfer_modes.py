"""Modes a pod announces never reach the renter's disk as they are (items 4 and 5).

A received file or directory gets ``mode & 0o777 & ~umask``, as OpenSSH's sftp gives it: never
setuid, setgid or sticky, never more than the umask allows. A directory that was already here
keeps its mode and times, so a pod cannot open the renter's 0700 directory to everyone.
"""

from __future__ import annotations

import asyncio
import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.security.hostile_sftp import Lies, hostile_server
from tests.transfer.conftest import random_file
from worldland_cli.host import Host
from worldland_cli.transfer.download import download

SPECIAL = stat.S_ISUID | stat.S_ISGID | stat.S_ISVTX
THEN = 1_600_000_000


@pytest.fixture
def umask() -> Iterator[int]:
    """The process umask, restored after the test (it is process-wide)."""
    old = os.umask(0o022)
    try:
        yield 0o022
    finally:
        os.umask(old)


def _loud_tree(root: Path) -> tuple[Path, Lies]:
    """A checkpoint whose pod claims setuid, setgid, sticky and world-writable modes."""
    tree = root / "ckpt"
    random_file(tree / "tool", 100)
    random_file(tree / "sub" / "data.bin", 100)
    for d in (tree, tree / "sub"):
        os.utime(d, (THEN, THEN))
    lies = Lies(
        modes={
            str(tree): stat.S_IFDIR | stat.S_ISVTX | 0o777,
            str(tree / "sub"): stat.S_IFDIR | stat.S_ISGID | 0o777,
            str(tree / "tool"): stat.S_IFREG | stat.S_ISUID | stat.S_ISGID | 0o777,
            str(tree / "sub" / "data.bin"): stat.S_IFREG | 0o666,
        }
    )
    return tree, lies


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.mark.parametrize("mask", [0o022, 0o077, 0o002], ids=["umask-022", "umask-077", "umask-002"])
def test_received_modes_are_masked_by_the_umask_and_never_special(
    tmp_path: Path, umask: int, mask: int
) -> None:
    tree, lies = _loud_tree(tmp_path / "pod")
    back = tmp_path / "back"
    os.umask(mask)
    with hostile_server(tmp_path / "keys", lies) as pod:
        asyncio.run(download(pod.location(tree), back, pod.creds))
    got = back / "ckpt"
    assert _mode(got / "tool") == 0o777 & ~mask
    assert _mode(got / "sub" / "data.bin") == 0o666 & ~mask
    assert _mode(got) == _mode(got / "sub") == 0o777 & ~mask
    for path in (got, got / "sub", got / "tool", got / "sub" / "data.bin"):
        assert path.stat().st_mode & SPECIAL == 0, path
    assert int((got / "sub").stat().st_mtime) == THEN  # created here: it gets the pod's times


def test_an_existing_directory_keeps_its_mode_and_times(tmp_path: Path, umask: int) -> None:
    tree, lies = _loud_tree(tmp_path / "pod")
    back = tmp_path / "back"
    mine = back / "ckpt"
    mine.mkdir(parents=True, mode=0o700)
    os.chmod(mine, 0o700)
    (mine / "private.txt").write_text("the renter's own")
    with hostile_server(tmp_path / "keys", lies) as pod:
        asyncio.run(download(pod.location(tree), back, pod.creds))
    assert _mode(mine) == 0o700
    assert int(mine.stat().st_mtime) != THEN
    assert (mine / "private.txt").read_text() == "the renter's own"
    assert _mode(mine / "sub") == 0o755  # created by this run: the pod's mode, masked


def test_the_umask_is_read_without_changing_it(umask: int) -> None:
    os.umask(0o027)
    assert Host.umask() == 0o027
    assert os.umask(0o027) == 0o027
