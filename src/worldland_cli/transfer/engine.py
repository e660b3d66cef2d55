"""The transfer engine: what a verified, resumable transfer does, the same in both directions.

How a file moves (:meth:`Engine.move_one`, for ``upload.py`` and ``download.py`` alike):

* Its bytes go to ``NAME.part`` on the destination's side (:class:`Parts`: the pod when
  sending, LOCAL_DIR when receiving), marked as ours. A ``.part`` already there that we
  wrote for this very source is hashed on both sides; when the hashes agree only the rest
  moves, so a dropped link or a second run resumes.
* The bytes travel through a :class:`.pipeline.Carrier` that :mod:`.lanes` picks: the
  OpenSSH lane for large files, asyncssh for the rest (and for all when ``ssh`` is missing).
  Writes complete in order, so a ``.part`` is always a clean prefix of the source.
* Our sha256 is taken as the bytes stream; the far side hashes its copy meanwhile
  (:mod:`.farhash`). Only when both agree, and the far side saw no change to its file, does
  the ``.part`` get its final name; otherwise it is deleted and the file fails.
* ``files_in_flight`` files move at once, each worker on its own SFTP channel (and lane) of
  one connection. A dropped connection is retried with exponential backoff; finished files
  stay finished.

The directions differ only in what they plan and where each side of a file is: the hooks
at the end of :class:`Engine`.
"""

from __future__ import annotations

import abc
import asyncio
import hashlib
import time
from collections import deque
from collections.abc import Iterator
from typing import Protocol

import asyncssh

from worldland_cli.transfer.display import shown
from worldland_cli.transfer.errors import (
    HOSTILE_HINT,
    ChecksumError,
    ConnectionDropped,
    TransferError,
    UnreachableError,
)
from worldland_cli.transfer.farhash import FarHash
from worldland_cli.transfer.lanes import Lanes, Slot
from worldland_cli.transfer.localfs import Digest, prefix_digest
from worldland_cli.transfer.model import Entry, FileResult, Leg, Options, Skipped, Summary
from worldland_cli.transfer.pipeline import Carrier, Moved
from worldland_cli.transfer.progress import ProgressSink
from worldland_cli.transfer.ssh import Credentials, connect, remote_sha256
from worldland_cli.transfer.targets import SshLocation

# Progress from a pipeline thread reaches the event loop in steps this large (moved_from_thread).
REPORT_EVERY = 4 << 20

_DROPS: tuple[type[BaseException], ...] = (
    asyncssh.ConnectionLost,
    asyncssh.DisconnectError,
    asyncssh.SFTPConnectionLost,
    asyncssh.SFTPNoConnection,
    asyncssh.ChannelOpenError,
    ConnectionError,
    TimeoutError,
    BrokenPipeError,
)


def _is_drop(exc: BaseException) -> bool:
    return isinstance(exc, (_DROPS, ConnectionDropped))


def _actionable(exc: BaseException, loc: SshLocation) -> BaseException:
    """An SFTP error the far side answered with, as a TransferError a person can read.

    Its reason is the far side's text: it is shown escaped, and never as a traceback. A bad
    message is asyncssh refusing what the far side sent (a packet over its 4 MiB limit, one
    cut short), not a refusal by the far side, and is named as such.
    """
    if isinstance(exc, asyncssh.SFTPBadMessage):
        return TransferError(
            f"the remote {loc.host}:{loc.port} broke the SFTP protocol: {shown(exc.reason)}",
            HOSTILE_HINT,
        )
    if isinstance(exc, asyncssh.SFTPError):
        return TransferError(f"the remote refused a request: {shown(exc.reason)}")
    return exc


def _flatten(group: BaseException) -> Iterator[BaseException]:
    if isinstance(group, BaseExceptionGroup):
        for inner in group.exceptions:
            yield from _flatten(inner)
    else:
        yield group


class Parts(Protocol):
    """The side that holds a direction's ``.part`` files: the pod (send) or LOCAL_DIR (receive).

    Local and remote behind one protocol, as asyncssh's copy sits on two file systems:
    ``upload.RemoteParts`` over SFTP, ``localfs.LocalParts`` on the renter's disk.
    """

    async def claim(self, leg: Leg) -> int:
        """The bytes of the leg's ``.part`` worth checking for a resume, once marked ours.

        A ``.part`` someone else wrote is refused unless --overwrite (errors.not_ours).
        """

    async def discard(self, leg: Leg) -> None:
        """Delete the ``.part`` and its mark (it failed its check)."""

    async def place(self, leg: Leg) -> None:
        """Give the verified ``.part`` its mode, times and final name; drop its mark."""


