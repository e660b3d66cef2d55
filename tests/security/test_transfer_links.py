"""Symlinks never lead a transfer out of its tree, alone or in a chain (item 3).

The attack: a pod serves ``ckpt/up -> .`` and ``ckpt/key -> up/up/../../.ssh/id_ed25519``.
Each link alone looks as if it stayed inside ``ckpt``; together they point at the renter's
SSH key, and a later ``send`` of ``ckpt`` uploaded the key. Received links are now resolved
step by step through the tree as it will exist on disk, and ``send`` recreates links instead
of following them unless asked to (``--follow-links``).

Receiving a tree again: a name already here with other content is taken, a link (to another
target) as much as a file, unless --overwrite, which replaces the name itself (never what a
link there points to); what is here already, the same, is skipped; a directory on the way
that is a symlink out of LOCAL_DIR still stops the receive.
"""

from __future__ import annotations

import asyncio
import json
import os
import stat
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tests.security.hostile_sftp import Lies, hostile_server
from tests.support.sshd import SshdServer
from tests.transfer.conftest import random_file, sha256_of
from worldland_cli.main import app
from worldland_cli.transfer.download import download
from worldland_cli.transfer.errors import DestinationExistsError, UnsafePathError
from worldland_cli.transfer.model import Options
from worldland_cli.transfer.ssh import Credentials
from worldland_cli.transfer.targets import parse_ssh_url
from worldland_cli.transfer.upload import upload

SECRET = b"-----BEGIN OPENSSH PRIVATE KEY----- the renter's key\n"


def _creds(sshd: SshdServer) -> Credentials:
    return Credentials(identity=sshd.client_key, known_hosts=sshd.known_hosts)


def _auth(sshd: SshdServer) -> list[str]:
    return ["--identity", str(sshd.client_key), "--known-hosts", str(sshd.known_hosts)]


def _chain(tree: Path) -> Path:
    """The issue's checkpoint: two links that each stay inside, together leave it."""
    random_file(tree / "weights.bin", 1000)
    os.symlink(".", tree / "up")
    os.symlink("up/up/../../.ssh/id_ed25519", tree / "key")
    return tree


def _home_with_a_key(home: Path) -> Path:
    key = home / ".ssh" / "id_ed25519"
    key.parent.mkdir(parents=True)
    key.write_bytes(SECRET)
    return key


# ------------------------------------------------------------------------------ receiving


def test_a_received_chain_of_links_that_leaves_the_tree_is_refused(
    sshd: SshdServer, tmp_path: Path
) -> None:
    tree = _chain(tmp_path / "pod" / "ckpt")
    home = tmp_path / "home"
    _home_with_a_key(home)
    back = home / "Downloads"
    with pytest.raises(UnsafePathError, match=r"'ckpt/key'.*outside 'ckpt'"):
        asyncio.run(download(parse_ssh_url(sshd.url(str(tree)), "x"), back, _creds(sshd)))
    assert not back.exists() or list(back.rglob("*")) == []


def test_a_received_link_loop_is_refused(sshd: SshdServer, tmp_path: Path) -> None:
    tree = tmp_path / "pod" / "ckpt"
    random_file(tree / "weights.bin", 10)
    os.symlink("b", tree / "a")
    os.symlink("a", tree / "b")
    back = tmp_path / "back"
    with pytest.raises(UnsafePathError, match="loop"):
        asyncio.run(download(parse_ssh_url(sshd.url(str(tree)), "x"), back, _creds(sshd)))
    assert not back.exists() or list(back.rglob("*")) == []


def test_links_that_stay_inside_through_other_links_are_recreated(
    sshd: SshdServer, tmp_path: Path
) -> None:
    tree = tmp_path / "pod" / "ckpt"
    random_file(tree / "data" / "v1.bin", 1000)
    os.symlink(".", tree / "here")
    os.symlink("here/here/data/../data/v1.bin", tree / "latest")
    os.symlink("missing/file", tree / "dangling")  # nothing there: no way out either
    back = tmp_path / "back"
    asyncio.run(download(parse_ssh_url(sshd.url(str(tree)), "x"), back, _creds(sshd)))
    assert os.readlink(back / "ckpt" / "latest") == "here/here/data/../data/v1.bin"
    assert sha256_of(back / "ckpt" / "latest") == sha256_of(tree / "data" / "v1.bin")
    assert os.readlink(back / "ckpt" / "dangling") == "missing/file"


