"""Before anything moves: what the destination holds at each name, and what to do about it.

Running the same command again resumes a tree, as rsync does: each planned entry is judged
against its destination (:func:`judge`) as one of :mod:`.model`'s verdicts. A file already
there with the same size and sha256 is skipped (``same``; its sha256 is taken on both sides,
the far side's in one batch); a ``.part`` of ours resumes from its verified prefix
(``partial``); anything else at the name is ``differs``, refused without --overwrite and
listed by name. A ``NAME.part`` someone else wrote is ``foreign``, and a directory where a
file or link goes (or the reverse) is ``blocked``, refused either way. ``--dry-run`` prints
the verdicts and moves nothing.

Both directions judge the same way; only where things are differs: a :class:`Side` is the
pod (:class:`RemoteSide`: the far-side helper, or SFTP where it cannot run) or this computer
(:class:`LocalSide`). The destination is asked what it holds at every name (and at its
``.part`` and mark) in one batch; only files of the same size are hashed, on both sides at
once.
"""

from __future__ import annotations

import asyncio
import dataclasses
import os
import stat
from collections.abc import Callable
from pathlib import Path
from typing import Protocol

import asyncssh

from worldland_cli.transfer.display import shown
from worldland_cli.transfer.errors import DestinationExistsError, TransferError, not_ours
from worldland_cli.transfer.farreplies import OsFailure, Stat
from worldland_cli.transfer.farside import FarSide
from worldland_cli.transfer.localfs import file_sha256, read_mark
from worldland_cli.transfer.model import (
    BLOCKED,
    DIFFERS,
    FOREIGN,
    NEW,
    PARTIAL,
    SAME,
    Entry,
    Leg,
    Verdict,
)
from worldland_cli.transfer.partmark import PART_SUFFIX, PartMark, mark_of
from worldland_cli.transfer.remoteparts import RemoteParts
from worldland_cli.transfer.ssh import reread_sha256

# What a NAME.part beside a file's destination is.
NO_PART, OURS, STALE, NOT_OURS = "none", "ours", "stale", "not ours"
# SFTP requests in flight at once where the helper cannot run.
_SFTP_IN_FLIGHT = 64
# Paths asked over SFTP rather than waiting for a helper still starting.
_FEW = 64


def _what(there: Stat) -> str:
    return {"file": "a file", "dir": "a directory", "link": "a symlink"}.get(
        there.kind, "something that is not a file, directory or symlink"
    )


def judge(entry: Entry, there: Stat | None, part: str, same_bytes: bool | None) -> Verdict:
    """The verdict for ``entry`` given what its destination holds (see the module docstring).

    ``part``: what its ``NAME.part`` is (files only); ``same_bytes``: whether a file of the
    same size there has the same sha256 (None when not hashed).
    """
    if entry.kind == "dir":
        if there is None or there.kind == "dir":
            return Verdict(entry, NEW if there is None else SAME, "a directory")
        return Verdict(entry, BLOCKED, f"{_what(there)} is where the directory goes")
    if there is not None and there.kind == "dir":
        return Verdict(entry, BLOCKED, f"a directory is where the {entry.kind} goes")
    if entry.kind == "link":
        if there is None:
            return Verdict(entry, NEW, "new")
        if there.kind == "link" and there.link_target == entry.link_target:
            return Verdict(entry, SAME, "the same symlink")
        return Verdict(entry, DIFFERS, f"{_what(there)} of other content is there")
    if part == NOT_OURS:
        return Verdict(entry, FOREIGN, f"a {PART_SUFFIX} there was not written by worldland")
    if there is None:
        if part == OURS:
            return Verdict(entry, PARTIAL, "a .part of an earlier run: resumes from its prefix")
        return Verdict(
            entry, NEW, "new (a stale .part of ours starts over)" if part == STALE else "new"
        )
    if there.kind != "file":
        return Verdict(entry, DIFFERS, f"{_what(there)} is there")
    if there.size != entry.size:
        return Verdict(entry, DIFFERS, f"{there.size} bytes there, {entry.size} in the source")
    if same_bytes:
        return Verdict(entry, SAME, "the same size and sha256")
    return Verdict(entry, DIFFERS, "the same size, another sha256")


class Side(Protocol):
    """Where one side of a transfer is: asked in batches."""

    async def lstat(self, paths: list[str]) -> list[Stat | None]:
        """What is at each path (None: nothing)."""

    async def part(self, part: str, mark: PartMark) -> str:
        """What the ``.part`` at ``part`` is: OURS, STALE or NOT_OURS (it or its mark exists)."""

    async def hashes(self, files: list[tuple[str, int]]) -> list[str | None]:
        """The sha256 of each regular file of this size (None: it could not be read)."""


