"""Send then receive through a real sshd: the bytes, names, modes and mtimes survive."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import pytest

from tests.support.sshd import SshdServer
from tests.transfer.conftest import random_file, sha256_of
from worldland_cli.transfer.download import download
from worldland_cli.transfer.ssh import Credentials
from worldland_cli.transfer.targets import parse_ssh_url
from worldland_cli.transfer.upload import upload

BLOCK = 255 * 1024  # OpenSSH's largest SFTP read/write, the engine's request size


@pytest.mark.parametrize(
    "size", [0, 1, BLOCK - 1, BLOCK, BLOCK + 1, 64 * BLOCK, 64 * BLOCK + 1, 3 * (1 << 20) + 7]
)
def test_file_round_trip_keeps_every_byte(
    sshd: SshdServer, creds: Credentials, tmp_path: Path, size: int
) -> None:
    src = random_file(tmp_path / "out" / "blob.bin", size)
    remote_dir = tmp_path / "remote"
    sent = asyncio.run(upload([src], parse_ssh_url(sshd.url(str(remote_dir)), "x"), creds))
    assert sha256_of(remote_dir / "blob.bin") == sha256_of(src) == sent.files[0].sha256
    assert not (remote_dir / "blob.bin.part").exists()
    assert sent.files[0].verified_by == "remote-exec"

    back = tmp_path / "back"
    got = asyncio.run(
        download(parse_ssh_url(sshd.url(str(remote_dir / "blob.bin")), "x"), back, creds)
    )
    assert sha256_of(back / "blob.bin") == sha256_of(src) == got.files[0].sha256
    assert got.files[0].bytes_moved == size
    assert sorted(p.name for p in back.iterdir()) == ["blob.bin"]


def test_nested_directory_keeps_structure_modes_and_mtimes(
    sshd: SshdServer, creds: Credentials, tmp_path: Path
) -> None:
    tree = tmp_path / "out" / "dataset"
    files = {
        "a.txt": 10,
        "train/x.bin": 300_000,
        "train/deep/y.bin": BLOCK * 2,
        "empty.bin": 0,
    }
    for rel, size in files.items():
        random_file(tree / rel, size)
    (tree / "empty-dir").mkdir()
    os.chmod(tree / "a.txt", 0o640)
    os.chmod(tree / "train" / "deep", 0o750)
    os.utime(tree / "train" / "x.bin", (1_600_000_000, 1_600_000_000))
    os.symlink("train/x.bin", tree / "link-in")

    remote = tmp_path / "remote"
    asyncio.run(upload([tree], parse_ssh_url(sshd.url(str(remote)), "x"), creds))
    back = tmp_path / "back"
    asyncio.run(download(parse_ssh_url(sshd.url(str(remote / "dataset")), "x"), back, creds))

    for rel in files:
        assert sha256_of(back / "dataset" / rel) == sha256_of(tree / rel), rel
    assert (back / "dataset" / "empty-dir").is_dir()
    assert (back / "dataset" / "a.txt").stat().st_mode & 0o777 == 0o640
    assert (back / "dataset" / "train" / "deep").stat().st_mode & 0o777 == 0o750
    assert int((back / "dataset" / "train" / "x.bin").stat().st_mtime) == 1_600_000_000
    # A symlink that stays inside the sent tree travels as a symlink, both ways (like rsync -l).
    assert os.readlink(back / "dataset" / "link-in") == "train/x.bin"
    assert sha256_of(back / "dataset" / "link-in") == sha256_of(tree / "train" / "x.bin")
    assert not list(back.rglob("*.part"))


def test_remote_symlink_inside_the_tree_is_recreated(
    sshd: SshdServer, creds: Credentials, tmp_path: Path
) -> None:
    remote = tmp_path / "remote" / "pkg"
    random_file(remote / "data" / "v1.bin", 1000)
    os.symlink("data/v1.bin", remote / "latest")
    back = tmp_path / "back"
    asyncio.run(download(parse_ssh_url(sshd.url(str(remote)), "x"), back, creds))
    assert os.readlink(back / "pkg" / "latest") == "data/v1.bin"
    assert sha256_of(back / "pkg" / "latest") == sha256_of(remote / "data" / "v1.bin")


def test_sftp_only_account_is_verified_by_re_reading(tmp_path: Path) -> None:
    from tests.support.sshd import sshd_missing_reason, start_sshd

    if sshd_missing_reason():
        pytest.skip(str(sshd_missing_reason()))
    with start_sshd(tmp_path / "sshd", extra_config=["ForceCommand internal-sftp"]) as server:
        creds = Credentials(identity=server.client_key, known_hosts=server.known_hosts)
        src = random_file(tmp_path / "out" / "f.bin", 2 * BLOCK + 5)
        remote = tmp_path / "remote"
        sent = asyncio.run(upload([src], parse_ssh_url(server.url(str(remote)), "x"), creds))
        got = asyncio.run(
            download(parse_ssh_url(server.url(str(remote / "f.bin")), "x"), tmp_path / "b", creds)
        )
    assert sent.files[0].verified_by == got.files[0].verified_by == "sftp-reread"
    assert sha256_of(tmp_path / "b" / "f.bin") == sha256_of(src)
