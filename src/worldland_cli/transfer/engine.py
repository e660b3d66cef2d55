"""The transfer engine: what a verified, resumable transfer does, the same in both directions.

How a file moves (:meth:`Engine.move_one`, for ``upload.py`` and ``download.py`` alike):

* Its bytes go to ``NAME.part`` on the destination's side (:class:`Parts`: the pod when
  sending, LOCAL_DIR when receiving), marked as ours. A ``.part`` already there that we
  wrote for this very source is hashed on both sides; when the hashes agree only the rest
  moves, so a dropped link or a second run resumes.
* The bytes travel through a :class:`.pipeline.Carrier` that :mod:`.lanes` picks: the
  OpenSSH lane for large files, asyncssh for the rest (and for all when ``ssh`` is missing).
  Writes complete in order, so a ``.part`` is always a clean prefix of the source.
* Our sha256 is taken as the bytes stream; the far side hashes its copy meanwhile (a job
  of the connection's far-side helper, :mod:`.farside`). Only when both agree, and the far
  side saw no change to its file, does the ``.part`` get its final name; otherwise it is
  deleted and the file fails.
* On a far link a large file moves over several channels of the connection at once
  (:mod:`.ranged`; :meth:`Engine.move_ranged`), and a resume compares blocks, not a prefix.
* ``files_in_flight`` files move at once, each worker on its own SFTP channel (and lane) of
  one connection. A dropped connection is retried with exponential backoff; finished files
  stay finished. A first connection that fails is not retried: a dead pod says so at once.

Before that, a tree is judged against its destination (:mod:`.survey`, on every attempt, so
a retry sees what the last one left): files already there are skipped, and small ones that
need no resume travel packed (:mod:`.packed`), all of them through one far-side process.

The directions differ only in what they plan and where each side of a file is: the hooks
at the end of :class:`Engine`.
"""

from __future__ import annotations

import abc
import asyncio
import contextlib
import hashlib
import threading
import time
from collections import deque
from collections.abc import AsyncIterator, Callable
from typing import Any, Protocol

import asyncssh

from worldland_cli.transfer.display import shown
from worldland_cli.transfer.errors import (
    ChecksumError,
    DestinationExistsError,
    TransferError,
    UnreachableError,
    changed_during,
)
from worldland_cli.transfer.exclude import Excludes
from worldland_cli.transfer.failures import (
    actionable,
    explain,
    flatten,
    is_drop,
    remote_os_failure,
)
from worldland_cli.transfer.farreplies import OsFailure
from worldland_cli.transfer.farside import FarSide, LateJob
from worldland_cli.transfer.lanes import LANE_MIN, Lanes, Slot
from worldland_cli.transfer.localfs import (
    Digest,
    Following,
    block_sha256s,
    prefix_digest,
    sized_sha256,
    sync_file,
)
from worldland_cli.transfer.model import (
    DIFFERS,
    NEW,
    SAME,
    Entry,
    FileResult,
    Leg,
    Options,
    Summary,
    Verdict,
)
from worldland_cli.transfer.packed import PACK_MAX
from worldland_cli.transfer.pipeline import Carrier, Done, Moved
from worldland_cli.transfer.progress import ProgressSink
from worldland_cli.transfer.ranged import (
    SEND_WINDOW,
    Call,
    Frontier,
    block_size,
    carry_ranged,
    chunks,
    close_unclaimed,
    kept_blocks,
    open_lanes,
)
from worldland_cli.transfer.ssh import (
    WINDOW,
    Credentials,
    connect,
    remote_sha256,
    trusted_host_keys,
)
from worldland_cli.transfer.survey import refusal
from worldland_cli.transfer.tally import Tally
from worldland_cli.transfer.targets import SshLocation

# Progress from a pipeline thread reaches the event loop in steps this large (moved_from_thread).
REPORT_EVERY = 4 << 20


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