def test_a_received_link_through_a_local_link_out_is_refused(
    sshd: SshdServer, tmp_path: Path
) -> None:
    tree = tmp_path / "pod" / "ckpt"
    random_file(tree / "weights.bin", 10)
    os.symlink("mine/id_ed25519", tree / "key")
    key = _home_with_a_key(tmp_path / "home")
    back = tmp_path / "back"
    (back / "ckpt").mkdir(parents=True)
    os.symlink(key.parent, back / "ckpt" / "mine")  # the renter's own link, already here
    with pytest.raises(UnsafePathError, match=r"'ckpt/key'.*outside 'ckpt'"):
        asyncio.run(download(parse_ssh_url(sshd.url(str(tree)), "x"), back, _creds(sshd)))
    assert sorted(p.name for p in (back / "ckpt").iterdir()) == ["mine"]


@pytest.mark.parametrize(
    "kind", [stat.S_IFDIR | 0o755, stat.S_IFREG | 0o644], ids=["and-as-a-dir", "and-as-a-file"]
)
def test_a_name_listed_twice_is_refused(tmp_path: Path, kind: int) -> None:
    # Listed as a link and again as a directory, later entries would be written through
    # the link; listed as a link and a file, one would silently replace the other.
    tree = tmp_path / "pod" / "ckpt"
    random_file(tree / "weights.bin", 10)
    os.symlink(".", tree / "sub")
    lies = Lies(extra_names={str(tree): [("sub", kind)]})
    back = tmp_path / "back"
    with (
        hostile_server(tmp_path / "keys", lies) as pod,
        pytest.raises(UnsafePathError, match="'ckpt/sub' twice"),
    ):
        asyncio.run(download(pod.location(tree), back, pod.creds))
    assert not back.exists() or list(back.rglob("*")) == []


def _versions(tree: Path) -> Path:
    """A checkpoint whose ``latest`` link a later step moves on to the next version."""
    random_file(tree / "data" / "v1.bin", 1000)
    random_file(tree / "data" / "v2.bin", 1000)
    os.symlink("data/v1.bin", tree / "latest")
    return tree


def test_receiving_links_again_with_overwrite_replaces_the_links(tmp_path: Path) -> None:
    tree = _versions(tmp_path / "pod" / "ckpt")
    back = tmp_path / "back"
    with hostile_server(tmp_path / "keys") as pod:
        asyncio.run(download(pod.location(tree), back, pod.creds))
        os.unlink(tree / "latest")
        os.symlink("data/v2.bin", tree / "latest")
        asyncio.run(download(pod.location(tree), back, pod.creds, Options(overwrite=True)))
    assert os.readlink(back / "ckpt" / "latest") == "data/v2.bin"
    assert sha256_of(back / "ckpt" / "latest") == sha256_of(tree / "data" / "v2.bin")
    assert not [p for p in (back / "ckpt").iterdir() if p.name.startswith(".")]


def test_receiving_links_again_without_overwrite_says_the_name_is_taken(tmp_path: Path) -> None:
    tree = _versions(tmp_path / "pod" / "ckpt")
    back = tmp_path / "back"
    with hostile_server(tmp_path / "keys") as pod:
        asyncio.run(download(pod.location(tree), back, pod.creds))
        again = asyncio.run(download(pod.location(tree), back, pod.creds))  # the same: skipped
        assert again.files == [] and len(again.unchanged) == 2
        os.unlink(tree / "latest")
        os.symlink("data/v2.bin", tree / "latest")  # now another link at the name
        with pytest.raises(DestinationExistsError, match=r"already in .*ckpt/latest") as info:
            asyncio.run(download(pod.location(tree), back, pod.creds))
    assert info.value.hint == "pass --overwrite to replace them"
    assert os.readlink(back / "ckpt" / "latest") == "data/v1.bin"


