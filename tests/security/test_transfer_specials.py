"""A FIFO, device or socket named as what to receive is refused, not read as a file.

Inside a received tree such entries are skipped with a note; named as the root,
``receive POD:/path/to/fifo`` used to open it and read it as a regular file: a pod's FIFO
blocks until something writes to it, and a device (``/dev/zero``, ``/dev/urandom``) never
ends. Only a regular file, a directory, or a symlink to one of them is received.
"""

from __future__ import annotations

import asyncio
import stat
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tests.security.hostile_sftp import Lies, hostile_server
from tests.transfer.conftest import Hook, random_file
from worldland_cli.main import app
from worldland_cli.transfer.download import download
from worldland_cli.transfer.errors import TransferError

SPECIALS = [
    (stat.S_IFIFO, "a named pipe (FIFO)"),
    (stat.S_IFCHR, "a character device"),
    (stat.S_IFBLK, "a block device"),
    (stat.S_IFSOCK, "a socket"),
]


@pytest.mark.parametrize(("kind", "what"), SPECIALS, ids=["fifo", "char", "block", "socket"])
def test_a_special_file_named_as_the_root_is_refused(tmp_path: Path, kind: int, what: str) -> None:
    src = random_file(tmp_path / "pod" / "stream", 1000)
    back = tmp_path / "back"
    with (
        hostile_server(tmp_path / "keys", Lies(modes={str(src): kind | 0o644})) as pod,
        pytest.raises(TransferError, match="not a regular file or a directory") as info,
    ):
        asyncio.run(download(pod.location(src), back, pod.creds))
    assert f"{src} is {what} on the remote" in info.value.message
    assert pod.asked.reads == []
    assert not back.exists() or list(back.iterdir()) == []


def test_people_are_told_and_the_exit_code_says_failed(tmp_path: Path) -> None:
    src = random_file(tmp_path / "pod" / "fifo", 10)
    lies = Lies(modes={str(src): stat.S_IFIFO | 0o644})
    with hostile_server(tmp_path / "keys", lies) as pod:
        auth = ["--identity", str(pod.client_key), "--known-hosts", str(pod.known_hosts)]
        result = CliRunner().invoke(app, ["receive", pod.url(src), str(tmp_path / "b"), *auth])
    assert result.exit_code == 1, result.output
    assert "is a named pipe (FIFO) on the remote" in " ".join(result.output.split())


def test_inside_a_tree_the_same_files_are_skipped_with_a_note(tmp_path: Path) -> None:
    tree = tmp_path / "pod" / "ckpt"
    random_file(tree / "weights.bin", 100)
    fifo = random_file(tree / "fifo", 10)
    notes = Hook(1 << 62, lambda: None)
    back = tmp_path / "back"
    with hostile_server(tmp_path / "keys", Lies(modes={str(fifo): stat.S_IFIFO | 0o644})) as pod:
        summary = asyncio.run(download(pod.location(tree), back, pod.creds, progress=notes))
    assert [f.path for f in summary.files] == ["ckpt/weights.bin"]
    assert notes.notes == ["skipping ckpt/fifo: not a file, directory or symlink"]
    assert sorted(p.name for p in (back / "ckpt").iterdir()) == ["weights.bin"]
