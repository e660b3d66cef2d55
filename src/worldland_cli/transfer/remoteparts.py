"""The pod as the side that holds ``.part`` files when sending: the remote half of ``Parts``.

Apart from ``upload.py`` because the survey of a destination (``survey.py``) reads the same
marks before anything moves, to tell a ``.part`` of ours from someone else's.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
from typing import cast

import asyncssh

from worldland_cli.transfer.display import shown
from worldland_cli.transfer.errors import DestinationExistsError, not_ours
from worldland_cli.transfer.failures import remote_os_failure
from worldland_cli.transfer.farside import FarSide
from worldland_cli.transfer.model import Leg
from worldland_cli.transfer.partmark import MARK_MAX, PartMark, mark_of


class RemoteParts:
    """The pod as the side that holds ``.part`` files (sending); a leg's ``remote`` is one.

    The remote half of the engine's ``Parts`` protocol (the local one is in ``localfs.py``).
    Its marks are written 0600 and read at most ``MARK_MAX`` bytes: the pod may have put
    anything at a mark's name.
    """

    def __init__(
        self, sftp: asyncssh.SFTPClient, overwrite: bool, helper: FarSide | None = None
    ) -> None:
        self._sftp = sftp
        self._overwrite = overwrite
        self._helper = helper  # writes a mark in one round trip where SFTP takes three

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
        found = await self.read_mark(part)
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
        rename = self._sftp.posix_rename if self._overwrite else self._sftp.rename
        # Asked together: the server answers in order, so the .part has its mode and times
        # before it has its name, one round trip sooner (0.1 s at 100 ms).
        modes, renamed = await asyncio.gather(
            self._sftp.setstat(leg.remote, attrs),
            rename(leg.remote, leg.final),
            return_exceptions=True,
        )
        if isinstance(modes, BaseException):
            raise modes
        if isinstance(renamed, asyncssh.SFTPFailure):
            raise DestinationExistsError(
                f"{shown(leg.final)} appeared on the remote during the transfer "
                f"({shown(renamed.reason)})",
                "pass --overwrite to replace it",
            ) from renamed
        if isinstance(renamed, BaseException):
            raise renamed
        await self._drop_mark(leg.remote)

    async def _write_mark(self, part: str, mark: PartMark, mode: str) -> int:
        if self._helper is not None:
            failed = await self._helper.write_small(
                mark_of(part), mark.encode().decode(), exclusive=mode == "xb"
            )
            if failed is not None and failed.errno == errno.EEXIST:
                raise asyncssh.SFTPFileAlreadyExists(failed.text)
            if failed is not None:
                raise remote_os_failure(failed, mark_of(part), "write")
            return 0
        owner_only = asyncssh.SFTPAttrs(permissions=0o600)
        async with self._sftp.open(mark_of(part), mode, owner_only) as f:
            await f.write(mark.encode())
        return 0

    async def read_mark(self, part: str) -> PartMark | None:
        try:
            async with self._sftp.open(mark_of(part), "rb") as f:
                return PartMark.decode(cast(bytes, await f.read(MARK_MAX + 1)))
        except asyncssh.SFTPNoSuchFile:
            return None

    async def _drop_mark(self, part: str) -> None:
        with contextlib.suppress(asyncssh.SFTPNoSuchFile):
            await self._sftp.remove(mark_of(part))
