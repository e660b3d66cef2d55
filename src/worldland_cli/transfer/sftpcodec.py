"""SFTP version 3 packets as bytes: the lane's requests built, the far side's answers read.

Pure (no pipes, no process), so every rule about what a pod may send is tested on bytes
alone (tests/transfer/test_sftpcodec.py); :mod:`.lane` moves the bytes. The format is
draft-ietf-secsh-filexfer-02: a uint32 length, a type byte, then fields that are uint32,
uint64 or strings (a uint32 length and that many bytes).

The far side writes every length in an answer, and a pod may lie. Each field is read only
where the answer holds it: one cut short (a STATUS without room for its message, a VERSION
cut inside an extension, a string announcing more bytes than follow) is a TransferError
that names the pod, never a ``struct.error`` traceback or a field read as if its bytes were
there. A frame's own length is checked before a byte of it is read (:meth:`Codec.check_frame`).
"""

from __future__ import annotations

import struct

from worldland_cli.transfer.display import shown
from worldland_cli.transfer.errors import (
    HOSTILE_HINT,
    RemoteRefused,
    TransferError,
    sent_more_than_asked,
)

# Packet types and flags (draft-ietf-secsh-filexfer-02, sections 3 and 6.3).
INIT, VERSION, OPEN, CLOSE, READ, WRITE = 1, 2, 3, 4, 5, 6
STATUS, HANDLE, DATA, EXTENDED, EXTENDED_REPLY = 101, 102, 103, 200, 201
PF_READ, PF_WRITE, PF_CREAT, PF_TRUNC = 0x01, 0x02, 0x08, 0x10
_ATTR_PERMISSIONS = 0x04
FX_OK, FX_EOF = 0, 1
_FX_NAMES = {2: "no such file", 3: "permission denied", 4: "failure", 8: "unsupported"}

# The longest answer read, as OpenSSH's sftp client (its SFTP_MAX_MSG_LENGTH): the longest
# asked for is a READ answer of MAX_BLOCK (255 KiB) after 9 bytes of header (type, request
# id, data length), so 1015 bytes to spare. The length is the far side's word, up to 4 GiB.
MAX_PACKET = 256 * 1024
# The header a DATA answer has before its bytes: its request id and the data's length.
DATA_HEAD = 8

_U32 = struct.Struct(">I")
_HEADER = struct.Struct(">IBI")  # length, type, request id
_FRAME = struct.Struct(">IB")  # length, type
_OFFSET_LENGTH = struct.Struct(">QI")
_LIMITS = struct.Struct(">QQQQ")  # max packet, read and write length, open handles


def string(data: bytes) -> bytes:
    """An SFTP string: its length, then its bytes."""
    return _U32.pack(len(data)) + data


