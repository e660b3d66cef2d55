"""One file's bytes, pipelined: written once for both data paths, the lane and asyncssh.

Both paths sit behind :class:`Carrier` (``lane.OpenSshLane``, ``carriers.AsyncsshCarrier``),
as restic's backends sit behind one interface, so the engine never asks which one it has.
What this module does the same way for both:

* Up to ``in_flight`` READs or WRITEs of ``carrier.block`` bytes are outstanding, and their
  answers are taken strictly in order, so a ``.part`` is always a clean prefix of the source
  and resume can trust it. READs go out in batches (half the window in one pipe write: one
  wake-up of ssh, sshd and sftp-server for many requests, docs/transfer.md).
* A short READ answer (fewer bytes than asked, which a server may give) is handled here
  once: the answers still owed overlap it, so they are dropped and reading resumes where it
  stopped. A READ answered with nothing is a source that shrank.
* Disk and hash work run on a second thread (:mod:`.overlap`), so the thread that moves the
  bytes never waits on either.

Everything here blocks: the engine runs it on a worker thread and, to stop it, kills the
carrier, which wakes that thread with ConnectionDropped.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import Protocol, TypeVar

from worldland_cli.transfer.display import shown
from worldland_cli.transfer.errors import TransferError
from worldland_cli.transfer.localfs import Digest, reading
from worldland_cli.transfer.overlap import ReadAhead, WriteBehind

# The largest READ or WRITE asked for, on every path, whatever limits the far side announces:
# what OpenSSH's sftp client asks for at most (SFTP_MAX_MSG_LENGTH less 1 KiB). A pod
# announcing 1 TiB had us ask for a whole file in one READ (and hold it all), or read a whole
# local file into memory for one WRITE.
MAX_BLOCK = 255 << 10
# What the SFTP draft guarantees a server accepts, whatever it announces: a pod announcing
# nothing (or 0) still gets requests that move the file forward.
SAFE_BLOCK = 32 << 10

T = TypeVar("T")

Moved = Callable[[int, int], None]  # (bytes acknowledged or written, offset reached)


def request_block(max_read: int, max_write: int) -> int:
    """The size of every READ and WRITE for a far side announcing these limits."""
    return max(SAFE_BLOCK, min(MAX_BLOCK, max_read, max_write))


class RemoteFile(Protocol):
    """One file open on the far side; requests go out, answers come back in their order."""

    def ask(self, reads: list[tuple[int, int]]) -> None:
        """Send READs for these (offset, length) ranges, together."""

    def answer(self, into: memoryview) -> int:
        """The oldest READ's data, put in ``into`` (its length); 0 at end of file.

        More bytes than ``into`` holds is a protocol violation (``sent_more_than_asked``).
        """

    def write(self, offset: int, data: memoryview) -> None:
        """Send a WRITE; ``data`` may be reused once this returns."""

    def written(self) -> None:
        """Wait for the oldest WRITE's acknowledgement; raise its refusal."""

    def flush(self) -> None:
        """Ask the far side to put what was written on its disk (fsync), where it can."""


class Carrier(Protocol):
    """A data path to the far side: the OpenSSH lane, or the asyncssh connection's SFTP."""

    name: str  # what --json says carried a file: "openssh" or "asyncssh"
    block: int  # the size of every READ and WRITE (request_block)

    def opened(
        self, path: str, *, write: bool, start: int, ranged: bool = False
    ) -> contextlib.AbstractContextManager[RemoteFile]:
        """``path`` open for reading, or for writing from ``start`` (0: created 0600, or cut).

        ``ranged``: one range of a file that several lanes write (:mod:`.ranged`), which is
        never created or cut here. Closed when the block ends; after an error the engine
        kills the carrier as well.
        """

    def kill(self) -> None:
        """Stop at once, from any thread: a call blocked on the far side raises."""


async def on_thread(
    carrier: Carrier,
    call: Callable[[], T],
    pool: concurrent.futures.ThreadPoolExecutor | None = None,
) -> T:
    """Run a blocking pipeline ``call`` on a thread (of ``pool``, or asyncio's default);
    on failure or cancellation ``carrier`` dies.

    Killing it is what wakes a thread blocked on the far side; the thread is waited for
    before the error goes on, so nothing still uses the carrier's pipes or buffers.
    """
    task = asyncio.ensure_future(asyncio.get_running_loop().run_in_executor(pool, call))
    try:
        return await asyncio.shield(task)
    except BaseException:
        carrier.kill()
        with contextlib.suppress(BaseException):
            await task
        raise


class Sink(Protocol):
    """Where fetched bytes go, in order (``localfs.Sink``: the .part writer and hasher)."""

    def write(self, data: memoryview) -> None: ...


def push(
    carrier: Carrier,
    local: Path,
    remote: str,
    start: int,
    digest: Digest,
    moved: Moved,
    *,
    fsync: bool,
    in_flight: int,
) -> int:
    """Write ``local`` from ``start`` into ``remote``, hashing what is read into ``digest``.

    Writes are acknowledged in order and ``moved`` hears of each. Returns the offset
    reached (the local size as read, which the caller compares with the planned size).
    """
    pending: deque[tuple[int, int]] = deque()
    offset = start
    with (
        carrier.opened(remote, write=True, start=start) as rf,
        reading(local, start, digest) as read_and_hash,
    ):
        ahead = ReadAhead(read_and_hash, carrier.block)
        try:
            while True:
                buffer, n = ahead.next()
                if not n:
                    break
                rf.write(offset, memoryview(buffer)[:n])
                ahead.recycle(buffer)  # the carrier holds a copy now
                offset += n
                pending.append((n, offset))
                if len(pending) >= in_flight:
                    _acknowledged(rf, pending, moved)
            while pending:
                _acknowledged(rf, pending, moved)
        finally:
            ahead.stop()
        if fsync:
            rf.flush()
    return offset