@contextlib.asynccontextmanager
async def _channel(conn: asyncssh.SSHClientConnection) -> AsyncIterator[asyncssh.SFTPClient]:
    """An SFTP channel, closed without waiting for the far side's answer: every request on
    it has been answered by then, and the wait cost a round trip at the end of each run."""
    sftp = await conn.start_sftp_client()
    try:
        yield sftp
    finally:
        sftp.exit()


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
        self.tally = Tally(progress)
        self.retries = 0
        self.lanes = Lanes(loc, creds, progress, opts.openssh, opts.lanes)
        self.excludes = Excludes(opts.exclude)
        self.verdicts: list[Verdict] | None = None  # a dry run's
        self.connected = False
        self._helper: asyncio.Future[FarSide | None] | None = None
        self._legs: dict[str, Leg] = {}  # this attempt's, worked out once each

    async def transfer(self, direction: str, source: str, destination: str) -> Summary:
        """Run the whole transfer; its --json document."""
        began = time.monotonic()
        await self.run()
        summary = self.tally.summary(direction, source, destination)
        summary.seconds = time.monotonic() - began
        summary.retries = self.retries
        summary.verdicts = self.verdicts
        summary.overwrite = self.opts.overwrite
        return summary

    # ------------------------------------------------------------------ retry loop

    async def run(self) -> None:
        """Run :meth:`work` on a fresh connection until it succeeds or the retries run out.

        Only a link that worked once is retried: a first connection refused (a dead pod, a
        wrong port) fails at once, where it used to wait out 16 s of backoff.
        """
        while True:
            try:
                if not self.opts.dry_run and self.may_carry_large():
                    self.lanes.start_first(trusted_host_keys(self.loc, self.creds))
                try:
                    conn = await connect(self.loc, self.creds)
                    self.connected = True
                    self._legs = {}
                    async with conn:
                        self._helper = asyncio.ensure_future(FarSide.launch(conn))
                        try:
                            await self.work(conn)
                        finally:
                            await self._end_helper()
                finally:
                    await self.lanes.end_early()
                return
            except UnreachableError:
                if not self.connected or self.retries >= self.opts.retries:
                    raise
            except BaseException as exc:
                errors = list(flatten(exc))
                fatal = [e for e in errors if not is_drop(e)]
                if fatal:
                    raise actionable(fatal[0], self.loc, self.far_follows) from None
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

    def launching(self) -> asyncio.Future[FarSide | None]:
        """This connection's far-side helper as it starts (its ~/.bashrc runs meanwhile)."""
        assert self._helper is not None
        return self._helper

    async def helper(self) -> FarSide | None:
        """This connection's far-side helper, once started; None where it cannot run."""
        return await asyncio.shield(self.launching())

    def helper_now(self) -> FarSide | None:
        """The helper if it has started already (None if not, or if it cannot run)."""
        launching = self.launching()
        if launching.done() and not launching.cancelled() and launching.exception() is None:
            return launching.result()
        return None

    async def _end_helper(self) -> None:
        launching, self._helper = self._helper, None
        if launching is None:
            return
        if not launching.done():
            launching.cancel()
        with contextlib.suppress(BaseException):
            helper = await launching
            if helper is not None:
                await helper.close()

    def leg_of(self, f: Entry) -> Leg:
        """``f``'s leg, worked out once an attempt: a received file's local path is checked
        then (``safety.local_destination`` resolves every directory on the way)."""
        found = self._legs.get(f.rel)
        if found is None:
            found = self._legs[f.rel] = self.leg(f)
        return found

    @contextlib.asynccontextmanager
    async def planning_channel(
        self, conn: asyncssh.SSHClientConnection
    ) -> AsyncIterator[asyncssh.SFTPClient]:
        """The SFTP channel that plans the transfer; the time it took tells how far the far
        side is (:meth:`.lanes.Lanes.channel_opened`)."""
        began = time.monotonic()
        async with _channel(conn) as sftp:
            self.lanes.channel_opened(time.monotonic() - began, sftp)
            yield sftp

    def start_lane_early(self, conn: asyncssh.SSHClientConnection) -> None:
        """Open the first lane while the checks before the first large file still run.

        Its handshake (~0.15 s) would otherwise come after them.
        """
        self.lanes.start_early(conn, self.sizes_left())

    def sizes_left(self) -> list[int]:
        """The sizes of the files still to move (as this attempt knows them)."""
        return [f.size for f in self.tally.files if not self.tally.results[f.rel].done]

    async def each_file(
        self, conn: asyncssh.SSHClientConnection, planning: asyncssh.SFTPClient
    ) -> None:
        """Move the files not yet done, several at once, one SFTP channel per worker.

        The first worker takes the planning channel, idle by then: a channel opened for it
        would cost three round trips before its first file (0.3 s at 100 ms).
        """
        queue = deque(f for f in self.tally.files if not self.tally.results[f.rel].done)

        async def work_on(sftp: asyncssh.SFTPClient) -> None:
            slot = Slot(sftp)
            try:
                while queue:
                    await self.move_one(conn, slot, queue.popleft())
            except BaseException:
                slot.drop_lane()
                raise
            await slot.close()

        async def worker() -> None:
            if queue:
                async with _channel(conn) as sftp:
                    await work_on(sftp)

        async with asyncio.TaskGroup() as group:
            group.create_task(work_on(planning))
            for _ in range(min(self.opts.files_in_flight, len(queue)) - 1):
                group.create_task(worker())

    # ------------------------------------------------------------------ one file

    async def move_one(self, conn: asyncssh.SSHClientConnection, slot: Slot, f: Entry) -> None:
        """Move one file into its ``.part``, verify it on both sides, give it its name."""
        result = self.tally.start_attempt(f)
        leg = self.leg_of(f)
        try:
            await self.move_leg(conn, slot, leg, result)
        except BaseException as exc:
            left = f.size - result.resumed_from - result.bytes_after_resume
            explained = await explain(exc, slot.sftp, leg, self.far_follows, left)
            if explained is exc:
                raise
            raise explained from exc

    async def move_leg(
        self, conn: asyncssh.SSHClientConnection, slot: Slot, leg: Leg, result: FileResult
    ) -> None:
        """:meth:`move_one`'s steps, for one attempt at ``leg``."""
        f = leg.entry
        parts = self.parts(slot.sftp)
        if f.size >= LANE_MIN:
            lanes = await self.lanes.count(SEND_WINDOW if self.far_follows else WINDOW)
            helper = await self.helper() if lanes > 1 else None
            if helper is not None:
                await self.move_ranged(conn, slot, leg, result, lanes, helper)
                return
        held = await parts.claim(leg)
        start, digest = await self.verified_prefix(conn, slot.sftp, leg, held)
        self.tally.resumed(result, start)

        carrier = await self.lanes.carrier(conn, slot, f.size - start)
        result.carried_by = carrier.name
        far = LateJob(self.launching(), leg.remote, f.size, self.far_follows)
        self.tally.followers[result.path] = far
        try:
            await self.carry(slot, carrier, leg, start, digest, self.moved_from_thread(result))
        except BaseException:
            far.cancel()
            raise
        finally:
            self.tally.followers.pop(result.path, None)

        ours = digest.hexdigest()
        theirs, how, changed = await self.far_view(conn, slot.sftp, far, leg.remote, f.size)
        what = f"the remote {shown(leg.remote)}" if changed else None
        await self.settle(parts, leg, result, (ours, theirs, how), what)

    async def settle(
        self,
        parts: Parts,
        leg: Leg,
        result: FileResult,
        hashes: tuple[str, str, str],
        changed: str | None,
    ) -> None:
        """A moved file's verdict: its ``.part`` gets its name when the hashes (ours, the far
        side's, how it was taken) agree and nothing ``changed`` meanwhile (what, if so); it
        is deleted otherwise, and the file fails."""
        ours, theirs, how = hashes
        refusal = (
            changed_during(leg.entry.rel, changed)
            if changed is not None
            else self.mismatch(leg.entry, ours, theirs)
        )
        if refusal is not None:
            await parts.discard(leg)
            raise refusal
        await parts.place(leg)
        result.sha256, result.verified_by, result.done = ours, how, True

    async def move_ranged(
        self,
        conn: asyncssh.SSHClientConnection,
        slot: Slot,
        leg: Leg,
        result: FileResult,
        lanes: int,
        helper: FarSide,
    ) -> None:
        """:meth:`move_leg` for a far link: the file's ranges over several lanes at once.

        A ``.part`` held already is compared block by block on both sides and only the
        blocks that differ move; the whole file's sha256 on both sides decides, as always,
        each taken while the lanes run (:mod:`.ranged`). Steps that wait a round trip
        overlap where they can: the lanes open while the ``.part`` is claimed and compared.
        """
        f = leg.entry
        parts = self.parts(slot.sftp)
        opening = asyncio.ensure_future(open_lanes(conn, slot.sftp, lanes))
        source_hash: asyncio.Future[Any] | None = None  # the side that stays still
        far: LateJob | None = None  # sending: the far side follows the .part
        ours: Following | None = None  # receiving: we follow the .part
        try:
            held = await parts.claim(leg)
            block = block_size(f.size)
            kept: set[int] = set()
            if held:
                limit = min(held, f.size)
                ours_b, theirs_b = await asyncio.gather(
                    asyncio.to_thread(block_sha256s, leg.local, block, limit),
                    helper.blocks(leg.remote, block, limit),
                )
                if isinstance(theirs_b, list):
                    kept = kept_blocks(ours_b, theirs_b, held, f.size, block)
            kept_bytes = sum(min(f.size, (i + 1) * block) - i * block for i in kept)
            await self.prepare_ranged(slot.sftp, leg, keep=bool(kept))
            self.tally.resumed(result, kept_bytes, "the blocks both sides hash alike")
            loop = asyncio.get_running_loop()
            if self.far_follows:
                source_hash = asyncio.ensure_future(asyncio.to_thread(sized_sha256, leg.local))
                far = following = LateJob(self.launching(), leg.remote, f.size, True)

                def acknowledged(at: int) -> None:
                    loop.call_soon_threadsafe(following.advance, at)

                frontier = Frontier(acknowledged)
            else:
                source_hash = asyncio.ensure_future(self._far_hash(helper, leg.remote))
                ours = Following(leg.local)
                frontier = Frontier(ours.advance)
            for i in sorted(kept):
                frontier.done(i * block, min(f.size, (i + 1) * block) - i * block)
            carriers, extra = await opening
            result.carried_by, result.lanes = "asyncssh", len(carriers)
            done, flush = self._ranged_progress(result, frontier, kept_bytes)
            try:
                await carry_ranged(
                    carriers, chunks(f.size, block, kept), self.ranged_lane(leg), done
                )
            finally:
                for sftp in extra:
                    sftp.exit()
            flush()
            if far is not None:
                (ours_hash, length), (theirs, how, far_changed), _ = await asyncio.gather(
                    source_hash,
                    self.far_view(conn, slot.sftp, far, leg.remote, f.size),
                    self._far_sync(helper, leg.remote),
                )
            else:
                assert ours is not None
                theirs, (ours_hash, length), _ = await asyncio.gather(
                    source_hash, asyncio.to_thread(ours.result), self.sync_ranged(leg)
                )
                how, far_changed = "remote-exec", False
        except BaseException:
            if source_hash is not None:
                source_hash.cancel()
            if far is not None:
                far.cancel()
            if ours is not None:
                await asyncio.to_thread(ours.cancel)
            await close_unclaimed(opening)
            raise
        changed = None
        if far_changed:
            changed = f"the remote {shown(leg.remote)}"
        elif length != f.size:
            changed = shown(str(leg.local))
        await self.settle(parts, leg, result, (ours_hash, theirs, how), changed)

    def _ranged_progress(
        self, result: FileResult, frontier: Frontier, kept: int
    ) -> tuple[Done, Callable[[], None]]:
        """The lanes' ``done`` (from their threads) and the flush of what it still holds.

        Each piece moves the frontier the hashes follow; the tally hears in REPORT_EVERY
        steps, as from a single lane.
        """
        loop = asyncio.get_running_loop()
        lock = threading.Lock()
        pending, total = 0, kept

        def done(offset: int, length: int) -> None:
            nonlocal pending, total
            frontier.done(offset, length)
            with lock:
                pending += length
                total += length
                if pending < REPORT_EVERY:
                    return
                step, pending, reached = pending, 0, total
            loop.call_soon_threadsafe(self.tally.moved, result, step, reached)

        def flush() -> None:
            nonlocal pending
            with lock:
                step, pending, reached = pending, 0, total
            if step:
                self.tally.moved(result, step, reached)

        return done, flush

    async def _far_sync(self, helper: FarSide, path: str) -> None:
        """Put an upload's ``.part`` on the far disk (no hash: a zero-length one)."""
        if self.opts.fsync:
            await self._far_hash(helper, path, sync=True, limit=0)

    async def _far_hash(
        self, helper: FarSide, path: str, sync: bool = False, limit: int = -1
    ) -> str:
        theirs = (await helper.hashes([(path, limit)], sync))[0]
        if isinstance(theirs, OsFailure):
            raise remote_os_failure(theirs, path, "hash")
        return theirs

    async def verified_prefix(
        self, conn: asyncssh.SSHClientConnection, sftp: asyncssh.SFTPClient, leg: Leg, held: int
    ) -> tuple[int, Digest]:
        """Where to start, and our hash so far: the ``held`` bytes if both sides hash alike."""
        if 0 < held <= leg.entry.size:
            prefix = prefix_digest(leg.local, held)
            helper = await self.helper()
            if helper is None:
                theirs: str | OsFailure = (await remote_sha256(conn, sftp, leg.remote, held))[0]
            else:
                theirs = (await helper.hashes([(leg.remote, held)]))[0]
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
                loop.call_soon_threadsafe(self.tally.moved, result, pending, reached)
                pending = 0

        return report

    async def far_view(
        self,
        conn: asyncssh.SSHClientConnection,
        sftp: asyncssh.SFTPClient,
        far: LateJob,
        path: str,
        size: int,
    ) -> tuple[str, str, bool]:
        """The far side's (sha256, how, changed) of ``path``, from ``far`` or a serial check.

        The serial check (no helper: an sftp-only account, or no python3) runs after the
        stream, as it always did, so its verdict covers the whole transfer too. A small
        file is re-read over SFTP rather than hashed by a process started for it alone.
        """
        answer = await far.result()
        if answer is not None:
            return answer[0], "remote-exec", answer[1]
        theirs, how = await remote_sha256(conn, sftp, path, size, exec_ok=size >= PACK_MAX)
        return theirs, how, False

    # ------------------------------------------------------------------ the tree

    def judged(self, verdicts: list[Verdict], where: str) -> dict[str, Verdict]:
        """Act on the survey: refuse what may not be replaced, skip what is there already.

        ``where`` names the destination in a refusal ("on the remote", "in DIR"). Returns
        the verdicts by path; files the same at the destination are done and unchanged.
        """
        refused = refusal(verdicts, where, self.opts.overwrite, self.blocked)
        if refused is not None:
            raise refused
        for v in verdicts:
            if v.entry.kind == "file" and v.action == SAME:
                self.tally.same(v.entry)
        return {v.entry.rel: v for v in verdicts}

    def packable(self, verdicts: dict[str, Verdict]) -> list[Leg]:
        """The files still to move that may travel packed (where the helper runs): small,
        new or replaced, no ``.part``."""
        if self.opts.registered is not None:
            return []
        return [
            self.leg_of(f)
            for f in self.tally.files
            if not self.tally.results[f.rel].done
            and f.size < PACK_MAX
            and verdicts[f.rel].action in (NEW, DIFFERS)
            and not verdicts[f.rel].part
        ]

    # ------------------------------------------------------------------ the directions

    # Whether the far side hashes our writes as they are acknowledged (sending), or the whole
    # source while we read it (receiving): FarHash's two modes.
    far_follows: bool

    def may_carry_large(self) -> bool:
        """Whether a file of ``LANE_MIN`` bytes or more may move (the first lane is opened
        with the connection then); a direction that lists its files only while planning
        says True until then."""
        return any(size >= LANE_MIN for size in self.sizes_left())

    @abc.abstractmethod
    async def work(self, conn: asyncssh.SSHClientConnection) -> None:
        """One attempt at the whole transfer on ``conn``: plan (once), move, finish the tree."""

    @abc.abstractmethod
    def blocked(self, verdict: Verdict) -> DestinationExistsError:
        """The refusal of a directory where a file or link goes, or the reverse."""

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
    async def prepare_ranged(self, sftp: asyncssh.SFTPClient, leg: Leg, keep: bool) -> None:
        """Make the leg's ``.part`` for lanes to write ranges into; cut it unless ``keep``."""

    @abc.abstractmethod
    def ranged_lane(self, leg: Leg) -> Call:
        """What one lane of a ranged file runs on its thread: its share of the leg's ranges."""

    async def sync_ranged(self, leg: Leg) -> None:
        """Put what the lanes wrote to a local ``.part`` on the disk (receiving; when sending
        the far side's hash request syncs it)."""
        if self.opts.fsync:
            await asyncio.to_thread(sync_file, leg.local)

    @abc.abstractmethod
    def mismatch(self, f: Entry, ours: str, theirs: str) -> ChecksumError | None:
        """Why the hashes refuse ``f`` (ours, the far side's), or None when they agree."""
