"""A pod cannot make the renter's client allocate what an SFTP frame announces.

Every SFTP packet starts with a 32-bit length chosen by the far side. A client that allocates
that many bytes before reading them lets a hostile pod claim up to 4 GiB per answer. The
OpenSSH lane refuses a length above its cap (OpenSSH's own 256 KiB) or too short for the
answer's type, before allocating anything; asyncssh's data path refuses lengths above its own packet
limit (4 MiB) the same way. Either way the file fails with an error that names the pod.
So does an answer whose frame is long enough but cut short inside a field (a STATUS without
its message, a VERSION cut inside an extension), which the lane read as a ``struct.error``
traceback or past its end.

Nor does a pod choose how much the renter asks for: whatever limits it announces, no READ or
WRITE asks for more than OpenSSH's sftp client would (255 KiB).
"""

from __future__ import annotations

import asyncio
import struct
import tracemalloc
from pathlib import Path

import pytest

from tests.security.hostile_sftp import Lies, hostile_server
from tests.transfer.conftest import random_file, sha256_of
from worldland_cli.transfer.download import download
from worldland_cli.transfer.errors import TransferError
from worldland_cli.transfer.lanes import LANE_MIN
from worldland_cli.transfer.model import Options
from worldland_cli.transfer.upload import upload

GIB = 1 << 30
ALLOWED = 64 << 20  # far more than a transfer's own buffers, far less than the lie


def _receive(tmp_path: Path, size: int, lies: Lies, openssh: bool) -> tuple[str, int, int]:
    """Receive a file from a pod telling ``lies``: the error, the pod's port, the peak
    of Python's allocations meanwhile (the lane's thread included)."""
    src = random_file(tmp_path / "pod" / "model.bin", size)
    back = tmp_path / "back"
    with hostile_server(tmp_path / "keys", lies) as pod:
        opts = Options(openssh=openssh, retries=0)
        tracemalloc.start()
        try:
            with pytest.raises(TransferError) as info:
                asyncio.run(download(pod.location(src), back, pod.creds, opts))
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
    assert not (back / "model.bin").exists()
    return info.value.message, pod.port, peak


@pytest.mark.parametrize(
    ("request_kind", "length"),
    [("read", GIB), ("open", GIB), ("read", 8), ("open", 0)],
    ids=["huge-read-answer", "huge-open-answer", "short-read-answer", "empty-open-answer"],
)
def test_the_lane_refuses_a_frame_length_before_allocating_it(
    tmp_path: Path, request_kind: str, length: int
) -> None:
    lies = Lies(frame_lengths={request_kind: length})
    message, port, peak = _receive(tmp_path, LANE_MIN + 1000, lies, openssh=True)
    assert peak < ALLOWED
    assert f"127.0.0.1:{port} announced an SFTP packet of {length} bytes" in message


@pytest.mark.parametrize("request_kind", ["read", "open"])
def test_asyncssh_refuses_a_huge_frame_before_allocating_it(
    tmp_path: Path, request_kind: str
) -> None:
    lies = Lies(frame_lengths={request_kind: GIB})
    message, port, peak = _receive(tmp_path, 100_000, lies, openssh=False)
    assert peak < ALLOWED
    assert f"127.0.0.1:{port} broke the SFTP protocol: Max packet size exceeded" in message


def test_asyncssh_asks_for_no_more_than_openssh_would_whatever_limits_a_pod_announces(
    tmp_path: Path,
) -> None:
    # A pod announcing reads and writes of 1 TiB had the engine ask for a whole file in one
    # READ (and gather every short answer in memory until it had it all) or read a whole
    # local file into one WRITE.
    src = random_file(tmp_path / "pod" / "model.bin", 3 << 20)
    out = random_file(tmp_path / "mine" / "weights.bin", 3 << 20)
    lies = Lies(limits=(1 << 40, 1 << 40))
    with hostile_server(tmp_path / "keys", lies) as pod:
        opts = Options(openssh=False)
        asyncio.run(download(pod.location(src), tmp_path / "back", pod.creds, opts))
        asyncio.run(upload([out], pod.location(tmp_path / "pod" / "in"), pod.creds, opts))
    assert pod.asked.reads and max(pod.asked.reads) <= 255 * 1024
    assert pod.asked.writes and max(pod.asked.writes) <= 255 * 1024
    assert sha256_of(tmp_path / "back" / "model.bin") == sha256_of(src)
    assert sha256_of(tmp_path / "pod" / "in" / "weights.bin") == sha256_of(out)


def _string(data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + data


FAILURE = struct.pack(">I", 4)  # SSH_FX_FAILURE


@pytest.mark.parametrize(
    "lies",
    [
        Lies(cut_open=FAILURE),
        Lies(cut_open=FAILURE + struct.pack(">I", 100) + b"short"),
        Lies(cut_version=struct.pack(">I", 3) + _string(b"fsync@openssh.com") + b"\0\0"),
        Lies(cut_version=struct.pack(">I", 3) + _string(b"limits@openssh.com") + b"\0\0\0\x50x"),
    ],
    ids=[
        "status-without-message",
        "status-message-cut",
        "version-cut-in-a-length",
        "version-cut-in-a-value",
    ],
)
def test_the_lane_refuses_an_answer_cut_short_inside_a_field_in_words(
    tmp_path: Path, lies: Lies
) -> None:
    # Each field of an answer is read only where the answer holds it: a STATUS without room
    # for its message, or a VERSION cut inside an extension, raised struct.error (a
    # traceback), or was read past its end as if the bytes were there.
    message, port, _ = _receive(tmp_path, LANE_MIN + 1000, lies, openssh=True)
    assert f"the remote 127.0.0.1:{port} sent an SFTP " in message
    assert "cut short" in message