def _acknowledged(rf: RemoteFile, pending: deque[tuple[int, int]], moved: Moved) -> None:
    rf.written()
    size, reached = pending.popleft()
    moved(size, reached)


def fetch(
    carrier: Carrier,
    remote: str,
    start: int,
    size: int,
    sink: Sink,
    moved: Moved,
    *,
    in_flight: int,
) -> None:
    """Read ``remote`` from ``start`` to ``size`` into ``sink``, in order.

    ``moved`` hears of bytes once the sink has them, so progress never runs ahead of what a
    resume would find on disk.
    """

    def write_and_hash(view: memoryview, offset: int) -> None:
        sink.write(view)
        moved(len(view), offset + len(view))

    with carrier.opened(remote, write=False, start=start) as rf:
        behind = WriteBehind(write_and_hash, carrier.block)
        try:
            _stream_reads(rf, remote, start, size, carrier.block, behind, in_flight)
        except BaseException:
            with contextlib.suppress(BaseException):
                behind.finish()
            raise
        behind.finish()


def _stream_reads(
    rf: RemoteFile,
    remote: str,
    start: int,
    size: int,
    block: int,
    behind: WriteBehind,
    in_flight: int,
) -> None:
    """READs from ``start`` to ``size``, ``in_flight`` at most; each answer goes to ``behind``."""
    asked: deque[tuple[int, int]] = deque()
    wanted = start
    refill = max(1, in_flight // 2)
    while True:
        if len(asked) <= in_flight - refill:
            batch: list[tuple[int, int]] = []
            while wanted < size and len(asked) + len(batch) < in_flight:
                n = min(block, size - wanted)
                batch.append((wanted, n))
                wanted += n
            if batch:
                rf.ask(batch)
                asked.extend(batch)
        if not asked:
            break
        offset, n = asked.popleft()
        buffer = behind.take()
        got = rf.answer(memoryview(buffer)[:n])
        if got == 0:
            raise TransferError(f"{shown(remote)} shrank during the transfer; fetch it again")
        behind.give(buffer, got, offset)
        if got < n:  # a short answer: the answers still owed overlap it; ask again from here
            scratch = memoryview(bytearray(block))
            for _ in asked:
                rf.answer(scratch)
            asked.clear()
            wanted = offset + got


# A lane of a ranged file (:mod:`.ranged`): the next (start, end) range to move, or None.
Take = Callable[[], "tuple[int, int] | None"]
# A lane's bytes done: (offset, length) acknowledged (sending) or written (receiving).
Done = Callable[[int, int], None]


def push_ranges(
    carrier: Carrier,
    read_at: Callable[[int, int], bytes],
    remote: str,
    take: Take,
    done: Done,
    *,
    in_flight: int,
) -> None:
    """Write ranges of a local file into ``remote``, one lane's share, through one handle.

    The lane keeps the far file open and its window full from one range to the next (an
    open and a close per range would leave it idle two round trips each time); ``done``
    hears of each write once acknowledged. ``read_at(offset, length)`` reads the source.
    """
    pending: deque[tuple[int, int]] = deque()
    with carrier.opened(remote, write=True, start=0, ranged=True) as rf:
        while (wanted := take()) is not None:
            offset, end = wanted
            while offset < end:
                data = read_at(offset, min(carrier.block, end - offset))
                rf.write(offset, memoryview(data))
                pending.append((offset, len(data)))
                offset += len(data)
                if len(pending) >= in_flight:
                    rf.written()
                    done(*pending.popleft())
        while pending:
            rf.written()
            done(*pending.popleft())


def fetch_ranges(
    carrier: Carrier,
    remote: str,
    write_at: Callable[[int, memoryview], None],
    take: Take,
    done: Done,
    *,
    in_flight: int,
) -> None:
    """Read ranges of ``remote`` into a local file, one lane's share, through one handle.

    READs run ahead across ranges, ``in_flight`` at most; ``done`` hears of each once
    ``write_at(offset, data)`` has it. A READ answered short is a source that shrank
    (OpenSSH's sftp-server answers a regular file in full but at its end).
    """
    asked: deque[tuple[int, int]] = deque()
    buffer = memoryview(bytearray(carrier.block))
    with carrier.opened(remote, write=False, start=0) as rf:
        ranges_left = True
        wanted, end = 0, 0
        while True:
            batch: list[tuple[int, int]] = []
            while len(asked) + len(batch) < in_flight and ranges_left:
                if wanted >= end:
                    following = take()
                    if following is None:
                        ranges_left = False
                        break
                    wanted, end = following
                n = min(carrier.block, end - wanted)
                batch.append((wanted, n))
                wanted += n
            if batch:
                rf.ask(batch)
                asked.extend(batch)
            if not asked:
                return
            offset, n = asked.popleft()
            got = rf.answer(buffer[:n])
            if got < n:
                raise TransferError(f"{shown(remote)} shrank during the transfer; fetch it again")
            write_at(offset, buffer[:n])
            done(offset, n)
