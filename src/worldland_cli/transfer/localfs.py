"""All local file I/O of user data: what a transfer reads, writes, renames and removes here.

The only module besides ``host.py`` that opens files (CONTRIBUTING.md): ``host.py`` for the
system's and our own (settings, keys, temp dirs), this one for the renter's: the sources we
send, the ``.part`` files we receive into and their marks, the final names, the received
links and directories, and a file offered for a code. So one page says everything a
transfer may do to the renter's disk, and it is the local half of the data path, as
asyncssh's ``LocalFS`` is beside its SFTP client. Reads of metadata that decide what to send
or whether a name is safe (``sendplan.py``'s listing, ``safety.py``'s link checks) stay with
their rules; they never open a file.

Received names are checked before they get here (``safety.local_destination``). A ``.part``
that is a link is refused before it is read, a ``.part`` and its mark are opened without
following links (``O_NOFOLLOW``), and a final name is taken by a rename or a hard link onto
it, never written through.
"""

from __future__ import annotations

import contextlib
import ctypes
import hashlib
import os
import secrets
import stat
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, BinaryIO

from worldland_cli.transfer.display import shown
from worldland_cli.transfer.errors import DestinationExistsError, TransferError, not_ours
from worldland_cli.transfer.model import Entry, Leg
from worldland_cli.transfer.modes import received_mode
from worldland_cli.transfer.partmark import MARK_MAX, PART_SUFFIX, PartMark, mark_of
from worldland_cli.transfer.safety import local_destination

_PREFIX_READ = 1 << 20
# Received data is handed to the disk's writeback every this many bytes while streaming
# (posix_fadvise DONTNEED starts writeback without waiting), so the fsync before the rename
# finds little left to write and the page cache does not swell: receive 290 -> 490 MB/s
# against an fdatasync every 64 MiB, with less kernel CPU (docs/transfer.md).
SYNC_EVERY = 32 << 20

Digest = Any  # a hashlib sha256 object: hashlib exposes no type for it


# ---------------------------------------------------------------------------- reading


def _hash_into(f: BinaryIO, length: int, digest: Digest) -> int:
    """Hash the next ``length`` bytes of ``f`` into ``digest``; how many there were (fewer
    at the end of the file)."""
    left = length
    while left > 0:
        block = f.read(min(_PREFIX_READ, left))
        if not block:
            break
        digest.update(block)
        left -= len(block)
    return length - left


def prefix_digest(path: Path, length: int) -> Digest:
    """The sha256 of the first ``length`` bytes of ``path``, ready to take the rest."""
    digest = hashlib.sha256()
    with path.open("rb") as f:
        _hash_into(f, length, digest)
    return digest


@contextlib.contextmanager
def reading(path: Path, start: int, digest: Digest) -> Iterator[Callable[[memoryview], int]]:
    """A reader of ``path`` from ``start``: it fills a buffer, hashes it, says how much (0: end)."""
    with path.open("rb", buffering=0) as source:
        source.seek(start)

        def read_and_hash(view: memoryview) -> int:
            n: int = source.readinto(view) or 0
            digest.update(view[:n])
            return n

        yield read_and_hash


def block_sha256s(path: Path, size: int, limit: int) -> list[str]:
    """sha256 of each ``size``-byte block of ``path``'s first ``limit`` bytes (fewer where the
    file is shorter): what a resume of a file that several lanes wrote compares."""
    found: list[str] = []
    with path.open("rb") as f:
        while len(found) * size < limit:
            want = min(size, limit - len(found) * size)
            digest = hashlib.sha256()
            if _hash_into(f, want, digest) < want:
                break
            found.append(digest.hexdigest())
    return found