def test_overwrite_replaces_a_link_itself_never_what_it_points_to(tmp_path: Path) -> None:
    tree = _versions(tmp_path / "pod" / "ckpt")
    key = _home_with_a_key(tmp_path / "home")
    back = tmp_path / "back"
    (back / "ckpt").mkdir(parents=True)
    os.symlink(key, back / "ckpt" / "latest")  # the renter's own link, out of LOCAL_DIR
    with hostile_server(tmp_path / "keys") as pod:
        asyncio.run(download(pod.location(tree), back, pod.creds, Options(overwrite=True)))
    assert os.readlink(back / "ckpt" / "latest") == "data/v1.bin"
    assert key.read_bytes() == SECRET and not key.is_symlink()


def test_overwrite_puts_a_received_file_where_a_link_was(tmp_path: Path) -> None:
    tree = _versions(tmp_path / "pod" / "ckpt")
    back = tmp_path / "back"
    key = _home_with_a_key(tmp_path / "home")
    with hostile_server(tmp_path / "keys") as pod:
        asyncio.run(download(pod.location(tree), back, pod.creds))
        os.unlink(back / "ckpt" / "latest")
        os.symlink(key, back / "ckpt" / "latest")
        os.unlink(tree / "latest")
        random_file(tree / "latest", 500)  # now a file of its own on the pod
        asyncio.run(download(pod.location(tree), back, pod.creds, Options(overwrite=True)))
    assert not (back / "ckpt" / "latest").is_symlink()
    assert sha256_of(back / "ckpt" / "latest") == sha256_of(tree / "latest")
    assert key.read_bytes() == SECRET


@pytest.mark.parametrize(
    ("name", "what"), [("latest", "a symlink"), ("weights.bin", "a file")], ids=["link", "file"]
)
def test_overwrite_leaves_a_directory_where_the_pod_has_a_link_or_file(
    tmp_path: Path, name: str, what: str
) -> None:
    tree = _versions(tmp_path / "pod" / "ckpt")
    random_file(tree / "weights.bin", 100)
    back = tmp_path / "back"
    random_file(back / "ckpt" / name / "mine.bin", 10)  # the renter's own directory
    with (
        hostile_server(tmp_path / "keys") as pod,
        pytest.raises(DestinationExistsError, match=f"is a directory; the remote has {what}"),
    ):
        asyncio.run(download(pod.location(tree), back, pod.creds, Options(overwrite=True)))
    assert sorted(p.name for p in (back / "ckpt").iterdir()) == [name]
    assert (back / "ckpt" / name / "mine.bin").stat().st_size == 10


def test_overwrite_never_follows_a_linked_directory_out_of_local_dir(tmp_path: Path) -> None:
    # Replacing links must not open a way out: a local directory on the way that is a
    # symlink out of LOCAL_DIR still stops the receive, whatever --overwrite says.
    tree = tmp_path / "pod" / "ckpt"
    random_file(tree / "sub" / "weights.bin", 10)
    os.symlink("weights.bin", tree / "sub" / "latest")
    elsewhere = tmp_path / "elsewhere"
    random_file(elsewhere / "weights.bin", 10)
    os.symlink("weights.bin", elsewhere / "latest")
    before = {p.name: (p.is_symlink(), p.lstat().st_mtime_ns) for p in elsewhere.iterdir()}
    back = tmp_path / "back"
    (back / "ckpt").mkdir(parents=True)
    os.symlink(elsewhere, back / "ckpt" / "sub")
    with (
        hostile_server(tmp_path / "keys") as pod,
        pytest.raises(UnsafePathError, match="symlink"),
    ):
        asyncio.run(download(pod.location(tree), back, pod.creds, Options(overwrite=True)))
    assert {p.name: (p.is_symlink(), p.lstat().st_mtime_ns) for p in elsewhere.iterdir()} == before


