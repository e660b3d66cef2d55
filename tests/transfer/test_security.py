"""Host keys are never taken on trust, and received names never leave LOCAL_DIR."""

from __future__ import annotations

import asyncio
import os
import subprocess
from pathlib import Path

import pytest

from tests.support.sshd import SSH_KEYGEN, SshdServer
from tests.transfer.conftest import random_file, sha256_of
from worldland_cli.transfer.download import download
from worldland_cli.transfer.errors import (
    DeniedError,
    DestinationExistsError,
    HostKeyError,
    UnreachableError,
    UnsafePathError,
)
from worldland_cli.transfer.model import Options
from worldland_cli.transfer.safety import check_name, check_relative, check_symlink
from worldland_cli.transfer.ssh import Credentials
from worldland_cli.transfer.targets import SshLocation, parse_ssh_url
from worldland_cli.transfer.upload import upload


def _other_public_key(tmp_path: Path) -> str:
    key = tmp_path / "other_host_key"
    subprocess.run([SSH_KEYGEN, "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
    algo, blob = Path(f"{key}.pub").read_text().split()[:2]
    return f"{algo} {blob}"


def test_changed_host_key_is_refused_with_the_fix(sshd: SshdServer, tmp_path: Path) -> None:
    known = tmp_path / "known_hosts"
    known.write_text(f"[127.0.0.1]:{sshd.port} {_other_public_key(tmp_path)}\n")
    creds = Credentials(identity=sshd.client_key, known_hosts=known)
    src = random_file(tmp_path / "f.bin", 10)
    with pytest.raises(HostKeyError, match="CHANGED") as info:
        asyncio.run(upload([src], parse_ssh_url(sshd.url(str(tmp_path / "r")), "x"), creds))
    assert info.value.hint is not None and "ssh-keygen -R" in info.value.hint
    assert not (tmp_path / "r").exists()


def test_unknown_host_is_refused_not_added(sshd: SshdServer, tmp_path: Path) -> None:
    known = tmp_path / "known_hosts"
    known.write_text("")
    creds = Credentials(identity=sshd.client_key, known_hosts=known)
    with pytest.raises(HostKeyError, match="not in"):
        asyncio.run(download(parse_ssh_url(sshd.url("/etc/hostname"), "x"), tmp_path, creds))
    assert known.read_text() == ""


def test_pinned_key_mismatch_is_refused(sshd: SshdServer, tmp_path: Path) -> None:
    creds = Credentials(identity=sshd.client_key, known_hosts=sshd.known_hosts)
    wrong = SshLocation(
        sshd.host, sshd.port, sshd.user, "/etc/hostname", host_key=_other_public_key(tmp_path)
    )
    with pytest.raises(HostKeyError, match="pinned"):
        asyncio.run(download(wrong, tmp_path / "b", creds))
    right = SshLocation(
        sshd.host, sshd.port, sshd.user, "/etc/hostname", host_key=sshd.host_public_key
    )
    # The pinned key alone is enough: known_hosts is not consulted for pods.
    creds_no_known = Credentials(identity=sshd.client_key, known_hosts=tmp_path / "absent")
    asyncio.run(download(right, tmp_path / "b", creds_no_known))
    assert (tmp_path / "b" / "hostname").read_bytes() == Path("/etc/hostname").read_bytes()


def test_a_key_the_server_does_not_know_is_denied(sshd: SshdServer, tmp_path: Path) -> None:
    stranger = tmp_path / "stranger"
    subprocess.run([SSH_KEYGEN, "-q", "-t", "ed25519", "-N", "", "-f", str(stranger)], check=True)
    creds = Credentials(identity=stranger, identity_explicit=True, known_hosts=sshd.known_hosts)
    with pytest.raises(DeniedError, match="refused our key"):
        asyncio.run(download(parse_ssh_url(sshd.url("/etc/hostname"), "x"), tmp_path, creds))


def test_an_identity_readable_by_others_is_refused(sshd: SshdServer, tmp_path: Path) -> None:
    os.chmod(sshd.client_key, 0o644)
    creds = Credentials(identity=sshd.client_key, known_hosts=sshd.known_hosts)
    with pytest.raises(DeniedError, match="readable by group or others") as info:
        asyncio.run(download(parse_ssh_url(sshd.url("/etc/hostname"), "x"), tmp_path, creds))
    assert info.value.hint == f"chmod 600 {sshd.client_key}"


@pytest.mark.root
@pytest.mark.skipif(os.geteuid() != 0, reason="giving a file to another user needs root")
def test_an_identity_owned_by_someone_else_is_refused(sshd: SshdServer, tmp_path: Path) -> None:
    # The wallet's rule, as ssh's: a 0600 key that another user owns is theirs, not ours (the
    # transfer's own check used to look at the mode alone).
    os.chown(sshd.client_key, 65534, 65534)
    creds = Credentials(identity=sshd.client_key, known_hosts=sshd.known_hosts)
    with pytest.raises(DeniedError, match="belongs to uid 65534, not to you") as info:
        asyncio.run(download(parse_ssh_url(sshd.url("/etc/hostname"), "x"), tmp_path, creds))
    assert info.value.hint == f"chown 0 {sshd.client_key} && chmod 600 {sshd.client_key}"


def test_closed_port_is_unreachable(sshd: SshdServer, tmp_path: Path) -> None:
    creds = Credentials(identity=sshd.client_key, known_hosts=sshd.known_hosts)
    sshd.stop()
    loc = parse_ssh_url(sshd.url("/etc/hostname"), "x")
    with pytest.raises(UnreachableError, match="cannot reach"):
        asyncio.run(download(loc, tmp_path, creds, Options(retries=0)))


@pytest.mark.parametrize("name", ["..", ".", "", "../x", "/etc/passwd", "a/b", "a\\b", "x\0"])
def test_names_that_could_escape_are_refused(name: str) -> None:
    with pytest.raises(UnsafePathError):
        check_name(name)


@pytest.mark.parametrize("rel", ["a/../../x", "/abs", "a//b", "a/./b"])
def test_relative_paths_that_could_escape_are_refused(rel: str) -> None:
    with pytest.raises(UnsafePathError):
        check_relative(rel)


@pytest.mark.parametrize("target", ["/etc", "../..", "../../x", "a/../../../y"])
def test_symlinks_pointing_out_are_refused(target: str) -> None:
    with pytest.raises(UnsafePathError):
        check_symlink("tree/sub/link", target)


def test_symlinks_staying_inside_are_kept() -> None:
    assert check_symlink("tree/sub/link", "../other/file") == "../other/file"


def test_remote_symlink_pointing_out_refuses_the_whole_receive(
    sshd: SshdServer, creds: Credentials, tmp_path: Path
) -> None:
    remote = tmp_path / "remote" / "pkg"
    random_file(remote / "ok.bin", 100)
    os.symlink("/etc", remote / "escape")
    back = tmp_path / "back"
    with pytest.raises(UnsafePathError, match="points outside"):
        asyncio.run(download(parse_ssh_url(sshd.url(str(remote)), "x"), back, creds))
    assert not back.exists() or list(back.rglob("*")) == []


def test_a_local_symlink_leading_out_of_local_dir_is_refused(
    sshd: SshdServer, creds: Credentials, tmp_path: Path
) -> None:
    remote = tmp_path / "remote" / "pkg"
    random_file(remote / "sub" / "f.bin", 100)
    outside = tmp_path / "outside"
    outside.mkdir()
    back = tmp_path / "back"
    (back / "pkg").mkdir(parents=True)
    os.symlink(outside, back / "pkg" / "sub")
    with pytest.raises(UnsafePathError, match="symlink"):
        asyncio.run(download(parse_ssh_url(sshd.url(str(remote)), "x"), back, creds))
    assert list(outside.iterdir()) == []


def test_existing_files_are_kept_unless_overwrite(
    sshd: SshdServer, creds: Credentials, tmp_path: Path
) -> None:
    src = random_file(tmp_path / "remote" / "f.bin", 1000)
    back = tmp_path / "back"
    back.mkdir()
    (back / "f.bin").write_bytes(b"mine")
    loc = parse_ssh_url(sshd.url(str(src)), "x")
    with pytest.raises(DestinationExistsError, match="already in") as info:
        asyncio.run(download(loc, back, creds))
    assert info.value.hint == "pass --overwrite to replace them"
    assert (back / "f.bin").read_bytes() == b"mine"
    asyncio.run(download(loc, back, creds, Options(overwrite=True)))
    assert sha256_of(back / "f.bin") == sha256_of(src)


def test_existing_remote_files_are_kept_unless_overwrite(
    sshd: SshdServer, creds: Credentials, tmp_path: Path
) -> None:
    src = random_file(tmp_path / "f.bin", 1000)
    remote = tmp_path / "remote"
    remote.mkdir()
    (remote / "f.bin").write_bytes(b"theirs")
    loc = parse_ssh_url(sshd.url(str(remote)), "x")
    with pytest.raises(DestinationExistsError):
        asyncio.run(upload([src], loc, creds))
    assert (remote / "f.bin").read_bytes() == b"theirs"
    asyncio.run(upload([src], loc, creds, Options(overwrite=True)))
    assert sha256_of(remote / "f.bin") == sha256_of(src)
