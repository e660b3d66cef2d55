"""One large file over several lanes at once: what a long fat link needs.

Why: SSH gives every channel a window, and a channel moves at most one window per round
trip. OpenSSH's sshd gives a session channel 2 MiB, so one SFTP channel 100 ms away moves
at most ~21 MB/s, whatever the link: a third of 400 Mbit/s, which is where sftp, scp and
rsync all stop (issue 14's measurement). Several channels of the one connection, each with
its own window, fill the link; the connection, its handshake and its far-side helper stay
one.

How a file moves here (:func:`carry_ranged`):

* The lanes are SFTP channels of the transfer's asyncssh connection: the worker's own and
  up to ``lanes - 1`` more, opened together (a server that allows fewer sessions, sshd's
  ``MaxSessions``, gets fewer lanes). asyncssh advertises a 16 MiB window per channel for
  what it receives (``ssh.WINDOW``), so a download's lanes are never held to 2 MiB either.
* The bytes still wanted are cut into 1 MiB ranges; each lane takes the next one not yet
  taken, through the one handle it keeps open with its window full, so the lanes work side
  by side and the file's complete prefix grows steadily (:class:`Frontier`).
* The hashes follow that prefix while the lanes run: the far side's helper hashes an
  upload's ``.part`` as it is acknowledged (its ``follow`` job), a thread here hashes a
  download's (``localfs.Following``), and the source's hash is taken meanwhile; so both
  are ready a moment after the last byte.
* Resume keeps no map that would have to be written as the lanes go (and could be torn by a
  kill): on a retry or a rerun both sides hash the ``.part`` and the source block by block
  (``BLOCK``), each side in one pass, and only the blocks whose hashes differ move again.
  Any block that matches holds the right bytes, however the last run ended.
* The whole file's sha256 decides, as for every file, each side's read from its own disk.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import functools
import math
import threading
from collections import deque
from collections.abc import Callable

import asyncssh

from worldland_cli.transfer.failures import flatten, is_drop
from worldland_cli.transfer.pipeline import Carrier, Done, Take, on_thread
from worldland_cli.transfer.sftpcarrier import AsyncsshCarrier

# A round trip shorter than this is a near link: one lane (the OpenSSH one) fills it.
NEAR = 0.015
# What the lanes of a far link aim to move at most, whatever the distance: 168 MB/s (1.3
# Gbit/s), eight of sshd's 2 MiB windows per 100 ms.
RATE = 168e6
# The window a lane moves per round trip: when sending, what OpenSSH's sshd gives a session
# channel; when receiving, what asyncssh advertises (ssh.WINDOW).
SEND_WINDOW = 2 << 20
MAX_LANES = 8

# A resume compares blocks of this size (more for files over 32 GiB, so that one answer
# lists at most MAX_BLOCKS hashes).
BLOCK = 8 << 20
MAX_BLOCKS = 4096
# A lane takes this much at a time, through the handle it keeps open: small enough that the
# lanes work side by side near the start of what is missing, so its complete prefix (which
# the hashes follow) trails the newest byte by about the lanes' windows.
CHUNK = 1 << 20

# One lane's whole share, on a thread of its own: its carrier, the next range to take, and
# where each acknowledged (sending) or written (receiving) piece is told.
Call = Callable[[Carrier, Take, Done], None]


def lanes_for(rtt: float, window: int = SEND_WINDOW) -> int:
    """How many lanes a link this many seconds away needs, each moving ``window`` per round
    trip: none extra when near, at least two when far (each lane waits a round trip for
    every range it opens), at most MAX_LANES."""
    if rtt < NEAR:
        return 1
    return max(2, min(MAX_LANES, math.ceil(rtt * RATE / window)))


def block_size(size: int) -> int:
    return BLOCK * max(1, math.ceil(size / BLOCK / MAX_BLOCKS))


def chunks(size: int, block: int, kept: set[int]) -> deque[tuple[int, int]]:
    """The (start, end) ranges still to move, in order: the blocks not ``kept``, cut in
    CHUNK pieces."""
    todo: deque[tuple[int, int]] = deque()
    for i in range(math.ceil(size / block)):
        if i not in kept:
            end = min(size, (i + 1) * block)
            todo.extend((at, min(end, at + CHUNK)) for at in range(i * block, end, CHUNK))
    return todo


def kept_blocks(ours: list[str], theirs: list[str], held: int, size: int, block: int) -> set[int]:
    """The blocks both sides hold alike: whole blocks within ``held``, or the file's last."""
    kept: set[int] = set()
    for i, (a, b) in enumerate(zip(ours, theirs, strict=False)):
        end = min(size, (i + 1) * block)
        if a == b and end <= held:
            kept.add(i)
    return kept