# -------------------------------------------------------------------------------- sending


def test_send_skips_a_link_that_leads_outside_the_sent_directory(
    sshd: SshdServer, tmp_path: Path
) -> None:
    home = tmp_path / "home"
    _home_with_a_key(home)
    tree = _chain(home / "work" / "ckpt")
    remote = tmp_path / "pod"
    result = CliRunner().invoke(
        app, ["send", str(tree), sshd.url(str(remote)), "--json", *_auth(sshd)]
    )
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert [f["path"] for f in doc["files"]] == ["ckpt/weights.bin"]
    assert doc["skipped"] == [{"path": "ckpt/key", "reason": "a symlink that leads outside ckpt"}]
    assert not os.path.lexists(remote / "ckpt" / "key")
    assert os.readlink(remote / "ckpt" / "up") == "."  # inside: recreated as a link
    assert not any(SECRET in p.read_bytes() for p in remote.rglob("*") if p.is_file())


def test_send_recreates_links_inside_the_tree_and_follow_links_sends_content(
    sshd: SshdServer, tmp_path: Path
) -> None:
    tree = tmp_path / "out" / "ckpt"
    v1 = random_file(tree / "data" / "v1.bin", 1000)
    os.symlink("data/v1.bin", tree / "latest")
    os.symlink("data", tree / "current")
    remote = tmp_path / "pod"
    asyncio.run(upload([tree], parse_ssh_url(sshd.url(str(remote)), "x"), _creds(sshd)))
    assert os.readlink(remote / "ckpt" / "latest") == "data/v1.bin"
    assert os.readlink(remote / "ckpt" / "current") == "data"

    copied = tmp_path / "pod-copied"
    result = CliRunner().invoke(
        app, ["send", "-L", str(tree), sshd.url(str(copied)), "--json", *_auth(sshd)]
    )
    assert result.exit_code == 0, result.output
    assert not (copied / "ckpt" / "latest").is_symlink()
    assert sha256_of(copied / "ckpt" / "latest") == sha256_of(v1)
    assert not (copied / "ckpt" / "current").is_symlink()
    assert sha256_of(copied / "ckpt" / "current" / "v1.bin") == sha256_of(v1)


def test_follow_links_skips_a_loop_instead_of_walking_it_forever(
    sshd: SshdServer, tmp_path: Path
) -> None:
    tree = tmp_path / "out" / "ckpt"
    random_file(tree / "w.bin", 10)
    os.symlink(".", tree / "again")
    result = CliRunner().invoke(
        app,
        ["send", "--follow-links", str(tree), sshd.url(str(tmp_path / "pod")), "--json",
         *_auth(sshd)],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert [f["path"] for f in doc["files"]] == ["ckpt/w.bin"]
    assert doc["skipped"] == [{"path": "ckpt/again", "reason": "a symlink loop"}]


def test_a_link_named_on_the_command_line_is_followed(sshd: SshdServer, tmp_path: Path) -> None:
    step = random_file(tmp_path / "out" / "step-9000.pt", 1000)
    latest = tmp_path / "out" / "latest.pt"
    os.symlink(step.name, latest)
    remote = tmp_path / "pod"
    asyncio.run(upload([latest], parse_ssh_url(sshd.url(str(remote)), "x"), _creds(sshd)))
    assert not (remote / "latest.pt").is_symlink()
    assert sha256_of(remote / "latest.pt") == sha256_of(step)


def test_people_are_told_what_send_skipped(sshd: SshdServer, tmp_path: Path) -> None:
    tree = _chain(tmp_path / "home" / "work" / "ckpt")
    remote = tmp_path / "pod"
    result = CliRunner().invoke(app, ["send", str(tree), sshd.url(str(remote)), *_auth(sshd)])
    assert result.exit_code == 0, result.output
    assert "skipped ckpt/key: a symlink that leads outside ckpt" in result.stdout
