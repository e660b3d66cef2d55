"""``worldland receive``: a file or directory on the pod into LOCAL_DIR, never outside it.

The pod is not trusted (docs/security.md). Its listing is planned and checked whole before a
byte is written: every name (:mod:`.safety`), names that are not UTF-8 (skipped), special
files (skipped), marks of ours it should not hold (skipped), names listed twice, links that
lead out of the tree, and a file received through another's ``.part``. Then every
destination in LOCAL_DIR is checked, and the directories are made owner-only. The engine
moves each file (:meth:`.engine.Engine.move_one`) into ``NAME.part`` on the renter's disk
(:class:`.localfs.LocalTree`); at the end the links are made and the directories this run
made get the pod's modes, masked by the umask, and times.
"""

from __future__ import annotations

import asyncio
import dataclasses
import os
import posixpath
import stat
from collections.abc import Sequence
from pathlib import Path
from typing import cast

import asyncssh

from worldland_cli.host import Host
from worldland_cli.transfer import packed, pipeline
from worldland_cli.transfer.display import shown
from worldland_cli.transfer.engine import Engine
from worldland_cli.transfer.errors import (
    ChecksumError,
    DestinationExistsError,
    TransferError,
    UnsafePathError,
    checksum_failed,
)
from worldland_cli.transfer.lanes import LANE_MIN, Slot
from worldland_cli.transfer.localfs import (
    SYNC_EVERY,
    Digest,
    LocalTree,
    prepare_ranged,
    writing,
    writing_at,
)
from worldland_cli.transfer.model import (
    SAME,
    Entry,
    Leg,
    Options,
    Registered,
    Skipped,
    Summary,
    Verdict,
)
from worldland_cli.transfer.partmark import MARK_SUFFIX, PART_SUFFIX, PartMark
from worldland_cli.transfer.pipeline import Carrier, Done, Moved, Take
from worldland_cli.transfer.progress import NullProgress, ProgressSink
from worldland_cli.transfer.ranged import Call
from worldland_cli.transfer.safety import (
    check_name,
    check_symlink,
    links_on_disk,
    local_destination,
)
from worldland_cli.transfer.ssh import Credentials
from worldland_cli.transfer.survey import LocalSide, RemoteSide, survey
from worldland_cli.transfer.targets import SshLocation

_LISTINGS_IN_FLIGHT = 32  # directories listed at once over the one SFTP channel


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
    return await engine.transfer("receive", loc.display(), str(dest))


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


def _entry(rel: str, kind: str, attrs: asyncssh.SFTPAttrs, source: str) -> Entry:
    return Entry(
        rel=rel,
        kind=kind,
        size=(attrs.size or 0) if kind == "file" else 0,
        mode=stat.S_IMODE(attrs.permissions or 0o644),
        mtime=float(attrs.mtime or 0),
        atime=float(attrs.atime or attrs.mtime or 0),
        source=source,
    )