class Frontier:
    """How far a ranged file is complete from its first byte, as lanes finish pieces of it
    in any order (from their threads); ``moved(frontier)`` hears of each advance."""

    def __init__(self, moved: Callable[[int], None]) -> None:
        self._moved = moved
        self._lock = threading.Lock()
        self._at = 0
        self._ahead: dict[int, int] = {}  # pieces done beyond the frontier: start -> end

    def done(self, start: int, length: int) -> None:
        with self._lock:
            if start != self._at:
                self._ahead[start] = start + length
                return
            self._at = start + length
            while self._at in self._ahead:
                self._at = self._ahead.pop(self._at)
            at = self._at
        self._moved(at)


async def open_lanes(
    conn: asyncssh.SSHClientConnection, own: asyncssh.SFTPClient, lanes: int
) -> tuple[list[AsyncsshCarrier], list[asyncssh.SFTPClient]]:
    """The carriers of a ranged file: ``own`` and up to ``lanes - 1`` new SFTP channels.

    A channel the server refuses (too many sessions) is a lane less, not a failure.
    Returns the carriers and the channels opened here (the caller closes them).
    """
    opened = await asyncio.gather(
        *(conn.start_sftp_client() for _ in range(lanes - 1)), return_exceptions=True
    )
    extra = [c for c in opened if isinstance(c, asyncssh.SFTPClient)]
    for failed in opened:
        if isinstance(failed, BaseException) and not isinstance(
            failed, (asyncssh.ChannelOpenError, asyncssh.SFTPError)
        ):
            for sftp in extra:
                sftp.exit()
            raise failed
    loop = asyncio.get_running_loop()
    return [AsyncsshCarrier(s, loop) for s in (own, *extra)], extra


async def close_unclaimed(
    opening: asyncio.Future[tuple[list[AsyncsshCarrier], list[asyncssh.SFTPClient]]],
) -> None:
    """Close the channels of an :func:`open_lanes` that failed before they were used.

    Once they were used, the caller has closed them; exiting an SFTP client twice is
    harmless.
    """
    if not opening.done():
        opening.cancel()
    with contextlib.suppress(BaseException):
        _, extra = await opening
        for sftp in extra:
            sftp.exit()


async def carry_ranged(
    carriers: list[AsyncsshCarrier], todo: deque[tuple[int, int]], call: Call, done: Done
) -> None:
    """Move every range of ``todo``, each lane taking the next; the first failure stops all.

    Each lane runs ``call`` once, on a thread of its own, with a ``take`` that hands out the
    next range; ``done`` hears of every piece. A failed lane kills the others' carriers,
    which wakes their threads; what was left stays for the retry's block comparison.
    """
    pool = concurrent.futures.ThreadPoolExecutor(len(carriers), "worldland-lane")
    lock = threading.Lock()

    def take() -> tuple[int, int] | None:
        with lock:
            return todo.popleft() if todo else None

    try:
        async with asyncio.TaskGroup() as group:
            for carrier in carriers:
                one = functools.partial(call, carrier, take, done)
                group.create_task(on_thread(carrier, one, pool))
    except BaseExceptionGroup as failed:
        for carrier in carriers:
            carrier.kill()
        # The engine explains one file's failure (a full disk, a refusal) from one error:
        # the lane that failed first, not the drops of the lanes killed after it.
        errors = list(flatten(failed))
        raise next((e for e in errors if not is_drop(e)), errors[0]) from None
    except BaseException:
        for carrier in carriers:
            carrier.kill()
        raise
    finally:
        pool.shutdown(wait=False)
