"""A pod that answers a READ with more bytes than were asked for (item 19).

Whichever path carries the bytes (asyncssh's SFTP channel, or the OpenSSH lane for large
files), such an answer is a protocol violation: the file fails with a clear error, nothing is
written past the range asked for, and nothing the renter owns is deleted.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from tests.security.hostile_sftp import Lies, hostile_server
from tests.transfer.conftest import random_file
from worldland_cli.transfer.download import download
from worldland_cli.transfer.errors import TransferError
from worldland_cli.transfer.lanes import LANE_MIN
from worldland_cli.transfer.model import Options


@pytest.mark.parametrize(
    ("size", "openssh"),
    [(100_000, False), (LANE_MIN + 1000, True)],
    ids=["asyncssh", "openssh-lane"],
)
def test_a_read_answered_with_more_bytes_than_asked_fails_the_file(
    tmp_path: Path, size: int, openssh: bool
) -> None:
    src = random_file(tmp_path / "pod" / "model.bin", size)
    back = tmp_path / "back"
    back.mkdir()
    (back / "notes.txt").write_text("the renter's own file")
    with (
        hostile_server(tmp_path / "keys", Lies(extra_read=4096)) as pod,
        pytest.raises(TransferError, match="more bytes than it was asked for") as info,
    ):
        asyncio.run(
            download(pod.location(src), back, pod.creds, Options(openssh=openssh, retries=0))
        )
    assert "model.bin" in info.value.message
    assert not (back / "model.bin").exists()
    part = back / "model.bin.part"
    assert not part.exists() or part.stat().st_size <= size
    assert (back / "notes.txt").read_text() == "the renter's own file"
