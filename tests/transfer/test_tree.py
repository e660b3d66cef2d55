"""Trees of many small files (issue 14): one far-side process a run, and a rerun resumes.

The account's ~/.bashrc counts its runs and sleeps 0.2 s, as a ``pyenv init`` does: OpenSSH
runs every exec request through the login shell, and a far-side process per file made 2,000
small files cost 2,000 such start-ups. Every file is still verified by sha256 on both ends.
"""

from __future__ import annotations

import asyncio
import dataclasses
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.sshd import SshdServer, account_home, sshd_missing_reason, start_sshd
from tests.transfer.conftest import random_file, sha256_of
from worldland_cli.transfer.download import download
from worldland_cli.transfer.errors import DestinationExistsError
from worldland_cli.transfer.model import Options
from worldland_cli.transfer.ssh import Credentials
from worldland_cli.transfer.targets import parse_ssh_url
from worldland_cli.transfer.upload import upload

SLOW_BASHRC = 'echo started >> "$HOME/starts"\nsleep 0.2\n'


@dataclasses.dataclass
class Account:
    """A real sshd whose account's shell start-up is slow and counted."""

    sshd: SshdServer
    home: Path
    creds: Credentials

    def starts(self) -> int:
        """How many times the account's login shell has read its ~/.bashrc."""
        counted = self.home / "starts"
        return len(counted.read_text().splitlines()) if counted.exists() else 0

    def url(self, path: Path) -> str:
        return self.sshd.url(str(path))


def slow_account(directory: Path, bashrc: str = SLOW_BASHRC) -> Iterator[Account]:
    reason = sshd_missing_reason()
    if reason:
        pytest.skip(reason)
    home = directory / "home"
    with start_sshd(directory / "sshd", extra_config=account_home(home, bashrc)) as server:
        creds = Credentials(identity=server.client_key, known_hosts=server.known_hosts)
        yield Account(server, home, creds)


@pytest.fixture
def slow(tmp_path: Path) -> Iterator[Account]:
    yield from slow_account(tmp_path / "account")


def make_tree(top: Path, files: int, size: int = 1024) -> Path:
    for i in range(files):
        random_file(top / f"d{i % 5}" / f"f{i:04d}.bin", size + i % 7)
    return top


def same_tree(a: Path, b: Path) -> list[str]:
    """The files of ``a`` (relative), each checked to have the same sha256 under ``b``."""
    names = sorted(str(p.relative_to(a)) for p in a.rglob("*") if p.is_file())
    assert names == sorted(str(p.relative_to(b)) for p in b.rglob("*") if p.is_file())
    for name in names:
        assert sha256_of(a / name) == sha256_of(b / name), name
    return names


def test_a_500_file_tree_starts_the_remote_shell_once_each_way(
    slow: Account, tmp_path: Path
) -> None:
    tree = make_tree(tmp_path / "tree", 500)
    remote = tmp_path / "pod"
    sent = asyncio.run(upload([tree], parse_ssh_url(slow.url(remote), "x"), slow.creds))
    assert slow.starts() <= 2  # one far-side helper (and nothing per file)
    assert len(sent.files) == 500 and all(f.verified_by == "remote-exec" for f in sent.files)
    assert {f.carried_by for f in sent.files} == {"packed"}
    assert len(same_tree(tree, remote / "tree")) == 500

    before = slow.starts()
    back = tmp_path / "back"
    got = asyncio.run(download(parse_ssh_url(slow.url(remote / "tree"), "x"), back, slow.creds))
    assert slow.starts() - before <= 2
    assert len(got.files) == 500 and {f.carried_by for f in got.files} == {"packed"}
    assert all(f.sha256 == sha256_of(back / f.path) for f in got.files)
    same_tree(tree, back / "tree")
    assert not [p for p in (back / "tree").rglob(".*")]  # no staging file left behind