class _Downloader(Engine):
    far_follows = False  # the far side hashes the whole source while we read it

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
        self.tree = LocalTree(dest, Host.umask(), opts.overwrite)

    def may_carry_large(self) -> bool:
        """Not known before the listing, but for a code (its registered size); once a first
        attempt listed the tree, from what is left of it."""
        if self.entries is not None:
            return super().may_carry_large()
        registered = self.opts.registered
        return registered is None or registered.size >= LANE_MIN

    async def work(self, conn: asyncssh.SSHClientConnection) -> None:
        async with self.planning_channel(conn) as sftp:
            if self.entries is None:
                entries = await self.plan(sftp)
                self.entries = entries
                self.tally.add_files([e for e in entries if e.kind == "file"])
            todo = [
                e for e in self.entries if e.kind != "file" or not self.tally.results[e.rel].done
            ]
            files = [e for e in todo if e.kind == "file"]
            verdicts = await survey(
                todo,
                lambda e: str(local_destination(self.dest, e.rel, replacing=e.kind != "dir")),
                {f.rel: self.leg_of(f) for f in files},
                LocalSide(),
                RemoteSide(sftp, self.launching()),
            )
            if self.opts.dry_run:
                self.verdicts = verdicts
                return
            judged = self.judged(verdicts, f"in {shown(self.dest)}")
            self.tree.make_root()
            self.tree.make_dirs(self.entries)
            self.start_lane_early(conn)
            packable = self.packable(judged)
            helper = await self.helper() if packable else None
            if helper is not None and packable:
                await packed.receive(
                    helper, packable, self.tree, self.opts.fsync, self.tally.packed_done
                )
            await self.each_file(conn, sftp)
        self.tree.finish([e for e in todo if e.kind == "dir" or judged[e.rel].action != SAME])

    # ------------------------------------------------------------------ the plan

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
        if self.left_out(name, stat.S_ISDIR(mode)):
            return []
        if stat.S_ISREG(mode):
            return [_entry(name, "file", top, root)]
        if not stat.S_ISDIR(mode):  # stat followed a link: this is what it leads to
            raise TransferError(
                f"{shown(root)} is {_kind_of(mode)} on the remote, not a regular file or a "
                "directory; nothing was received",
                "name a regular file or a directory (inside a directory, FIFOs, devices and "
                "sockets are skipped with a note)",
            )
        entries = [_entry(name, "dir", top, root)]
        gate = asyncio.Semaphore(_LISTINGS_IN_FLIGHT)

        async def listing(remote_dir: str) -> Sequence[asyncssh.SFTPName]:
            # Names come as bytes (asyncssh would fail the whole listing on one it cannot
            # decode, and decodes each entry's longname, which we never use, as well).
            async with gate:
                return await sftp.readdir(remote_dir.encode())

        level = [(root, name)]
        while level:  # a level of directories listed at once: a round trip each, not each
            listed = await asyncio.gather(*(listing(remote_dir) for remote_dir, _ in level))
            below: list[tuple[str, str]] = []
            for (remote_dir, rel_dir), names in zip(level, listed, strict=True):
                for item in sorted(names, key=lambda n: cast(bytes, n.filename)):
                    found = await self.listed(sftp, item, remote_dir, rel_dir)
                    if found is not None:
                        entries.append(found)
                        if found.kind == "dir":
                            below.append((found.source, found.rel))
            level = below
        self.check_tree(entries)
        return entries

    async def listed(
        self, sftp: asyncssh.SFTPClient, item: asyncssh.SFTPName, remote_dir: str, rel_dir: str
    ) -> Entry | None:
        """The entry for one listed name, or None when it is left out (and why)."""
        raw = cast(bytes, item.filename)
        if raw in (b".", b".."):
            return None
        mode = item.attrs.permissions or 0
        child = self.decoded(raw, f"{rel_dir}/", stat.S_ISDIR(mode))
        if child is None:
            return None
        rel = f"{rel_dir}/{check_name(child)}"
        path = f"{remote_dir}/{child}"
        if self.left_out(rel, stat.S_ISDIR(mode)):
            return None
        if child.endswith(MARK_SUFFIX):  # never ours to take from a pod
            self.tally.skip(Skipped(rel, "a resume mark of worldland's"))
            return None
        if stat.S_ISDIR(mode):
            return _entry(rel, "dir", item.attrs, path)
        if stat.S_ISREG(mode):
            return _entry(rel, "file", item.attrs, path)
        if stat.S_ISLNK(mode):
            target = await sftp.readlink(path.encode())
            try:
                text = target.decode()
            except UnicodeDecodeError:
                self.tally.skip(Skipped(rel, "a symlink whose target is not valid UTF-8"))
                return None
            return Entry(rel=rel, kind="link", source=path, link_target=text)
        self.tally.skip(Skipped(rel, "not a file, directory or symlink"))
        return None

    def left_out(self, rel: str, is_dir: bool) -> bool:
        """Whether --exclude leaves ``rel`` out (counted)."""
        if self.excludes and self.excludes.excluded(rel, is_dir):
            self.tally.excluded += 1
            return True
        return False

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
            self.tally.skip(Skipped(rel, why, "rename it on the pod"))
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
        return _entry(code.name, "file", attrs, root)

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

    def blocked(self, verdict: Verdict) -> DestinationExistsError:
        target = shown(local_destination(self.dest, verdict.entry.rel, replacing=True))
        if verdict.entry.kind == "dir":
            return DestinationExistsError(
                f"{target} is in the way: the remote has a directory there",
                "move it away, then run the command again",
            )
        what = "a symlink" if verdict.entry.kind == "link" else "a file"
        return DestinationExistsError(
            f"{target} is a directory; the remote has {what} there",
            "move it away, then run the command again",
        )

    # ------------------------------------------------------------------ the engine's hooks

    def leg(self, f: Entry) -> Leg:
        final = local_destination(self.dest, f.rel, replacing=True)
        source = dataclasses.replace(self.loc, path=f.source).display()
        return Leg(
            entry=f,
            local=final.with_name(final.name + PART_SUFFIX),
            remote=f.source,
            final=str(final),
            mark=PartMark(source, f.size, int(f.mtime)),
        )

    def parts(self, sftp: asyncssh.SFTPClient) -> LocalTree:
        return self.tree

    async def carry(
        self, slot: Slot, carrier: Carrier, leg: Leg, start: int, digest: Digest, moved: Moved
    ) -> None:
        sync_every = SYNC_EVERY if self.opts.fsync else 0

        def fetch_and_sync() -> None:
            with writing(leg.local, start, digest, sync_every) as sink:
                pipeline.fetch(
                    carrier,
                    leg.remote,
                    start,
                    leg.entry.size,
                    sink,
                    moved,
                    in_flight=self.opts.requests_in_flight,
                )
                if self.opts.fsync:
                    sink.sync()

        await slot.run(carrier, fetch_and_sync)

    async def prepare_ranged(self, sftp: asyncssh.SFTPClient, leg: Leg, keep: bool) -> None:
        prepare_ranged(leg.local, keep)

    def ranged_lane(self, leg: Leg) -> Call:
        def lane(carrier: Carrier, take: Take, done: Done) -> None:
            with writing_at(leg.local) as write_at:
                pipeline.fetch_ranges(
                    carrier,
                    leg.remote,
                    write_at,
                    take,
                    done,
                    in_flight=self.opts.requests_in_flight,
                )

        return lane

    def mismatch(self, f: Entry, ours: str, theirs: str) -> ChecksumError | None:
        """The pod's hash must agree, and for a code also the hash its sender registered."""
        want = self.opts.registered.sha256 if self.opts.registered is not None else None
        if theirs == ours and want in (None, ours):
            return None
        sent = want if theirs == ours and want else theirs
        return checksum_failed(f.rel, ours, sent, "source")