def sized_sha256(path: Path) -> tuple[str, int]:
    """The sha256 of a whole file and the bytes it held as it was read."""
    with path.open("rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest(), f.tell()


def file_sha256(path: Path) -> str:
    """The sha256 of a whole file (a source, or a destination judged before a rerun)."""
    return sized_sha256(path)[0]


def read_small(path: Path, size: int) -> bytes:
    """A small source whole, for a packed batch; refused if it is no longer ``size`` bytes."""
    with path.open("rb") as f:
        data = f.read(size + 1)
    if len(data) != size:
        raise TransferError(f"{shown(path)} changed size while it was being sent; send it again")
    return data


def offered_digest(path: Path) -> tuple[int, str] | None:
    """Size and sha256 of one regular file from the same open handle; None if not one.

    Raises what ``open`` raises (a directory, a missing file, no permission).
    """
    with path.open("rb") as f:
        info = os.fstat(f.fileno())
        if not stat.S_ISREG(info.st_mode):
            return None
        return info.st_size, hashlib.file_digest(f, "sha256").hexdigest()


# ---------------------------------------------------------------------------- writing


class Sink:
    """Writes and hashes received data in order, handing it to writeback as it goes."""

    def __init__(self, fd: int, digest: Digest, offset: int, sync_every: int) -> None:
        self._fd = fd
        self._digest = digest
        self._offset = offset
        self._sync_every = sync_every  # 0: never (fsync turned off)
        self._unsynced_from = offset

    def write(self, data: memoryview) -> None:
        view = data
        while view:
            view = view[os.pwrite(self._fd, view, self._offset + len(data) - len(view)) :]
        self._digest.update(data)
        self._offset += len(data)
        if self._sync_every and self._offset - self._unsynced_from >= self._sync_every:
            length = self._offset - self._unsynced_from
            os.posix_fadvise(self._fd, self._unsynced_from, length, os.POSIX_FADV_DONTNEED)
            self._unsynced_from = self._offset

    def sync(self) -> None:
        os.fdatasync(self._fd)
        self._unsynced_from = self._offset


@contextlib.contextmanager
def writing(part: Path, start: int, digest: Digest, sync_every: int) -> Iterator[Sink]:
    """A :class:`Sink` into ``part`` from ``start`` (cut there), never through a link."""
    fd = os.open(part, os.O_WRONLY | os.O_CREAT | os.O_NOFOLLOW, 0o600)
    with os.fdopen(fd, "wb", buffering=0) as out:
        out.truncate(start)
        yield Sink(fd, digest, start, sync_every)


def prepare_ranged(part: Path, keep: bool) -> None:
    """Create ``part`` for lanes to write ranges into (0600, never through a link); cut to
    nothing unless ``keep`` (a resume: its blocks are compared, and the good ones kept)."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_NOFOLLOW | (0 if keep else os.O_TRUNC)
    os.close(os.open(part, flags, 0o600))


@contextlib.contextmanager
def reading_at(path: Path) -> Iterator[Callable[[int, int], bytes]]:
    """``read_at(offset, length)`` on a source that lanes send in ranges; a short read is a
    source that shrank."""
    with path.open("rb", buffering=0) as source:
        fd = source.fileno()

        def read_at(offset: int, length: int) -> bytes:
            data = os.pread(fd, length, offset)
            if len(data) != length:
                raise TransferError(
                    f"{shown(path)} changed size while it was being sent; send it again"
                )
            return data

        yield read_at


@contextlib.contextmanager
def writing_at(part: Path) -> Iterator[Callable[[int, memoryview], None]]:
    """``write_at(offset, data)`` into a ``.part`` made by :func:`prepare_ranged`, for lanes
    that receive ranges of it; never through a link, nothing cut."""
    fd = os.open(part, os.O_WRONLY | os.O_NOFOLLOW)
    try:

        def write_at(offset: int, data: memoryview) -> None:
            while data:
                n = os.pwrite(fd, data, offset)
                data, offset = data[n:], offset + n

        yield write_at
    finally:
        os.close(fd)


class Following:
    """Our sha256 of a ``.part`` that lanes fill out of order, taken as its complete prefix
    grows (:meth:`advance`), on a thread of its own: the hash is ready a moment after the
    last byte, where a pass after the transfer would cost a second (at 1 GiB) more."""

    def __init__(self, part: Path) -> None:
        self._fd = os.open(part, os.O_RDONLY | os.O_NOFOLLOW)
        self._digest = hashlib.sha256()
        self._hashed = 0
        self._limit = 0
        self._ended = False
        self._error: BaseException | None = None
        self._moved = threading.Condition()
        self._thread = threading.Thread(target=self._run, name="worldland-follow", daemon=True)
        self._thread.start()

    def advance(self, limit: int) -> None:
        """Every byte below ``limit`` is written (from any thread)."""
        with self._moved:
            self._limit = max(self._limit, limit)
            self._moved.notify()

    def result(self) -> tuple[str, int]:
        """The sha256 of the whole prefix given, and its length (blocks until hashed)."""
        self._end(cancel=False)
        if self._error is not None:
            raise self._error
        return self._digest.hexdigest(), self._hashed

    def cancel(self) -> None:
        """Stop hashing (the transfer failed) and let go of the file."""
        self._end(cancel=True)

    def _end(self, cancel: bool) -> None:
        with self._moved:
            self._ended = True
            if cancel:
                self._limit = 0
            self._moved.notify()
        self._thread.join()
        with contextlib.suppress(OSError):
            os.close(self._fd)

    def _run(self) -> None:
        try:
            while True:
                with self._moved:
                    while self._hashed >= self._limit and not self._ended:
                        self._moved.wait()
                    limit, ended = self._limit, self._ended
                while self._hashed < limit:
                    data = os.pread(self._fd, min(_PREFIX_READ, limit - self._hashed), self._hashed)
                    if not data:
                        return
                    self._digest.update(data)
                    self._hashed += len(data)
                if ended and self._hashed >= self._limit:
                    return
        except BaseException as e:  # handed to result()
            self._error = e


def sync_file(part: Path) -> None:
    """Put what the lanes wrote to ``part`` on the disk before it gets its name."""
    fd = os.open(part, os.O_WRONLY | os.O_NOFOLLOW)
    try:
        os.fdatasync(fd)
    finally:
        os.close(fd)


# ---------------------------------------------------------------------------- .part files


def read_mark(part: Path) -> PartMark | None:
    """The mark beside a local ``.part``; None when there is none or it is not ours."""
    try:  # never through a link, and never waiting on a FIFO someone named so
        fd = os.open(mark_of(str(part)), os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError:
        return None
    with os.fdopen(fd, "rb") as f:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return None
        return PartMark.decode(f.read(MARK_MAX + 1))


def foreign_part(part: Path) -> bool:
    """A ``.part`` (or a file named as its mark) is here, and we did not write it."""
    there = os.path.lexists(part) or os.path.lexists(mark_of(str(part)))
    return there and read_mark(part) is None


def _write_mark(part: Path, mark: PartMark) -> None:
    """Mark ``part`` as ours (before its first byte is written), replacing a stale mark."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW
    with os.fdopen(os.open(mark_of(str(part)), flags, 0o600), "wb") as f:
        f.write(mark.encode())


def _drop_part(part: Path) -> None:
    """Delete ``part`` and its mark (a failed check, or a file that got its final name)."""
    for path in (part, Path(mark_of(str(part)))):
        path.unlink(missing_ok=True)


# ---------------------------------------------------------------------------- staging

STAGING_SUFFIX = ".worldland-tmp"


def staging_name(final: Path) -> Path:
    """Where a small file is written before it gets ``final``: hidden, beside it, unique.

    Small files arrive whole, in packed batches, so they need no ``.part`` to resume from
    (and no mark): each is written under this name (created exclusively, never through a
    link), verified, synced with its batch and renamed. One left by a killed process can
    be deleted; our own code removes them when a batch fails or is interrupted.
    """
    return final.with_name(f".{final.name[:40]}.{secrets.token_hex(6)}{STAGING_SUFFIX}")


def _syncfs() -> Callable[[int], int] | None:
    """Linux's syncfs(2): one call makes a whole batch durable, where an fsync per file of
    2,000 small ones cost seconds. None elsewhere: then each file is fsynced."""
    try:
        call: Callable[[int], int] = ctypes.CDLL(None, use_errno=True).syncfs
    except (OSError, AttributeError, TypeError):  # no syncfs (macOS), no libc by that name
        return None
    return call


_SYNCFS = _syncfs()


def _sync_dirs(directories: set[Path]) -> None:
    """Make what was written under these directories durable: one syncfs per file system."""
    assert _SYNCFS is not None
    devices: set[int] = set()
    for directory in directories:
        fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
        try:
            device = os.fstat(fd).st_dev
            if device not in devices and _SYNCFS(fd) != 0:
                number = ctypes.get_errno()
                raise OSError(number, os.strerror(number), str(directory))
            devices.add(device)
        finally:
            os.close(fd)


# ---------------------------------------------------------------------------- LOCAL_DIR


def _appeared(name: Path | str) -> DestinationExistsError:
    return DestinationExistsError(
        f"{shown(name)} appeared during the transfer", "pass --overwrite to replace it"
    )


class LocalTree:
    """LOCAL_DIR as a receive writes it: directories, links, and the files' ``.part`` files.

    The local half of the engine's ``Parts`` protocol (the pod's is ``upload.RemoteParts``):
    a leg's ``local`` is its ``.part`` and ``final`` the name it gets. Names reach it checked
    (``safety.local_destination``); the modes it gives are the pod's, masked by ``umask``.
    """

    def __init__(self, dest: Path, umask: int, overwrite: bool) -> None:
        self._dest = dest
        self._umask = umask
        self._overwrite = overwrite
        self._created: set[str] = set()  # directories this run made: only they get modes, times

    def make_root(self) -> None:
        self._dest.mkdir(parents=True, exist_ok=True)

    def make_dirs(self, entries: list[Entry]) -> None:
        """Create the received directories, owner-only until the transfer is done.

        A directory that is here already is used as it is: its mode and times stay the
        renter's, whatever the far side announces for it. Anything else at its name is in
        the way.
        """
        for e in entries:
            if e.kind != "dir":
                continue
            target = local_destination(self._dest, e.rel)
            try:
                target.mkdir(mode=0o700)
            except FileExistsError:
                if not target.is_dir():
                    raise DestinationExistsError(
                        f"{shown(target)} is in the way: the remote has a directory there",
                        "move it away, then run the command again",
                    ) from None
                continue
            self._created.add(e.rel)

    def finish(self, entries: list[Entry]) -> None:
        """Make the links, then give the directories this run made their modes and times.

        Deepest first: a directory's mtime changes while what it holds is put in place.
        """
        for e in entries:
            if e.kind == "link":
                self._place_link(local_destination(self._dest, e.rel, replacing=True), e)
        for e in sorted(entries, key=lambda e: e.rel.count("/"), reverse=True):
            if e.kind == "dir" and e.rel in self._created:
                target = local_destination(self._dest, e.rel)
                target.chmod(received_mode(e.mode, self._umask))
                os.utime(target, (e.atime, e.mtime))

    def _place_link(self, target: Path, link: Entry) -> None:
        """Make a received (and checked) symlink; with --overwrite it replaces the name.

        It is made under a temporary name beside its own and renamed onto the name, which
        replaces a file or an older link there itself, never what that link points to, and
        leaves no moment without one. Without --overwrite a name taken since the checks is
        left as it is.
        """
        if not self._overwrite:
            try:
                os.symlink(link.link_target, target)
            except FileExistsError as e:
                raise DestinationExistsError(
                    f"{shown(target)} appeared during the transfer",
                    "pass --overwrite to replace it",
                ) from e
            return
        fresh = target.with_name(f".{target.name}.worldland-{secrets.token_hex(8)}")
        os.symlink(link.link_target, fresh)
        try:
            os.replace(fresh, target)
        except OSError as e:
            fresh.unlink()
            raise DestinationExistsError(
                f"cannot put the symlink {shown(target)} in place: {shown(e.strerror)}",
                "move what is there away, then run the command again",
            ) from e

    def receive_small(self, files: list[tuple[Leg, bytes, str]], fsync: bool) -> None:
        """Put a packed batch of small files (leg, bytes, their sha256) under their names.

        Each is written to its staging name, the batch is made durable (one syncfs, or an
        fsync each), then each gets its mode, times and name. A name taken since the survey
        counts as done when it holds these very bytes (a retry after a lost answer), and is
        refused otherwise. Staging files are removed whatever happens.
        """
        staged: list[tuple[Leg, Path, str]] = []
        try:
            for leg, data, sha in files:
                path = staging_name(Path(leg.final))
                flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW
                try:
                    with os.fdopen(os.open(path, flags, 0o600), "wb") as out:
                        staged.append((leg, path, sha))
                        out.write(data)
                        if fsync and _SYNCFS is None:
                            os.fsync(out.fileno())
                except OSError as e:  # named for the file it was to be, not its staging name
                    raise OSError(e.errno, e.strerror, leg.final) from e
            if fsync and _SYNCFS is not None:
                _sync_dirs({path.parent for _, path, _ in staged})
            for leg, path, sha in staged:
                self._place_staged(leg, path, sha)
        finally:
            for _, path, _ in staged:
                path.unlink(missing_ok=True)

    def _place_staged(self, leg: Leg, path: Path, sha: str) -> None:
        entry, final = leg.entry, Path(leg.final)
        os.chmod(path, received_mode(entry.mode, self._umask))
        os.utime(path, (entry.atime, entry.mtime))
        if self._overwrite:
            os.replace(path, final)
            return
        try:
            os.link(path, final)  # unlike rename, fails if the name was taken meanwhile
        except FileExistsError:
            if not (final.is_file() and not final.is_symlink() and file_sha256(final) == sha):
                raise _appeared(final) from None

    # ------------------------------------------------------------------ Parts

    async def claim(self, leg: Leg) -> int:
        """The bytes of the ``.part`` worth checking for a resume, once it is marked ours."""
        part = leg.local
        if part.is_symlink():
            raise TransferError(f"refusing to write through the symlink {shown(part)}")
        if not self._overwrite and foreign_part(part):  # appeared since the plan was checked
            raise not_ours([leg.entry.rel + PART_SUFFIX], f"in {shown(self._dest)}")
        held = part.stat().st_size if part.exists() and read_mark(part) == leg.mark else 0
        if not held:  # (a .part held and marked is ours already, whether it resumes or not)
            _write_mark(part, leg.mark)
        return held

    async def discard(self, leg: Leg) -> None:
        _drop_part(leg.local)

    async def place(self, leg: Leg) -> None:
        part, final, entry = leg.local, leg.final, leg.entry
        os.chmod(part, received_mode(entry.mode, self._umask))
        os.utime(part, (entry.atime, entry.mtime))
        if self._overwrite:
            os.replace(part, final)
        else:
            try:
                os.link(part, final)  # unlike rename, fails if the name appeared meanwhile
            except FileExistsError as e:
                raise _appeared(final) from e
        _drop_part(part)  # the .part (unless it was renamed) and its mark
