"""The lane's SFTP codec on bytes alone: requests as OpenSSH's sftp-server reads them, and
every answer a pod could cut short refused in words, never a struct.error."""

from __future__ import annotations

import struct
from collections.abc import Callable

import pytest

from worldland_cli.transfer.errors import TransferError
from worldland_cli.transfer.sftpcodec import (
    CLOSE,
    DATA_HEAD,
    EXTENDED_REPLY,
    FX_EOF,
    HANDLE,
    MAX_PACKET,
    OPEN,
    PF_READ,
    READ,
    STATUS,
    WRITE,
    Codec,
    string,
)

PEER = "pod.example:2222"


def _u32(*values: int) -> bytes:
    return b"".join(struct.pack(">I", v) for v in values)


VERSION_BODY = (
    _u32(3)
    + string(b"fsync@openssh.com")
    + string(b"1")
    + string(b"limits@openssh.com")
    + string(b"1")
)
STATUS_READ = _u32(7, 2) + string(b"No such file")  # its language tag is never read
STATUS_BODY = STATUS_READ + string(b"en")
HANDLE_BODY = _u32(7) + string(b"\x00\x01")
LIMITS_BODY = _u32(7) + struct.pack(">QQQQ", 1 << 18, 255 << 10, 255 << 10, 64)

ANSWERS: dict[str, tuple[bytes, Callable[[Codec, bytes], object]]] = {
    "version": (VERSION_BODY, lambda c, b: c.version(b)),
    "status": (STATUS_READ, lambda c, b: c.status(b)),
    "handle": (HANDLE_BODY, lambda c, b: c.handle(HANDLE, b, "opening")),
    "limits": (LIMITS_BODY, lambda c, b: c.limits(b)),
}


def test_whole_answers_are_read_field_by_field() -> None:
    codec = Codec(PEER)
    assert codec.version(VERSION_BODY) == {b"fsync@openssh.com": b"1", b"limits@openssh.com": b"1"}
    assert codec.status(STATUS_BODY) == (2, "No such file")
    assert codec.status(_u32(7, 0) + string(b"")) == (0, "")  # no language tag: never read
    assert codec.handle(HANDLE, HANDLE_BODY, "opening") == b"\x00\x01"
    assert codec.limits(LIMITS_BODY) == (255 << 10, 255 << 10)


@pytest.mark.parametrize("answer", sorted(ANSWERS))
def test_every_answer_cut_short_anywhere_is_refused_naming_the_pod(answer: str) -> None:
    body, parse = ANSWERS[answer]
    codec = Codec(PEER)
    for cut in range(len(body)):
        if answer == "version" and cut in (4, 4 + 21 + 5):  # ends between extensions: whole
            continue
        with pytest.raises(TransferError) as info:
            parse(codec, body[:cut])
        assert info.value.message.startswith(f"the remote {PEER} sent an SFTP ")
        assert "cut short" in info.value.message
        assert "broken or hostile" in (info.value.hint or "")


def test_a_string_announcing_more_than_follows_is_refused() -> None:
    codec = Codec(PEER)
    with pytest.raises(TransferError, match=r"STATUS cut short: its message needs 100 bytes"):
        codec.status(_u32(7, 4, 100) + b"short")
    with pytest.raises(TransferError, match=r"VERSION cut short: an extension's value"):
        codec.version(_u32(3) + string(b"limits@openssh.com") + _u32(80) + b"x")


def test_a_refusal_says_what_failed_in_the_pods_words_escaped() -> None:
    codec = Codec(PEER)
    with pytest.raises(TransferError, match=r"^opening: no\\x1b\[2J$"):
        codec.expect_status(STATUS, _u32(7, 4) + string(b"no\x1b[2J"), "opening")
    with pytest.raises(TransferError, match=r"^opening: permission denied$"):
        codec.handle(STATUS, _u32(7, 3) + string(b""), "opening")
    with pytest.raises(TransferError, match=r"^opening: unexpected SFTP reply type 103$"):
        codec.handle(103, b"", "opening")
    codec.expect_status(STATUS, _u32(7, 0) + string(b""), "closing")
    codec.expect_status(STATUS, _u32(7, 1) + string(b"EOF"), "reading", FX_EOF)


@pytest.mark.parametrize(
    ("length", "kind"),
    [(0, STATUS), (8, STATUS), (4, 2), (MAX_PACKET + 1, STATUS), (MAX_PACKET + 1, HANDLE)],
)
def test_a_frame_length_out_of_bounds_is_refused_before_it_is_read(length: int, kind: int) -> None:
    with pytest.raises(TransferError, match=f"{PEER} announced an SFTP packet of {length} bytes"):
        Codec(PEER).frame(struct.pack(">IB", length, kind))


def test_a_data_answer_longer_than_its_read_or_its_frame_is_refused() -> None:
    assert Codec.data_length(_u32(7, 100), 1 + DATA_HEAD + 100, 100, "/x") == 100
    with pytest.raises(TransferError, match="more bytes than it was asked for"):
        Codec.data_length(_u32(7, 101), 1 + DATA_HEAD + 101, 100, "/x")
    with pytest.raises(TransferError, match="more bytes than it was asked for"):
        Codec.data_length(_u32(7, 50), 1 + DATA_HEAD + 100, 100, "/x")


def test_requests_are_framed_with_rising_ids() -> None:
    codec = Codec(PEER)
    assert codec.init() == struct.pack(">IBI", 5, 1, 3)
    opened = codec.open("/w/a.bin", PF_READ, None)
    assert opened == struct.pack(">IBI", 5 + 12 + 4 + 4, OPEN, 1) + string(b"/w/a.bin") + _u32(1, 0)
    created = codec.open("/w/b", PF_READ, 0o600)
    assert created.endswith(_u32(PF_READ, 0x04, 0o600)) and created[5:9] == _u32(2)
    assert codec.read(b"h", 7, 100) == struct.pack(">IBI", 5 + 5 + 12, READ, 3) + string(
        b"h"
    ) + struct.pack(">QI", 7, 100)
    # WRITE's frame counts the data that follows it unframed.
    assert codec.write(b"h", 0, 1000)[:9] == struct.pack(">IBI", 5 + 5 + 12 + 1000, WRITE, 4)
    assert codec.close(b"h")[4] == CLOSE
    assert codec.extended(b"fsync@openssh.com", string(b"h"))[9:] == string(
        b"fsync@openssh.com"
    ) + string(b"h")
    assert EXTENDED_REPLY == 201
