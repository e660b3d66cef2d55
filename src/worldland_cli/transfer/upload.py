"""``worldland send``: local files, directories and links into a directory on the pod.

What is sent is planned from the local disk first (:mod:`.sendplan`); the engine then moves
each file (:meth:`.engine.Engine.move_one`) into ``NAME.part`` on the pod, which
:class:`RemoteParts` marks as ours, checks and renames. Before a byte moves, the remote
directories are made and, without --overwrite, every name is checked to be free; after the
files, the tree's links are made and its directories get their modes and times, deepest
first (a directory's mtime changes while files land in it).
"""

from __future__ import annotations

import asyncio
import contextlib
import posixpath
import stat
from pathlib import Path
from typing import cast

import asyncssh

from worldland_cli.transfer import pipeline
from worldland_cli.transfer.display import shown
from worldland_cli.transfer.engine import Engine
from worldland_cli.transfer.errors import (
    ChecksumError,
    DestinationExistsError,
    TransferError,
    not_ours,
)
from worldland_cli.transfer.lanes import Slot
from worldland_cli.transfer.localfs import Digest
from worldland_cli.transfer.model import Entry, Leg, Options, Summary
from worldland_cli.transfer.partmark import MARK_MAX, PART_SUFFIX, PartMark, mark_of
from worldland_cli.transfer.pipeline import Carrier, Moved
from worldland_cli.transfer.progress import NullProgress, ProgressSink
from worldland_cli.transfer.sendplan import plan_send
from worldland_cli.transfer.ssh import Credentials
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
    entries, skipped = plan_send(paths, opts.follow_links)
    engine = _Uploader(loc, creds, opts, progress or NullProgress(), entries)
    for left_out in skipped:
        engine.skip(left_out)
    return await engine.transfer("send", ", ".join(str(p) for p in paths), loc.display())


class _Uploader(Engine):
    far_follows = True  # the far side hashes each write of ours once it is acknowledged

    def __init__(
        self,
        loc: SshLocation,
        creds: Credentials,
        opts: Options,
        progress: ProgressSink,
        entries: list[Entry],
    ) -> None:
        super().__init__(loc, creds, opts, progress)
        self.add_files([e for e in entries if e.kind == "file"])
        self.dirs = [e for e in entries if e.kind == "dir"]
        self.links = [e for e in entries if e.kind == "link"]
        self.linked: set[str] = set()  # links made on the far side (a retry skips them)
        self.checked = False

    def remote(self, rel: str) -> str:
        return posixpath.join(self.loc.path, rel)

    async def work(self, conn: asyncssh.SSHClientConnection) -> None:
        self.start_lane_early(conn)
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
                await self.check_free(sftp)
            self.checked = True
            await self.each_file(conn)
            for link in self.links:
                if link.rel not in self.linked:
                    await self.make_link(sftp, link)
            for d in sorted(self.dirs, key=lambda d: d.rel.count("/"), reverse=True):
                attrs = asyncssh.SFTPAttrs(
                    permissions=d.mode, atime=int(d.atime), mtime=int(d.mtime)
                )
                await sftp.setstat(self.remote(d.rel), attrs)

    async def check_free(self, sftp: asyncssh.SFTPClient) -> None:
        """Refuse before a byte moves when a file's or link's name is taken on the remote."""
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
        return RemoteParts(sftp, self.opts.overwrite)

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

    def mismatch(self, f: Entry, ours: str, theirs: str) -> ChecksumError | None:
        return None if theirs == ours else self.checksum_failed(f, theirs, ours, "sent")


class RemoteParts:
    """The pod as the side that holds ``.part`` files (sending); a leg's ``remote`` is one.

    The remote half of the engine's ``Parts`` protocol (the local one is in ``localfs.py``).
    Its marks are written 0600 and read at most ``MARK_MAX`` bytes: the pod may have put
    anything at a mark's name.
    """

    def __init__(self, sftp: asyncssh.SFTPClient, overwrite: bool) -> None:
        self._sftp = sftp
        self._overwrite = overwrite

    async def claim(self, leg: Leg) -> int:
        """The bytes of the ``.part`` worth checking for a resume, once it is marked ours.

        A ``.part`` with our mark for this very source may be resumed; one with a stale mark
        starts over; one without our mark is someone's own file, refused unless --overwrite.
        The common case, no ``.part`` yet, costs one exclusive create of the mark.
        """
        part = leg.remote
        try:
            held: int | None = (await self._sftp.lstat(part)).size or 0
        except asyncssh.SFTPNoSuchFile:
            held = None
        if held is None:
            try:
                return await self._write_mark(part, leg.mark, "xb")
            except (asyncssh.SFTPFailure, asyncssh.SFTPFileAlreadyExists):
                pass  # a mark without a .part: ours from an earlier run, or someone's file
        found = await self._read_mark(part)
        if found == leg.mark and held:
            return held
        if found is None and not self._overwrite:
            raise not_ours([part if held is not None else mark_of(part)], "on the remote")
        return await self._write_mark(part, leg.mark, "wb")

    async def discard(self, leg: Leg) -> None:
        await self._sftp.remove(leg.remote)
        await self._drop_mark(leg.remote)

    async def place(self, leg: Leg) -> None:
        f = leg.entry
        attrs = asyncssh.SFTPAttrs(permissions=f.mode, atime=int(f.atime), mtime=int(f.mtime))
        await self._sftp.setstat(leg.remote, attrs)
        try:
            if self._overwrite:
                await self._sftp.posix_rename(leg.remote, leg.final)
            else:
                await self._sftp.rename(leg.remote, leg.final)
        except asyncssh.SFTPFailure as e:
            raise DestinationExistsError(
                f"{shown(leg.final)} appeared on the remote during the transfer "
                f"({shown(e.reason)})",
                "pass --overwrite to replace it",
            ) from e
        await self._drop_mark(leg.remote)

    async def _write_mark(self, part: str, mark: PartMark, mode: str) -> int:
        owner_only = asyncssh.SFTPAttrs(permissions=0o600)
        async with self._sftp.open(mark_of(part), mode, owner_only) as f:
            await f.write(mark.encode())
        return 0

    async def _read_mark(self, part: str) -> PartMark | None:
        try:
            async with self._sftp.open(mark_of(part), "rb") as f:
                return PartMark.decode(cast(bytes, await f.read(MARK_MAX + 1)))
        except asyncssh.SFTPNoSuchFile:
            return None

    async def _drop_mark(self, part: str) -> None:
        with contextlib.suppress(asyncssh.SFTPNoSuchFile):
            await self._sftp.remove(mark_of(part))