class Codec:
    """The packets of one SFTP session with ``peer`` ("host:port", named in every error).

    Holds the request counter; answers are taken as they come (OpenSSH's sftp-server answers
    in order, and a ``.part`` stays a prefix whatever the ids say: the hashes decide).
    """

    def __init__(self, peer: str) -> None:
        self.peer = peer
        self._next_id = 0

    # ------------------------------------------------------------------ requests

    @staticmethod
    def init() -> bytes:
        """INIT asking for version 3 (it has no request id)."""
        return _HEADER.pack(5, INIT, 3)

    def request(self, kind: int, payload: bytes, extra: int = 0) -> bytes:
        """A request's frame and payload; ``extra`` bytes of data follow it on the wire."""
        self._next_id = (self._next_id + 1) & 0xFFFFFFFF
        return _HEADER.pack(5 + len(payload) + extra, kind, self._next_id) + payload

    def open(self, path: str, flags: int, mode: int | None) -> bytes:
        """OPEN ``path``; ``mode`` only for a file it creates."""
        attrs = _U32.pack(_ATTR_PERMISSIONS) + _U32.pack(mode) if mode is not None else bytes(4)
        return self.request(OPEN, string(path.encode()) + _U32.pack(flags) + attrs)

    def read(self, handle: bytes, offset: int, length: int) -> bytes:
        return self.request(READ, string(handle) + _OFFSET_LENGTH.pack(offset, length))

    def write(self, handle: bytes, offset: int, length: int) -> bytes:
        """WRITE's frame and fields; its ``length`` bytes of data go after it unframed."""
        fields = string(handle) + _OFFSET_LENGTH.pack(offset, length)
        return self.request(WRITE, fields, extra=length)

    def close(self, handle: bytes) -> bytes:
        return self.request(CLOSE, string(handle))

    def extended(self, name: bytes, payload: bytes = b"") -> bytes:
        return self.request(EXTENDED, string(name) + payload)

    # ------------------------------------------------------------------ answers

    def frame(self, head: bytes) -> tuple[int, int]:
        """The length and type of an answer from its first five bytes, once both may be read."""
        length, kind = _FRAME.unpack(head)
        self.check_frame(length, kind)
        return length, kind

    def check_frame(self, length: int, kind: int) -> None:
        """Refuse a frame length before a byte more is read or room for it allocated.

        A pod announcing 4 GiB would otherwise have us allocate 4 GiB for it. A DATA answer
        is read into the buffer of the READ it answers, never one of its own length, and one
        longer than that buffer is refused by :meth:`data_length` as more than asked for.
        """
        shortest = 9 if kind in (STATUS, HANDLE, DATA) else 5  # type, id, then a uint32
        if length < shortest or (length > MAX_PACKET and kind != DATA):
            raise TransferError(
                f"the remote {self.peer} announced an SFTP packet of {length} bytes, where "
                f"an answer of type {kind} holds {shortest} to {MAX_PACKET} (a protocol "
                "violation); none of it was read",
                HOSTILE_HINT,
            )

    def version(self, body: bytes) -> dict[bytes, bytes]:
        """The extensions a VERSION answer (its bytes after the type) announces, by name."""
        fields = _Fields(body, self.peer, "VERSION")
        fields.uint32("its version")  # OpenSSH's sftp-server answers 3, as asked
        extensions: dict[bytes, bytes] = {}
        while fields.left:
            name = fields.string("an extension's name")
            extensions[name] = fields.string("an extension's value")
        return extensions

    def status(self, body: bytes) -> tuple[int, str]:
        """A STATUS answer's code and message (its language tag is never read)."""
        fields = _Fields(body, self.peer, "STATUS")
        fields.uint32("its request id")
        code = fields.uint32("its code")
        return code, fields.string("its message").decode(errors="replace")

    def handle(self, kind: int, body: bytes, what: str) -> bytes:
        """The handle an OPEN got, or a TransferError saying ``what`` failed and why."""
        if kind != HANDLE:
            raise self.unexpected(kind, body, what)
        fields = _Fields(body, self.peer, "HANDLE")
        fields.uint32("its request id")
        return fields.string("the handle")

    def limits(self, body: bytes) -> tuple[int, int]:
        """The largest READ and WRITE a ``limits@openssh.com`` reply announces."""
        fields = _Fields(body, self.peer, "limits@openssh.com reply")
        fields.uint32("its request id")
        _, max_read, max_write, _ = _LIMITS.unpack(fields.take(_LIMITS.size, "its limits"))
        return max_read, max_write

    def expect_status(self, kind: int, body: bytes, what: str, wanted: int = FX_OK) -> None:
        """Nothing when the answer is a STATUS ``wanted`` (OK; EOF ends a READ's answers).

        Else a TransferError saying ``what`` failed, and why in the far side's words.
        """
        if kind != STATUS:
            raise self.unexpected(kind, body, what)
        code, message = self.status(body)
        if code != wanted:
            raise self.refused(code, message, what)

    def unexpected(self, kind: int, body: bytes, what: str) -> TransferError:
        """The error for an answer of the wrong type; a STATUS says why in its own words."""
        if kind == STATUS:
            code, message = self.status(body)
            return self.refused(code, message, what)
        return TransferError(f"{what}: unexpected SFTP reply type {kind}")

    @staticmethod
    def refused(code: int, message: str, what: str) -> TransferError:
        reason = message or _FX_NAMES.get(code, f"SFTP status {code}")
        return RemoteRefused(f"{what}: {shown(reason)}", code, reason)

    @staticmethod
    def data_length(head: bytes, length: int, room: int, remote: str) -> int:
        """How many bytes a DATA answer carries, from its ``head`` (request id, length).

        Refused when it would not fit the ``room`` its READ asked for, or disagrees with the
        frame's ``length``: nothing past the range asked for is ever written.
        """
        n: int = _U32.unpack_from(head, 4)[0]
        if n > room or n != length - 1 - DATA_HEAD:
            raise sent_more_than_asked(remote)
        return n


class _Fields:
    """The fields of one answer's body, read in order, each only where the body holds it."""

    def __init__(self, body: bytes, peer: str, what: str) -> None:
        self._body = body
        self._at = 0
        self._peer = peer
        self._what = what

    @property
    def left(self) -> int:
        return len(self._body) - self._at

    def take(self, n: int, field: str) -> bytes:
        if n > self.left:
            raise TransferError(
                f"the remote {self._peer} sent an SFTP {self._what} cut short: {field} needs "
                f"{n} bytes at byte {self._at} of {len(self._body)} (a protocol violation)",
                HOSTILE_HINT,
            )
        self._at += n
        return self._body[self._at - n : self._at]

    def uint32(self, field: str) -> int:
        value: int = _U32.unpack(self.take(4, field))[0]
        return value

    def string(self, field: str) -> bytes:
        return self.take(self.uint32(f"the length of {field}"), field)
