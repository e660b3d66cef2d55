"""The transfer engine: pipelined, verified, resumable SFTP uploads and downloads.

How a file moves (both directions):

* Data goes to ``NAME.part`` and is renamed to ``NAME`` only after the sha256 computed while
  streaming matches the far side's own hash of what it holds, and the far side saw no change
  to the file during the transfer. A mismatch deletes the ``.part`` and fails; a half-written
  or corrupt file never carries the final name.
* Large files' bytes travel through the OpenSSH client (:mod:`.lane`, C and AES-GCM), the
  rest and every check through asyncssh, whose Python packet work would otherwise bound the
  rate; without ``ssh`` installed, asyncssh carries everything.
* Nothing slow runs after a download's stream: the far side hashes while the data moves
  (:mod:`.farhash`); our own hashing and disk I/O run on a worker thread.
* Requests are pipelined: up to ``requests_in_flight`` reads or writes of the server's maximum
  block size are outstanding on one SFTP channel, and ``files_in_flight`` files move at once,
  each on its own SFTP channel (and lane) of one connection.
* Writes complete in order on one channel, so a ``.part`` is always a clean prefix of the
  source. A later run (or a retry after a dropped link) hashes that prefix on both sides and,
  when the hashes agree, sends only the rest.
* A dropped connection is retried with exponential backoff; finished files stay finished.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import hashlib
import os
import posixpath
import stat
import time
from collections import deque
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import cast

import asyncssh

from worldland_cli.transfer import pipeline
from worldland_cli.transfer.display import shown
from worldland_cli.transfer.errors import (
    HOSTILE_HINT,
    ChecksumError,
    ConnectionDropped,
    DestinationExistsError,
    TransferError,
    UnreachableError,
    UnsafePathError,
    not_ours,
)
from worldland_cli.transfer.farhash import FarHash
from worldland_cli.transfer.lanes import Lanes, Slot
from worldland_cli.transfer.localfs import (
    SYNC_EVERY,
    drop_part,
    finish_dir,
    foreign_part,
    make_dir,
    place_link,
    prefix_digest,
    read_mark,
    write_mark,
    writing,
)
from worldland_cli.transfer.model import Entry, FileResult, Options, Registered, Skipped, Summary
from worldland_cli.transfer.modes import current_umask, received_mode
from worldland_cli.transfer.partmark import (
    MARK_MAX,
    MARK_SUFFIX,
    PART_SUFFIX,
    PartMark,
    mark_of,
)
from worldland_cli.transfer.progress import NullProgress, ProgressSink
from worldland_cli.transfer.safety import (
    check_name,
    check_symlink,
    links_on_disk,
    local_destination,
)
from worldland_cli.transfer.sendplan import plan_send
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


def _kind_of(mode: int) -> str:
    """What a remote st_mode that is not a regular file names, for a refusal."""
    kinds = (
        (stat.S_ISDIR, "a directory"),
        (stat.S_ISLNK, "a symlink"),
        (stat.S_ISFIFO, "a named pipe (FIFO)"),
        (stat.S_ISCHR, "a character device"),
        (stat.S_ISBLK, "a block device"),
        (stat.S_ISSOCK, "a socket"),
    )
    return next((what for test, what in kinds if test(mode)), "not a regular file")


def _flatten(group: BaseException) -> Iterator[BaseException]:
    if isinstance(group, BaseExceptionGroup):
        for inner in group.exceptions:
            yield from _flatten(inner)
    else:
        yield group


class _Engine:
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
        self.results: dict[str, FileResult] = {}
        self.marks: dict[str, int] = {}
        self.retries = 0
        self.lanes = Lanes(loc, creds, progress, opts.openssh)
        self.followers: dict[str, FarHash] = {}  # uploads: far-side hashes told of each ack
        self.skipped: list[Skipped] = []

    # ------------------------------------------------------------------ retry loop

    async def run(self, work: Callable[[asyncssh.SSHClientConnection], Awaitable[None]]) -> None:
        """Run ``work`` on a fresh connection until it succeeds or the retries run out."""
        while True:
            try:
                conn = await connect(self.loc, self.creds)
                async with conn:
                    try:
                        await work(conn)
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

    async def each_file(
        self,
        conn: asyncssh.SSHClientConnection,
        files: list[Entry],
        one: Callable[[asyncssh.SSHClientConnection, Slot, Entry], Awaitable[None]],
    ) -> None:
        """Move the files not yet done, several at once, one SFTP channel per worker."""
        queue = deque(f for f in files if not self.results[f.rel].done)

        async def worker() -> None:
            if not queue:
                return
            async with await conn.start_sftp_client() as sftp:
                slot = Slot(sftp)
                try:
                    while queue:
                        await one(conn, slot, queue.popleft())
                except BaseException:
                    slot.drop_lane()
                    raise
                await slot.close()

        async with asyncio.TaskGroup() as group:
            for _ in range(max(1, min(self.opts.files_in_flight, len(queue)))):
                group.create_task(worker())

    def start_lane_early(self, conn: asyncssh.SSHClientConnection, files: list[Entry]) -> None:
        self.lanes.start_early(conn, [f.size for f in files if not self.results[f.rel].done])

    def moved_from_thread(self, result: FileResult) -> Callable[[int, int], None]:
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

    # ------------------------------------------------------------------ bookkeeping

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

    def checksum_failed(self, entry: Entry, got: str, want: str, where: str) -> ChecksumError:
        return ChecksumError(
            f"{shown(entry.rel)}: checksum mismatch ({where}: {want[:16]}..., received "
            f"{got[:16]}...); the partial file was deleted",
            "the source may have changed during the transfer; run the command again",
        )

    def changed_during(self, entry: Entry, what: str) -> ChecksumError:
        return ChecksumError(
            f"{shown(entry.rel)}: {what} changed during the transfer, so no checksum can vouch for "
            "it; the partial file was deleted",
            "run the command again once nothing else writes to the file",
        )


# ============================================================================ upload


class _Uploader(_Engine):
    def __init__(
        self,
        loc: SshLocation,
        creds: Credentials,
        opts: Options,
        progress: ProgressSink,
        entries: list[Entry],
    ) -> None:
        super().__init__(loc, creds, opts, progress)
        self.entries = entries
        self.files = [e for e in entries if e.kind == "file"]
        self.dirs = [e for e in entries if e.kind == "dir"]
        self.links = [e for e in entries if e.kind == "link"]
        self.linked: set[str] = set()  # links made on the far side (a retry skips them)
        self.checked = False
        for f in self.files:
            self.results[f.rel] = FileResult(path=f.rel, size=f.size)
            progress.add_total(f.size)

    def remote(self, rel: str) -> str:
        return posixpath.join(self.loc.path, rel)

    async def work(self, conn: asyncssh.SSHClientConnection) -> None:
        self.start_lane_early(conn, self.files)
        async with await conn.start_sftp_client() as sftp:
            try:
                await sftp.makedirs(self.loc.path, exist_ok=True)
                for d in self.dirs:
                    await sftp.makedirs(self.remote(d.rel), exist_ok=True)
            except asyncssh.SFTPError as e:
                if isinstance(e, asyncssh.SFTPConnectionLost):
                    raise
                raise TransferError(
                    f"cannot create {shown(self.loc.path)} on the remote: {shown(e.reason)}"
                ) from e
            if not self.checked and not self.opts.overwrite:
                found = await asyncio.gather(
                    *(sftp.exists(self.remote(f.rel)) for f in self.files),
                    *(sftp.lexists(self.remote(e.rel)) for e in self.links),
                )
                named = [*self.files, *self.links]
                taken = [e.rel for e, hit in zip(named, found, strict=True) if hit]
                if taken:
                    raise DestinationExistsError(
                        f"already on the remote: {', '.join(shown(t) for t in taken[:5])}"
                        + (f" and {len(taken) - 5} more" if len(taken) > 5 else ""),
                        "pass --overwrite to replace them",
                    )
            self.checked = True
            await self.each_file(conn, self.files, self.upload_one)
            for link in self.links:
                if link.rel not in self.linked:
                    await self.make_link(sftp, link)
            for d in sorted(self.dirs, key=lambda d: d.rel.count("/"), reverse=True):
                attrs = asyncssh.SFTPAttrs(
                    permissions=d.mode, atime=int(d.atime), mtime=int(d.mtime)
                )
                await sftp.setstat(self.remote(d.rel), attrs)

    async def make_link(self, sftp: asyncssh.SFTPClient, link: Entry) -> None:
        """Recreate a link of the sent tree; with --overwrite it replaces a file or link."""
        path = self.remote(link.rel)
        if self.opts.overwrite:
            with contextlib.suppress(asyncssh.SFTPNoSuchFile):
                if stat.S_ISDIR((await sftp.lstat(path)).permissions or 0):
                    raise DestinationExistsError(
                        f"{shown(path)} is a directory on the remote; a symlink goes there",
                        "move it away on the remote, then send again",
                    )
                await sftp.remove(path)
        try:
            await sftp.symlink(link.link_target, path)
        except asyncssh.SFTPFailure as e:
            raise DestinationExistsError(
                f"{shown(path)} appeared on the remote during the transfer ({shown(e.reason)})",
                "pass --overwrite to replace it",
            ) from e
        self.linked.add(link.rel)

    async def upload_one(self, conn: asyncssh.SSHClientConnection, slot: Slot, f: Entry) -> None:
        sftp = slot.sftp
        result = self.start_attempt(f)
        final = self.remote(f.rel)
        part = final + PART_SUFFIX
        local = Path(f.source)
        start, digest = 0, hashlib.sha256()
        held = await self.claim_part(
            sftp, part, PartMark(str(local.absolute()), f.size, int(f.mtime))
        )
        if 0 < held <= f.size:
            prefix = prefix_digest(local, held)
            theirs, _ = await remote_sha256(conn, sftp, part, held)
            if theirs == prefix.hexdigest():
                start, digest = held, prefix
        self.resumed(result, start)

        carrier = await self.lanes.carrier(conn, slot, f.size - start)
        result.carried_by = carrier.name
        far = await FarHash.follow(conn, part, f.size)
        self.followers[result.path] = far
        moved = self.moved_from_thread(result)
        try:
            sent = await slot.run(
                carrier,
                lambda: pipeline.push(
                    carrier,
                    local,
                    part,
                    start,
                    digest,
                    moved,
                    fsync=self.opts.fsync,
                    in_flight=self.opts.requests_in_flight,
                ),
            )
            if sent != f.size:
                raise TransferError(
                    f"{shown(local)} changed size while it was being sent; send it again"
                )
        except BaseException:
            far.cancel()
            raise
        finally:
            del self.followers[result.path]

        ours = digest.hexdigest()
        theirs, how, changed = await self.far_view(conn, sftp, far, part, f.size)
        if theirs != ours or changed:
            await sftp.remove(part)
            await self.drop_remote_mark(sftp, part)
            if changed:
                raise self.changed_during(f, f"the remote {shown(part)}")
            raise self.checksum_failed(f, theirs, ours, "sent")
        attrs = asyncssh.SFTPAttrs(permissions=f.mode, atime=int(f.atime), mtime=int(f.mtime))
        await sftp.setstat(part, attrs)
        try:
            if self.opts.overwrite:
                await sftp.posix_rename(part, final)
            else:
                await sftp.rename(part, final)
        except asyncssh.SFTPFailure as e:
            raise DestinationExistsError(
                f"{shown(final)} appeared on the remote during the transfer ({shown(e.reason)})",
                "pass --overwrite to replace it",
            ) from e
        await self.drop_remote_mark(sftp, part)
        result.sha256, result.verified_by, result.done = ours, how, True

    async def claim_part(self, sftp: asyncssh.SFTPClient, part: str, mark: PartMark) -> int:
        """The bytes of the remote ``part`` worth checking for a resume, once it is marked ours.

        A ``.part`` with our mark for this very source may be resumed; one with a stale mark
        starts over; one without our mark is someone's own file, refused unless --overwrite.
        The common case, no ``.part`` yet, costs one exclusive create of the mark.
        """
        try:
            held: int | None = (await sftp.lstat(part)).size or 0
        except asyncssh.SFTPNoSuchFile:
            held = None
        if held is None:
            try:
                return await self.write_remote_mark(sftp, part, mark, "xb")
            except (asyncssh.SFTPFailure, asyncssh.SFTPFileAlreadyExists):
                pass  # a mark without a .part: ours from an earlier run, or someone's file
        found = await self.read_remote_mark(sftp, part)
        if found == mark and held:
            return held
        if found is None and not self.opts.overwrite:
            raise not_ours([part if held is not None else mark_of(part)], "on the remote")
        return await self.write_remote_mark(sftp, part, mark, "wb")

    @staticmethod
    async def write_remote_mark(
        sftp: asyncssh.SFTPClient, part: str, mark: PartMark, mode: str
    ) -> int:
        owner_only = asyncssh.SFTPAttrs(permissions=0o600)
        async with sftp.open(mark_of(part), mode, owner_only) as f:
            await f.write(mark.encode())
        return 0

    @staticmethod
    async def read_remote_mark(sftp: asyncssh.SFTPClient, part: str) -> PartMark | None:
        try:
            async with sftp.open(mark_of(part), "rb") as f:
                return PartMark.decode(cast(bytes, await f.read(MARK_MAX + 1)))
        except asyncssh.SFTPNoSuchFile:
            return None

    @staticmethod
    async def drop_remote_mark(sftp: asyncssh.SFTPClient, part: str) -> None:
        with contextlib.suppress(asyncssh.SFTPNoSuchFile):
            await sftp.remove(mark_of(part))


# ============================================================================ download


class _Downloader(_Engine):
    def __init__(
        self,
        loc: SshLocation,
        creds: Credentials,
        opts: Options,
        progress: ProgressSink,
        dest: Path,
    ) -> None:
        super().__init__(loc, creds, opts, progress)
        self.dest = dest
        self.entries: list[Entry] | None = None
        self.umask = current_umask()
        self.created: set[str] = set()  # directories this run made: only they get modes, times

    async def plan(self, sftp: asyncssh.SFTPClient) -> list[Entry]:
        """What the remote path holds, with every name checked before anything is written."""
        root = self.loc.path
        registered = self.opts.registered
        if registered is not None:
            check_name(registered.name)
        try:
            top = await (sftp.stat(root) if registered is None else sftp.lstat(root))
        except asyncssh.SFTPNoSuchFile as e:
            raise TransferError(f"{shown(root)} does not exist on the remote") from e
        if registered is not None:
            return [self.registered_file(root, top, registered)]
        name = check_name(posixpath.basename(root.rstrip("/")))
        mode = top.permissions or 0
        if stat.S_ISREG(mode):
            return [self.entry(name, "file", top, root)]
        if not stat.S_ISDIR(mode):  # stat followed a link: this is what it leads to
            raise TransferError(
                f"{shown(root)} is {_kind_of(mode)} on the remote, not a regular file or a "
                "directory; nothing was received",
                "name a regular file or a directory (inside a directory, FIFOs, devices and "
                "sockets are skipped with a note)",
            )
        entries = [self.entry(name, "dir", top, root)]
        stack = [(root, name)]
        while stack:
            remote_dir, rel_dir = stack.pop()
            # Names come as bytes (asyncssh would fail the whole listing on one it cannot
            # decode, and decodes each entry's longname, which we never use, as well).
            listed = await sftp.readdir(remote_dir.encode())
            for item in sorted(listed, key=lambda n: cast(bytes, n.filename)):
                raw = cast(bytes, item.filename)
                if raw in (b".", b".."):
                    continue
                mode = item.attrs.permissions or 0
                child = self.decoded(raw, f"{rel_dir}/", stat.S_ISDIR(mode))
                if child is None:
                    continue
                rel = f"{rel_dir}/{check_name(child)}"
                path = f"{remote_dir}/{child}"
                if child.endswith(MARK_SUFFIX):  # never ours to take from a pod
                    self.skip(Skipped(rel, "a resume mark of worldland's"))
                    continue
                if stat.S_ISDIR(mode):
                    entries.append(self.entry(rel, "dir", item.attrs, path))
                    stack.append((path, rel))
                elif stat.S_ISREG(mode):
                    entries.append(self.entry(rel, "file", item.attrs, path))
                elif stat.S_ISLNK(mode):
                    target = await sftp.readlink(path.encode())
                    try:
                        text = target.decode()
                    except UnicodeDecodeError:
                        self.skip(Skipped(rel, "a symlink whose target is not valid UTF-8"))
                        continue
                    entries.append(Entry(rel=rel, kind="link", source=path, link_target=text))
                else:
                    self.skip(Skipped(rel, "not a file, directory or symlink"))
        self.check_tree(entries)
        return entries

    def decoded(self, raw: bytes, where: str, is_dir: bool) -> str | None:
        r"""A listed name as text, or None once it is skipped for not being UTF-8.

        SFTP v3 names are bytes, and one that is not UTF-8 cannot be written as it is on
        every renter's disk (macOS and Windows refuse it), while a substitute could collide:
        ``a\xfe`` and ``a\xff`` both decode to ``a\ufffd`` with replacement, a real UTF-8
        name too. So it is skipped, as special files are, and the rest of the tree arrives;
        the note and --json keep its bytes as Python does (``a\udcfe``).
        """
        try:
            return raw.decode()
        except UnicodeDecodeError:
            rel = where + raw.decode(errors="surrogateescape")
            why = (
                "a directory whose name is not valid UTF-8, with all it holds"
                if is_dir
                else "a name that is not valid UTF-8"
            )
            self.skip(Skipped(rel, why, "rename it on the pod"))
            return None

    def registered_file(self, root: str, attrs: asyncssh.SFTPAttrs, code: Registered) -> Entry:
        """The one file a code names, if the pod holds what its sender registered.

        Its sha256 is checked after the download, like the pod's own hash; what can be
        checked before a byte moves is checked here.
        """
        mode = attrs.permissions or 0
        if not stat.S_ISREG(mode):
            raise TransferError(
                f"the code names {shown(root)}, which is {_kind_of(mode)} on the pod; a code "
                "carries one regular file",
                "ask the sender for a new code (`worldland send FILE` inside the pod)",
            )
        if attrs.size != code.size:
            raise TransferError(
                f"{shown(root)} is {attrs.size} bytes on the pod, but its sender registered "
                f"{code.size}; nothing was downloaded",
                "the file changed after it was registered, or the pod is lying; ask the "
                "sender for a new code",
            )
        return self.entry(code.name, "file", attrs, root)

    def check_tree(self, entries: list[Entry]) -> None:
        """Refuse a listing that names a path twice, or a link that leads out of the tree.

        A name listed as a link and again as a directory would have later entries written
        through the link. Links are resolved through the tree as it will be on disk: the
        planned links, and where the plan has nothing, what is already in LOCAL_DIR.
        """
        planned: dict[str, Entry] = {}
        for e in entries:
            if e.rel in planned:
                raise UnsafePathError(f"refusing the listing: the remote named {e.rel!r} twice")
            planned[e.rel] = e
        on_disk = links_on_disk(Path(os.path.realpath(self.dest)))

        def link_at(rel: str) -> str | None:
            if rel in planned:
                return planned[rel].link_target if planned[rel].kind == "link" else None
            return on_disk(rel)

        for e in entries:
            if e.kind == "link":
                check_symlink(e.rel, e.link_target, link_at)
            if e.kind == "file" and e.rel + PART_SUFFIX in planned:
                raise TransferError(
                    f"the remote holds both {e.rel!r} and {e.rel + PART_SUFFIX!r}: the first "
                    "would be received through a file named as the second",
                    "receive them one at a time, into different directories",
                )

    @staticmethod
    def entry(rel: str, kind: str, attrs: asyncssh.SFTPAttrs, source: str) -> Entry:
        return Entry(
            rel=rel,
            kind=kind,
            size=(attrs.size or 0) if kind == "file" else 0,
            mode=stat.S_IMODE(attrs.permissions or 0o644),
            mtime=float(attrs.mtime or 0),
            atime=float(attrs.atime or attrs.mtime or 0),
            source=source,
        )

    def prepare(self, entries: list[Entry]) -> None:
        """Check every destination, then create the directories (owner-only until done).

        A directory that is already here is used as it is: its mode and times stay the
        renter's, whatever the far side announces for it.
        """
        self.dest.mkdir(parents=True, exist_ok=True)
        taken, foreign = [], []
        for e in entries:
            # A file or link replaces the name itself (never what a link there points to),
            # so a link at that name is a name taken like any other.
            target = local_destination(self.dest, e.rel, replacing=e.kind != "dir")
            if e.kind != "dir" and os.path.lexists(target) and not self.opts.overwrite:
                taken.append(e.rel)
            if e.kind == "file" and not self.opts.overwrite and foreign_part(self.part(target)):
                foreign.append(e.rel + PART_SUFFIX)
            if e.kind != "dir" and target.is_dir() and not target.is_symlink():
                what = "a symlink" if e.kind == "link" else "a file"
                raise DestinationExistsError(
                    f"{shown(target)} is a directory; the remote has {what} there",
                    "move it away, then run the command again",
                )
        if taken:
            raise DestinationExistsError(
                f"already in {shown(self.dest)}: {', '.join(shown(t) for t in taken[:5])}"
                + (f" and {len(taken) - 5} more" if len(taken) > 5 else ""),
                "pass --overwrite to replace them",
            )
        if foreign:
            raise not_ours(foreign, f"in {shown(self.dest)}")
        for e in entries:
            if e.kind == "dir" and make_dir(local_destination(self.dest, e.rel)):
                self.created.add(e.rel)
        for e in entries:
            if e.kind == "file":
                self.results[e.rel] = FileResult(path=e.rel, size=e.size)
                self.progress.add_total(e.size)

    async def work(self, conn: asyncssh.SSHClientConnection) -> None:
        if self.entries is None:
            async with await conn.start_sftp_client() as sftp:
                entries = await self.plan(sftp)
            self.prepare(entries)
            self.entries = entries
        files = [e for e in self.entries if e.kind == "file"]
        self.start_lane_early(conn, files)
        await self.each_file(conn, files, self.download_one)
        self.finish_tree(self.entries)

    @staticmethod
    def part(final: Path) -> Path:
        return final.with_name(final.name + PART_SUFFIX)

    def finish_tree(self, entries: list[Entry]) -> None:
        for e in entries:
            if e.kind == "link":
                target = local_destination(self.dest, e.rel, replacing=True)
                place_link(target, e.link_target, self.opts.overwrite)
        for e in sorted(entries, key=lambda e: e.rel.count("/"), reverse=True):
            if e.kind == "dir" and e.rel in self.created:
                target = local_destination(self.dest, e.rel)
                finish_dir(target, received_mode(e.mode, self.umask), e.atime, e.mtime)

    async def download_one(self, conn: asyncssh.SSHClientConnection, slot: Slot, f: Entry) -> None:
        sftp = slot.sftp
        result = self.start_attempt(f)
        final = local_destination(self.dest, f.rel, replacing=True)
        part = self.part(final)
        if part.is_symlink():
            raise TransferError(f"refusing to write through the symlink {shown(part)}")
        if not self.opts.overwrite and foreign_part(part):  # appeared since prepare()
            raise not_ours([f.rel + PART_SUFFIX], f"in {shown(self.dest)}")
        source = dataclasses.replace(self.loc, path=f.source).display()
        mark = PartMark(source, f.size, int(f.mtime))
        start, digest = 0, hashlib.sha256()
        held = part.stat().st_size if part.exists() and read_mark(part) == mark else 0
        if 0 < held <= f.size:
            prefix = prefix_digest(part, held)
            theirs, _ = await remote_sha256(conn, sftp, f.source, held)
            if theirs == prefix.hexdigest():
                start, digest = held, prefix
        if not start:
            write_mark(part, mark)
        self.resumed(result, start)

        carrier = await self.lanes.carrier(conn, slot, f.size - start)
        result.carried_by = carrier.name
        far = await FarHash.start(conn, f.source, f.size)
        moved = self.moved_from_thread(result)
        sync_every = SYNC_EVERY if self.opts.fsync else 0

        def fetch_and_sync() -> None:
            with writing(part, start, digest, sync_every) as sink:
                pipeline.fetch(
                    carrier,
                    f.source,
                    start,
                    f.size,
                    sink,
                    moved,
                    in_flight=self.opts.requests_in_flight,
                )
                if self.opts.fsync:
                    sink.sync()

        try:
            await slot.run(carrier, fetch_and_sync)
        except BaseException:
            far.cancel()
            raise

        ours = digest.hexdigest()
        theirs, how, changed = await self.far_view(conn, sftp, far, f.source, f.size)
        want = self.opts.registered.sha256 if self.opts.registered is not None else None
        if theirs != ours or changed or (want is not None and want != ours):
            drop_part(part)
            if changed:
                raise self.changed_during(f, f"the remote {shown(f.source)}")
            raise self.checksum_failed(
                f, ours, want if theirs == ours and want else theirs, "source"
            )
        os.chmod(part, received_mode(f.mode, self.umask))
        os.utime(part, (f.atime, f.mtime))
        if self.opts.overwrite:
            os.replace(part, final)
        else:
            try:
                os.link(part, final)  # unlike rename, fails if the name appeared meanwhile
            except FileExistsError as e:
                raise DestinationExistsError(
                    f"{shown(final)} appeared during the transfer", "pass --overwrite to replace it"
                ) from e
        drop_part(part)  # the .part (unless it was renamed) and its mark
        result.sha256, result.verified_by, result.done = ours, how, True


# ============================================================================ entry points


async def upload(
    paths: list[Path],
    loc: SshLocation,
    creds: Credentials,
    opts: Options | None = None,
    progress: ProgressSink | None = None,
) -> Summary:
    """Send local files and directories into the remote directory ``loc.path``."""
    opts = opts or Options()
    entries, skipped = plan_send(paths, opts.follow_links)
    engine = _Uploader(loc, creds, opts, progress or NullProgress(), entries)
    for left_out in skipped:
        engine.skip(left_out)
    began = time.monotonic()
    await engine.run(engine.work)
    return Summary(
        direction="send",
        source=", ".join(str(p) for p in paths),
        destination=loc.display(),
        files=[engine.results[f.rel] for f in engine.files],
        seconds=time.monotonic() - began,
        retries=engine.retries,
        skipped=engine.skipped,
    )


async def download(
    loc: SshLocation,
    dest: Path,
    creds: Credentials,
    opts: Options | None = None,
    progress: ProgressSink | None = None,
) -> Summary:
    """Fetch the remote file or directory ``loc.path`` into the local directory ``dest``."""
    opts = opts or Options()
    engine = _Downloader(loc, creds, opts, progress or NullProgress(), dest)
    began = time.monotonic()
    await engine.run(engine.work)
    files = [e for e in engine.entries or [] if e.kind == "file"]
    return Summary(
        direction="receive",
        source=loc.display(),
        destination=str(dest),
        files=[engine.results[f.rel] for f in files],
        seconds=time.monotonic() - began,
        retries=engine.retries,
        skipped=engine.skipped,
    )
