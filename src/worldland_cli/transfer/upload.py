"""``worldland send``: local files, directories and links into a directory on the pod.

What is sent is planned from the local disk first (:mod:`.sendplan`, less what --exclude
names) and judged against what the pod holds (:mod:`.survey`): files the same there are
skipped, others refused without --overwrite. Then the remote directories are made, small
files travel packed (:mod:`.packed`), and the engine moves each other file
(:meth:`.engine.Engine.move_one`) into ``NAME.part`` on the pod, which
:class:`.remoteparts.RemoteParts` marks as ours, checks and renames. After the files, the
tree's links are made and its directories get their modes and times (a directory's mtime
changes while files land in it).
"""

from __future__ import annotations

import asyncio
import contextlib
import posixpath
import stat
from pathlib import Path

import asyncssh

from worldland_cli.transfer import packed, pipeline
from worldland_cli.transfer.display import shown
from worldland_cli.transfer.engine import Engine
from worldland_cli.transfer.errors import (
    ChecksumError,
    DestinationExistsError,
    TransferError,
    checksum_failed,
)
from worldland_cli.transfer.failures import remote_os_failure, remote_refusal
from worldland_cli.transfer.farside import FarSide
from worldland_cli.transfer.lanes import Slot
from worldland_cli.transfer.localfs import Digest, reading_at
from worldland_cli.transfer.model import NEW, SAME, Entry, Leg, Options, Summary, Verdict
from worldland_cli.transfer.partmark import PART_SUFFIX, PartMark
from worldland_cli.transfer.pipeline import Carrier, Done, Moved, Take
from worldland_cli.transfer.progress import NullProgress, ProgressSink
from worldland_cli.transfer.ranged import Call
from worldland_cli.transfer.remoteparts import RemoteParts
from worldland_cli.transfer.sendplan import plan_send
from worldland_cli.transfer.ssh import Credentials
from worldland_cli.transfer.survey import LocalSide, RemoteSide, survey
from worldland_cli.transfer.targets import SshLocation


async def upload(
    paths: list[Path],
    loc: SshLocation,
    creds: Credentials,
    opts: Options | None = None,
    progress: ProgressSink | None = None,
) -> Summary:
    """Send local files and directories into the remote directory ``loc.path``."""
    opts = opts or Options()
    engine = _Uploader(loc, creds, opts, progress or NullProgress())
    entries, skipped, engine.tally.excluded = plan_send(paths, opts.follow_links, engine.excludes)
    engine.planned(entries)
    for left_out in skipped:
        engine.tally.skip(left_out)
    return await engine.transfer("send", ", ".join(str(p) for p in paths), loc.display())