class RemoteSide:
    """The pod: its helper in one round trip, or SFTP requests in flight together.

    A few paths are asked over SFTP while the helper is still starting (its ~/.bashrc may
    take a while, and a single file should not wait on it); many wait for the helper.
    """

    def __init__(
        self, sftp: asyncssh.SFTPClient, launching: asyncio.Future[FarSide | None]
    ) -> None:
        self._sftp = sftp
        self._launching = launching
        self._gate = asyncio.Semaphore(_SFTP_IN_FLIGHT)

    async def _helper(self, wait: bool) -> FarSide | None:
        if wait or self._launching.done():
            return await asyncio.shield(self._launching)
        return None

    async def lstat(self, paths: list[str]) -> list[Stat | None]:
        helper = await self._helper(wait=len(paths) > _FEW)
        if helper is not None:
            found = await helper.stat(paths)
            return [None if isinstance(s, OsFailure) else s for s in found]
        return list(await asyncio.gather(*(self._sftp_lstat(p) for p in paths)))

    async def _sftp_lstat(self, path: str) -> Stat | None:
        async with self._gate:
            try:
                attrs = await self._sftp.lstat(path)
            except asyncssh.SFTPNoSuchFile:
                return None
            mode = attrs.permissions or 0
            kind = next(
                (k for test, k in _KINDS if test(mode)),
                "other",
            )
            target = await self._sftp.readlink(path) if kind == "link" else ""
            return Stat(kind, attrs.size or 0, stat.S_IMODE(mode), float(attrs.mtime or 0), target)

    async def part(self, part: str, mark: PartMark) -> str:
        found = await RemoteParts(self._sftp, False).read_mark(part)
        return NOT_OURS if found is None else OURS if found == mark else STALE

    async def hashes(self, files: list[tuple[str, int]]) -> list[str | None]:
        helper = await self._helper(wait=True)
        if helper is not None:
            found = await helper.hashes([(p, -1) for p, _ in files])
            return [None if isinstance(h, OsFailure) else h for h in found]
        return list(await asyncio.gather(*(self._reread(p, n) for p, n in files)))

    async def _reread(self, path: str, size: int) -> str | None:
        async with self._gate:
            try:
                return await reread_sha256(self._sftp, path, size)
            except TransferError:
                return None


_KINDS: tuple[tuple[Callable[[int], bool], str], ...] = (
    (stat.S_ISREG, "file"),
    (stat.S_ISDIR, "dir"),
    (stat.S_ISLNK, "link"),
)


class LocalSide:
    """This computer: paths here are checked destinations (``safety.local_destination``)."""

    async def lstat(self, paths: list[str]) -> list[Stat | None]:
        return [_local_lstat(p) for p in paths]

    async def part(self, part: str, mark: PartMark) -> str:
        found = read_mark(Path(part))
        return NOT_OURS if found is None else OURS if found == mark else STALE

    async def hashes(self, files: list[tuple[str, int]]) -> list[str | None]:
        return await asyncio.to_thread(lambda: [_local_hash(p) for p, _ in files])


def _local_lstat(path: str) -> Stat | None:
    try:
        st = os.lstat(path)
    except (FileNotFoundError, NotADirectoryError):
        return None
    kind = next((k for test, k in _KINDS if test(st.st_mode)), "other")
    target = os.readlink(path) if kind == "link" else ""
    return Stat(kind, st.st_size, stat.S_IMODE(st.st_mode), st.st_mtime, target)


def _local_hash(path: str) -> str | None:
    try:
        return file_sha256(Path(path))
    except OSError:
        return None


async def survey(
    entries: list[Entry],
    destination: Callable[[Entry], str],
    legs: dict[str, Leg],
    where: Side,
    source: Side,
) -> list[Verdict]:
    """Judge every entry against what ``where`` (the destination side) holds.

    ``destination(e)`` is a directory's or link's final path on that side; ``legs`` has each
    file's leg (its final path, ``.part`` and mark); ``source`` hashes the sources of files
    of the same size.
    """
    finals = [legs[e.rel].final if e.kind == "file" else destination(e) for e in entries]
    files = [e for e in entries if e.kind == "file"]
    parts = [legs[e.rel].final + PART_SUFFIX for e in files]
    asked = finals + parts + [mark_of(p) for p in parts]
    found = await where.lstat(asked)
    there = dict(zip((e.rel for e in entries), found[: len(entries)], strict=True))
    held = found[len(entries) :]
    part_state: dict[str, str] = {}
    for i, e in enumerate(files):
        if held[i] is not None or held[len(files) + i] is not None:
            part_state[e.rel] = await where.part(parts[i], legs[e.rel].mark)
    alike = [
        (e, final)
        for e, final in zip(entries, finals, strict=True)
        if e.kind == "file"
        and part_state.get(e.rel) != NOT_OURS
        and (t := there[e.rel]) is not None
        and t.kind == "file"
        and t.size == e.size
    ]
    theirs: list[str | None] = []
    ours: list[str | None] = []
    if alike:  # the usual first run has nothing to hash: no round trip for it
        theirs, ours = await asyncio.gather(
            where.hashes([(final, e.size) for e, final in alike]),
            source.hashes([(e.source, e.size) for e, _ in alike]),
        )
    same = {
        e.rel: a is not None and a == b for (e, _), a, b in zip(alike, theirs, ours, strict=True)
    }
    verdicts = []
    for e in entries:
        part = part_state.get(e.rel, NO_PART)
        verdict = judge(e, there[e.rel], part, same.get(e.rel))
        verdicts.append(verdict if part == NO_PART else dataclasses.replace(verdict, part=part))
    return verdicts


def refusal(
    verdicts: list[Verdict],
    where: str,
    overwrite: bool,
    blocked: Callable[[Verdict], DestinationExistsError],
) -> DestinationExistsError | None:
    """Why a real run refuses to start (every name listed, up to five), or None.

    ``where`` names the destination ("on the remote", "in DIR"); ``blocked`` words the
    refusal of a directory where a file goes, or the reverse, for its direction.
    """
    stuck = [v for v in verdicts if v.action == BLOCKED]
    if stuck:
        return blocked(stuck[0])
    if overwrite:
        return None
    foreign = [v.entry.rel + PART_SUFFIX for v in verdicts if v.action == FOREIGN]
    if foreign:
        return not_ours(foreign, where)
    taken = [shown(v.entry.rel) for v in verdicts if v.action == DIFFERS]
    if not taken:
        return None
    return DestinationExistsError(
        f"already {where} with other content: {', '.join(taken[:5])}"
        + (f" and {len(taken) - 5} more" if len(taken) > 5 else ""),
        "pass --overwrite to replace them",
    )