class Engine(abc.ABC):
    """State shared by the retry loop and the per-file workers of one transfer."""

    def __init__(
        self, loc: SshLocation, creds: Credentials, opts: Options, progress: ProgressSink
    ) -> None:
        try:
            loc.path.encode()  # typed (or registered for a code) with bytes that are not UTF-8
        except UnicodeEncodeError:
            raise TransferError(
                f"the remote path {shown(loc.path)} is not valid UTF-8, and SFTP names are "
                "asked for in UTF-8",
                "name a path that is valid UTF-8 (rename it on the pod)",
            ) from None
        self.loc = loc
        self.creds = creds
        self.opts = opts
        self.progress = progress
        self.files: list[Entry] = []  # the files to move, once planned
        self.results: dict[str, FileResult] = {}
        self.marks: dict[str, int] = {}
        self.retries = 0
        self.lanes = Lanes(loc, creds, progress, opts.openssh)
        self.followers: dict[str, FarHash] = {}  # far-side hashes told of each acknowledgement
        self.skipped: list[Skipped] = []

    async def transfer(self, direction: str, source: str, destination: str) -> Summary:
        """Run the whole transfer; its --json document."""
        began = time.monotonic()
        await self.run()
        return Summary(
            direction=direction,
            source=source,
            destination=destination,
            files=[self.results[f.rel] for f in self.files],
            seconds=time.monotonic() - began,
            retries=self.retries,
            skipped=self.skipped,
        )

    # ------------------------------------------------------------------ retry loop

    async def run(self) -> None:
        """Run :meth:`work` on a fresh connection until it succeeds or the retries run out."""
        while True:
            try:
                conn = await connect(self.loc, self.creds)
                async with conn:
                    try:
                        await self.work(conn)
                    finally:
                        await self.lanes.end_early()
                return
            except UnreachableError:
                if self.retries >= self.opts.retries:
                    raise
            except BaseException as exc:
                errors = list(_flatten(exc))
                fatal = [e for e in errors if not _is_drop(e)]
                if fatal:
                    raise _actionable(fatal[0], self.loc) from None
                if self.retries >= self.opts.retries:
                    raise UnreachableError(
                        f"the connection to {self.loc.host}:{self.loc.port} kept dropping "
                        f"({self.retries} retries): {shown(errors[0]) or type(errors[0]).__name__}",
                        "run the same command again: it resumes from the verified .part files",
                    ) from None
            self.retries += 1
            delay = min(self.opts.backoff * 2 ** (self.retries - 1), 8.0)
            self.progress.note(f"connection lost; retry {self.retries} in {delay:.1f}s")
            await asyncio.sleep(delay)

    def start_lane_early(self, conn: asyncssh.SSHClientConnection) -> None:
        """Open the first lane while the checks before the first large file still run.

        Its handshake (~0.15 s) would otherwise come after them.
        """
        self.lanes.start_early(conn, [f.size for f in self.files if not self.results[f.rel].done])

    async def each_file(self, conn: asyncssh.SSHClientConnection) -> None:
        """Move the files not yet done, several at once, one SFTP channel per worker."""
        queue = deque(f for f in self.files if not self.results[f.rel].done)

        async def worker() -> None:
            if not queue:
                return
            async with await conn.start_sftp_client() as sftp:
                slot = Slot(sftp)
                try:
                    while queue:
                        await self.move_one(conn, slot, queue.popleft())
                except BaseException:
                    slot.drop_lane()
                    raise
                await slot.close()

        async with asyncio.TaskGroup() as group:
            for _ in range(max(1, min(self.opts.files_in_flight, len(queue)))):
                group.create_task(worker())

    # ------------------------------------------------------------------ one file

    async def move_one(self, conn: asyncssh.SSHClientConnection, slot: Slot, f: Entry) -> None:
        """Move one file into its ``.part``, verify it on both sides, give it its name."""
        result = self.start_attempt(f)
        leg = self.leg(f)
        parts = self.parts(slot.sftp)
        held = await parts.claim(leg)
        start, digest = await self.verified_prefix(conn, slot.sftp, leg, held)
        self.resumed(result, start)

        carrier = await self.lanes.carrier(conn, slot, f.size - start)
        result.carried_by = carrier.name
        far = await FarHash.launch(conn, leg.remote, f.size, follow=self.far_follows)
        self.followers[result.path] = far
        try:
            await self.carry(slot, carrier, leg, start, digest, self.moved_from_thread(result))
        except BaseException:
            far.cancel()
            raise
        finally:
            del self.followers[result.path]

        ours = digest.hexdigest()
        theirs, how, changed = await self.far_view(conn, slot.sftp, far, leg.remote, f.size)
        refusal = (
            self.changed_during(f, f"the remote {shown(leg.remote)}")
            if changed
            else self.mismatch(f, ours, theirs)
        )
        if refusal is not None:
            await parts.discard(leg)
            raise refusal
        await parts.place(leg)
        result.sha256, result.verified_by, result.done = ours, how, True

    async def verified_prefix(
        self, conn: asyncssh.SSHClientConnection, sftp: asyncssh.SFTPClient, leg: Leg, held: int
    ) -> tuple[int, Digest]:
        """Where to start, and our hash so far: the ``held`` bytes if both sides hash alike."""
        if 0 < held <= leg.entry.size:
            prefix = prefix_digest(leg.local, held)
            theirs, _ = await remote_sha256(conn, sftp, leg.remote, held)
            if theirs == prefix.hexdigest():
                return held, prefix
        return 0, hashlib.sha256()

    def moved_from_thread(self, result: FileResult) -> Moved:
        """A progress callback for a pipeline thread: bookkeeping stays on the event loop.

        Reports go in steps of REPORT_EVERY: waking the loop for each 255 KiB block cost the
        lane's thread a fifth of its time in GIL hand-offs. A step never claims more than has
        been acknowledged (or written), so resume and progress stay honest.
        """
        loop = asyncio.get_running_loop()
        pending = 0

        def report(nbytes: int, reached: int) -> None:
            nonlocal pending
            pending += nbytes
            if pending >= REPORT_EVERY or reached >= result.size:
                loop.call_soon_threadsafe(self.moved, result, pending, reached)
                pending = 0

        return report

    async def far_view(
        self,
        conn: asyncssh.SSHClientConnection,
        sftp: asyncssh.SFTPClient,
        far: FarHash,
        path: str,
        size: int,
    ) -> tuple[str, str, bool]:
        """The far side's (sha256, how, changed) of ``path``, from ``far`` or a serial check.

        The serial check (exec without python3, or an sftp-only account) runs after the
        stream, as it always did, so its verdict covers the whole transfer too.
        """
        answer = await far.result()
        if answer is not None:
            return answer[0], "remote-exec", answer[1]
        theirs, how = await remote_sha256(conn, sftp, path, size)
        return theirs, how, False

    # ------------------------------------------------------------------ bookkeeping

    def add_files(self, files: list[Entry]) -> None:
        """The planned files: each gets its result and joins the progress total."""
        self.files = files
        for f in files:
            self.results[f.rel] = FileResult(path=f.rel, size=f.size)
            self.progress.add_total(f.size)

    def skip(self, skipped: Skipped) -> None:
        """Leave something out, with a note now and a line in --json's ``skipped``."""
        self.skipped.append(skipped)
        hint = f" ({skipped.hint})" if skipped.hint else ""
        self.progress.note(f"skipping {shown(skipped.path)}: {shown(skipped.reason)}{hint}")

    def start_attempt(self, entry: Entry) -> FileResult:
        result = self.results[entry.rel]
        result.attempts += 1
        result.bytes_after_resume = 0
        return result

    def resumed(self, result: FileResult, start: int) -> None:
        result.resumed_from = start
        mark = self.marks.get(result.path, 0)
        if start > mark:
            self.progress.skip(start - mark)
            self.marks[result.path] = start
        if start:
            self.progress.note(f"{shown(result.path)}: resuming at byte {start} (prefix verified)")

    def moved(self, result: FileResult, nbytes: int, reached: int) -> None:
        result.bytes_moved += nbytes
        result.bytes_after_resume += nbytes
        follower = self.followers.get(result.path)
        if follower is not None:
            follower.advance(reached)
        mark = self.marks.get(result.path, 0)
        if reached > mark:
            self.progress.advance(reached - mark)
            self.marks[result.path] = reached

    @staticmethod
    def checksum_failed(entry: Entry, received: str, sent: str, where: str) -> ChecksumError:
        return ChecksumError(
            f"{shown(entry.rel)}: checksum mismatch ({where}: {sent[:16]}..., received "
            f"{received[:16]}...); the partial file was deleted",
            "the source may have changed during the transfer; run the command again",
        )

    @staticmethod
    def changed_during(entry: Entry, what: str) -> ChecksumError:
        return ChecksumError(
            f"{shown(entry.rel)}: {what} changed during the transfer, so no checksum can vouch for "
            "it; the partial file was deleted",
            "run the command again once nothing else writes to the file",
        )

    # ------------------------------------------------------------------ the directions

    # Whether the far side hashes our writes as they are acknowledged (sending), or the whole
    # source while we read it (receiving): FarHash's two modes.
    far_follows: bool

    @abc.abstractmethod
    async def work(self, conn: asyncssh.SSHClientConnection) -> None:
        """One attempt at the whole transfer on ``conn``: plan (once), move, finish the tree."""

    @abc.abstractmethod
    def leg(self, f: Entry) -> Leg:
        """Where each side of ``f`` is."""

    @abc.abstractmethod
    def parts(self, sftp: asyncssh.SFTPClient) -> Parts:
        """The side that holds the ``.part`` files, for a worker on ``sftp``."""

    @abc.abstractmethod
    async def carry(
        self, slot: Slot, carrier: Carrier, leg: Leg, start: int, digest: Digest, moved: Moved
    ) -> None:
        """Move the leg's bytes from ``start`` through ``carrier``, hashing them into ``digest``."""

    @abc.abstractmethod
    def mismatch(self, f: Entry, ours: str, theirs: str) -> ChecksumError | None:
        """Why the hashes refuse ``f`` (ours, the far side's), or None when they agree."""