class _Uploader(Engine):
    far_follows = True  # the far side hashes each write of ours once it is acknowledged

    def __init__(
        self,
        loc: SshLocation,
        creds: Credentials,
        opts: Options,
        progress: ProgressSink,
    ) -> None:
        super().__init__(loc, creds, opts, progress)
        self.dirs: list[Entry] = []
        self.links: list[Entry] = []
        self.linked: set[str] = set()  # links made on the far side (a retry skips them)

    def planned(self, entries: list[Entry]) -> None:
        self.tally.add_files([e for e in entries if e.kind == "file"])
        self.dirs = [e for e in entries if e.kind == "dir"]
        self.links = [e for e in entries if e.kind == "link"]

    def remote(self, rel: str) -> str:
        return posixpath.join(self.loc.path, rel)

    async def work(self, conn: asyncssh.SSHClientConnection) -> None:
        async with self.planning_channel(conn) as sftp:
            links = [e for e in self.links if e.rel not in self.linked]
            files = [f for f in self.tally.files if not self.tally.results[f.rel].done]
            verdicts = await survey(
                [*self.dirs, *files, *links],
                lambda e: self.remote(e.rel),
                {f.rel: self.leg_of(f) for f in files},
                RemoteSide(sftp, self.launching()),
                LocalSide(),
            )
            if self.opts.dry_run:
                self.verdicts = verdicts
                return
            judged = self.judged(verdicts, "on the remote")
            packable = self.packable(judged)
            helper = await self.helper() if packable else self.helper_now()
            await self.make_dirs(sftp, helper, [v.entry for v in verdicts if v.action == NEW])
            self.start_lane_early(conn)
            if helper is not None and packable:
                await packed.send(helper, packable, self.opts.overwrite, self.tally.packed_done)
            await self.each_file(conn, sftp)
            for link in links:
                if judged[link.rel].action == SAME:
                    self.linked.add(link.rel)
                else:
                    await self.make_link(sftp, link)
            await asyncio.gather(
                *(
                    sftp.setstat(
                        self.remote(d.rel),
                        asyncssh.SFTPAttrs(
                            permissions=d.mode, atime=int(d.atime), mtime=int(d.mtime)
                        ),
                    )
                    for d in self.dirs
                )
            )

    async def make_dirs(
        self, sftp: asyncssh.SFTPClient, helper: FarSide | None, made: list[Entry]
    ) -> None:
        """Make the remote directory and the tree's new directories, parents first.

        The helper makes them all in one round trip; without it, each level's requests are
        in flight together on the SFTP channel.
        """
        paths = [self.loc.path] + [self.remote(e.rel) for e in made if e.kind == "dir"]
        if helper is not None:
            failures = await helper.mkdirs(paths)
            for path, failure in zip(paths, failures, strict=True):
                if failure is not None:
                    raise remote_os_failure(failure, path, "create")
            return
        for depth in sorted({p.count("/") for p in paths}):
            level = [p for p in paths if p.count("/") == depth]
            await asyncio.gather(*(self._makedirs(sftp, p) for p in level))

    async def _makedirs(self, sftp: asyncssh.SFTPClient, path: str) -> None:
        try:
            await sftp.makedirs(path, exist_ok=True)
        except asyncssh.SFTPError as e:
            if isinstance(e, asyncssh.SFTPConnectionLost):
                raise
            raise remote_refusal(e.code, str(e.reason), path, "create", None) from e

    def blocked(self, verdict: Verdict) -> DestinationExistsError:
        path = shown(self.remote(verdict.entry.rel))
        if verdict.entry.kind == "dir":
            return DestinationExistsError(
                f"{path} is in the way on the remote: a directory goes there",
                "move it away on the remote, then send again",
            )
        return DestinationExistsError(
            f"{path} is a directory on the remote; a {verdict.entry.kind} goes there",
            "move it away on the remote, then send again",
        )

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

    # ------------------------------------------------------------------ the engine's hooks

    def leg(self, f: Entry) -> Leg:
        local = Path(f.source)
        final = self.remote(f.rel)
        mark = PartMark(str(local.absolute()), f.size, int(f.mtime))
        return Leg(entry=f, local=local, remote=final + PART_SUFFIX, final=final, mark=mark)

    def parts(self, sftp: asyncssh.SFTPClient) -> RemoteParts:
        return RemoteParts(sftp, self.opts.overwrite, self.helper_now())

    async def carry(
        self, slot: Slot, carrier: Carrier, leg: Leg, start: int, digest: Digest, moved: Moved
    ) -> None:
        sent = await slot.run(
            carrier,
            lambda: pipeline.push(
                carrier,
                leg.local,
                leg.remote,
                start,
                digest,
                moved,
                fsync=self.opts.fsync,
                in_flight=self.opts.requests_in_flight,
            ),
        )
        if sent != leg.entry.size:
            raise TransferError(
                f"{shown(leg.local)} changed size while it was being sent; send it again"
            )

    async def prepare_ranged(self, sftp: asyncssh.SFTPClient, leg: Leg, keep: bool) -> None:
        # The lanes create the .part (0600) as they open it; only a stale one is cut here.
        if not keep:
            with contextlib.suppress(asyncssh.SFTPNoSuchFile):
                await sftp.truncate(leg.remote, 0)

    def ranged_lane(self, leg: Leg) -> Call:
        def lane(carrier: Carrier, take: Take, done: Done) -> None:
            with reading_at(leg.local) as read_at:
                pipeline.push_ranges(
                    carrier, read_at, leg.remote, take, done, in_flight=self.opts.requests_in_flight
                )

        return lane

    def mismatch(self, f: Entry, ours: str, theirs: str) -> ChecksumError | None:
        return None if theirs == ours else checksum_failed(f.rel, theirs, ours, "sent")