def test_a_rerun_skips_what_is_there_and_refuses_what_differs(
    slow: Account, tmp_path: Path
) -> None:
    tree = make_tree(tmp_path / "tree", 40)
    big = random_file(tree / "big.bin", 9 << 20)  # a file that moves on its own (the lane)
    loc = parse_ssh_url(slow.url(tmp_path / "pod"), "x")
    first = asyncio.run(upload([tree], loc, slow.creds))
    assert len(first.files) == 41 and first.unchanged == []

    again = asyncio.run(upload([tree], loc, slow.creds))
    assert again.files == [] and len(again.unchanged) == 41
    assert again.to_dict()["counts"] == {"moved": 0, "unchanged": 41, "skipped": 0, "excluded": 0}
    assert again.to_dict()["mb_per_s"] == 0.0 and again.to_dict()["bytes_moved"] == 0

    changed = tree / "d1" / "f0001.bin"
    random_file(changed, changed.stat().st_size)  # the same size, other bytes
    random_file(tree / "new.bin", 10)
    with pytest.raises(DestinationExistsError, match=r"with other content: tree/d1/f0001.bin"):
        asyncio.run(upload([tree], loc, slow.creds))
    assert not (tmp_path / "pod" / "tree" / "new.bin").exists()  # refused before a byte moved

    replaced = asyncio.run(upload([tree], loc, slow.creds, Options(overwrite=True)))
    assert sorted(f.path for f in replaced.files) == ["tree/d1/f0001.bin", "tree/new.bin"]
    assert len(replaced.unchanged) == 40 and "tree/big.bin" in replaced.unchanged
    same_tree(tree, tmp_path / "pod" / "tree")
    assert sha256_of(big) == sha256_of(tmp_path / "pod" / "tree" / "big.bin")


def test_receiving_again_skips_what_is_here_and_refuses_what_differs(
    slow: Account, tmp_path: Path
) -> None:
    pod = make_tree(tmp_path / "pod" / "ckpt", 30)
    os.symlink("d0/f0000.bin", pod / "latest")
    loc = parse_ssh_url(slow.url(pod), "x")
    back = tmp_path / "back"
    assert len(asyncio.run(download(loc, back, slow.creds)).files) == 30
    again = asyncio.run(download(loc, back, slow.creds))
    assert again.files == [] and len(again.unchanged) == 30
    assert os.readlink(back / "ckpt" / "latest") == "d0/f0000.bin"

    mine = back / "ckpt" / "d2" / "f0002.bin"
    mine.write_bytes(b"the renter's own edit")
    with pytest.raises(DestinationExistsError, match=r"with other content: ckpt/d2/f0002.bin"):
        asyncio.run(download(loc, back, slow.creds))
    assert mine.read_bytes() == b"the renter's own edit"
    replaced = asyncio.run(download(loc, back, slow.creds, Options(overwrite=True)))
    assert [f.path for f in replaced.files] == ["ckpt/d2/f0002.bin"]
    same_tree(pod, back / "ckpt")


def test_without_python3_on_the_pod_small_files_start_no_shell_each(tmp_path: Path) -> None:
    # The helper cannot run; small files are then verified by reading them back over SFTP,
    # not by a hash process each.
    no_python = 'echo started >> "$HOME/starts"\nexport PATH=/nonexistent\n'
    for account in slow_account(tmp_path / "account", no_python):
        tree = make_tree(tmp_path / "tree", 30)
        sent = asyncio.run(
            upload([tree], parse_ssh_url(account.url(tmp_path / "pod"), "x"), account.creds)
        )
        assert {f.verified_by for f in sent.files} == {"sftp-reread"}
        assert {f.carried_by for f in sent.files} == {"asyncssh"}
        assert account.starts() <= 2
        same_tree(tree, tmp_path / "pod" / "tree")


def test_an_sftp_only_account_moves_a_tree_verified_by_reading_it_back(tmp_path: Path) -> None:
    reason = sshd_missing_reason()
    if reason:
        pytest.skip(reason)
    tree = make_tree(tmp_path / "tree", 20)
    with start_sshd(tmp_path / "sshd", extra_config=["ForceCommand internal-sftp"]) as server:
        creds = Credentials(identity=server.client_key, known_hosts=server.known_hosts)
        remote = tmp_path / "pod"
        sent = asyncio.run(upload([tree], parse_ssh_url(server.url(str(remote)), "x"), creds))
        loc = parse_ssh_url(server.url(str(remote / "tree")), "x")
        got = asyncio.run(download(loc, tmp_path / "back", creds))
        again = asyncio.run(download(loc, tmp_path / "back", creds))
    assert {f.verified_by for f in sent.files + got.files} == {"sftp-reread"}
    assert len(again.unchanged) == 20
    same_tree(tree, tmp_path / "back" / "tree")
