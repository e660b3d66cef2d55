"""The far-side helper of one connection: batched requests to one python3 process on the pod.

:mod:`.farprogram` is what runs there and why it is one process per connection. This is our
end: :meth:`FarSide.launch` starts it over one exec channel (its login shell, and so its
``~/.bashrc``, runs once) and returns None where it cannot run (no exec channel, an
sftp-only account, no python3); callers then fall back to SFTP, as before. Requests are
frames tagged with an id, answered in any order, so a hash job, a stat batch and a packed
batch of small files can be in flight together on the one channel.

What comes back is the far side's word, and a pod may lie: every frame is bounded (JSON
answers :data:`MAX_JSON`, file data :data:`MAX_DATA` a frame) and checked for the shape its
request expects before it is used; anything else is a protocol violation (HOSTILE_HINT)
and no byte of it is written anywhere. A helper that ends mid-request is a dropped link: the
engine reconnects and resumes. Those checks are :mod:`.farreplies`'s.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import secrets
import struct
from collections.abc import AsyncIterator
from typing import Any

import asyncssh

from worldland_cli.transfer.errors import ConnectionDropped, TransferError, retrieved
from worldland_cli.transfer.farprogram import (
    GREETING_MAX,
    HELLO,
    PREAMBLE,
    PROGRAM,
    greeting,
    start_command,
)
from worldland_cli.transfer.farreplies import (
    Got,
    OsFailure,
    Stat,
    failure_error,
    failure_of,
    file_of,
    hostile,
    is_sha,
    json_of,
    next_frame,
    stat_of,
)

_HEAD = struct.Struct(">cII")
MAX_JSON = 16 << 20  # the longest JSON answer read (a stat of ~100k paths)
MAX_DATA = 256 << 10  # the far side sends file data in frames of at most this much
CHUNK = 10_000  # paths to one stat, hash or mkdir request: its answer stays well in MAX_JSON
HELLO_TIMEOUT = 60.0  # a conda init can take seconds; an exec that never answers, not forever


class FarSide:
    """One helper process; see the module docstring. Use on the connection's event loop."""

    def __init__(self, process: asyncssh.SSHClientProcess[bytes]) -> None:
        self._process = process
        self._next = 1
        self._replies: dict[int, asyncio.Future[tuple[bytes, Any]]] = {}
        self._streams: dict[int, asyncio.Queue[tuple[bytes, bytes] | BaseException]] = {}
        self._forgotten: set[int] = set()  # cancelled jobs: a late answer is no lie
        self._reader = asyncio.ensure_future(self._read())
        self._broken: BaseException | None = None

    @classmethod
    async def launch(cls, conn: asyncssh.SSHClientConnection) -> FarSide | None:
        """Start the helper; None where it cannot run (the caller falls back to SFTP)."""
        nonce = secrets.token_hex(8)
        command = start_command(PROGRAM, nonce)
        try:
            process = await conn.create_process(command, encoding=None, stderr=asyncssh.DEVNULL)
        except asyncssh.ChannelOpenError:
            return None
        try:
            process.stdin.write(PREAMBLE)
            greeted = await asyncio.wait_for(_greeted(process, nonce), HELLO_TIMEOUT)
        except (TimeoutError, OSError, asyncssh.Error):  # a command that ended at once
            greeted = False
        if not greeted:
            process.close()
            return None
        return cls(process)

    async def close(self) -> None:
        """End the helper: its stdin closes, it removes what it staged and exits."""
        with contextlib.suppress(OSError, asyncssh.Error):
            self._process.stdin.write_eof()
        self._process.close()
        self._reader.cancel()
        with contextlib.suppress(BaseException):
            await self._reader

    # ------------------------------------------------------------------ the frames

    def _send(self, kind: bytes, rid: int, payload: bytes) -> None:
        self._write(_HEAD.pack(kind, rid, len(payload)) + payload)

    def _write(self, frames: bytes) -> None:
        if self._broken is not None:
            raise ConnectionDropped(f"the far side's helper ended: {self._broken}")
        self._process.stdin.write(frames)

    def _awaiting(self) -> tuple[int, asyncio.Future[tuple[bytes, Any]]]:
        """A new request id and the future of its answer.

        The answer of a request given up on (a failed file's hash job, a batch after an
        earlier one failed) may be an exception nobody awaits: it is marked seen, so it
        is no "exception was never retrieved" on stderr.
        """
        rid = self._next
        self._next += 1
        future: asyncio.Future[tuple[bytes, Any]] = asyncio.get_running_loop().create_future()
        future.add_done_callback(retrieved)
        self._replies[rid] = future
        return rid, future

    def _request(self, kind: bytes, doc: Any) -> tuple[int, asyncio.Future[tuple[bytes, Any]]]:
        rid, future = self._awaiting()
        self._send(kind, rid, json.dumps(doc).encode())
        return rid, future

    async def _read(self) -> None:
        """Take every frame off the helper's stdout, to the request it answers."""
        stdout = self._process.stdout
        try:
            while True:
                kind, rid, length = _HEAD.unpack(await stdout.readexactly(_HEAD.size))
                if length > (MAX_DATA if kind == b"D" else MAX_JSON):
                    raise hostile(f"a frame of {length} bytes")
                payload = await stdout.readexactly(length)
                if rid in self._streams:
                    self._streams[rid].put_nowait((kind, payload))
                elif kind in (b"R", b"!") and rid in self._replies:
                    self._replies.pop(rid).set_result((kind, json_of(payload)))
                elif kind in (b"R", b"!") and rid in self._forgotten:
                    self._forgotten.discard(rid)
                else:
                    raise hostile(f"an answer {kind!r} to no question ({rid})")
        except asyncio.IncompleteReadError:
            self._end(ConnectionDropped("the far side's helper ended"))
        except (OSError, asyncssh.Error) as e:
            self._end(ConnectionDropped(f"the far side's helper ended: {e}"))
        except TransferError as e:
            self._end(e)

    def _end(self, why: BaseException) -> None:
        self._broken = why
        for future in self._replies.values():
            if not future.done():
                future.set_exception(why)
        self._replies.clear()
        for queue in self._streams.values():
            queue.put_nowait(why)

    async def _answer(self, future: asyncio.Future[tuple[bytes, Any]]) -> Any:
        kind, doc = await future
        if kind == b"!":
            raise failure_error(doc)
        return doc

    # ------------------------------------------------------------------ requests

    async def _each(self, kind: bytes, items: list[Any], what: str) -> list[Any]:
        """One answer per item, asked in requests of at most CHUNK items (in flight together,
        handled in order), so no answer outgrows MAX_JSON however large the tree."""
        asked = [
            self._request(kind, items[at : at + CHUNK])[1] for at in range(0, len(items), CHUNK)
        ]
        found: list[Any] = []
        for at, future in zip(range(0, len(items), CHUNK), asked, strict=True):
            doc = await self._answer(future)
            if not isinstance(doc, list) or len(doc) != len(items[at : at + CHUNK]):
                raise hostile(f"{what} answer of the wrong length")
            found += doc
        return found

    async def stat(self, paths: list[str]) -> list[Stat | OsFailure]:
        """lstat of each path, in one round trip."""
        return [stat_of(item) for item in await self._each(b"S", paths, "a stat")]

    async def hashes(
        self, items: list[tuple[str, int]], sync: bool = False
    ) -> list[str | OsFailure]:
        """sha256 of each file's first ``limit`` bytes (-1: all of it), in one pass; with
        ``sync``, each file is put on the far disk first (fdatasync)."""
        found: list[str | OsFailure] = []
        asked = [[path, limit, 1] if sync else [path, limit] for path, limit in items]
        for item in await self._each(b"H", asked, "a hash"):
            if isinstance(item, list) and len(item) == 3 and is_sha(item[0]):
                found.append(item[0])
            elif isinstance(item, list) and len(item) == 3 and item[0] is None:
                found.append(failure_of(item[1:]))
            else:
                raise hostile("a hash answer that is no sha256")
        return found

    async def blocks(self, path: str, size: int, limit: int) -> list[str] | OsFailure:
        """sha256 of each ``size``-byte block of ``path``'s first ``limit`` bytes, one pass."""
        _, future = self._request(b"B", [path, size, limit])
        doc = await self._answer(future)
        if isinstance(doc, list) and doc and doc[0] is None:
            return failure_of(doc[1:])
        want = -(-limit // size)
        if not isinstance(doc, list) or len(doc) != want or not all(map(is_sha, doc)):
            raise hostile("a block hash answer that is no list of sha256")
        return doc

    async def write_small(self, path: str, text: str, exclusive: bool) -> OsFailure | None:
        """Write a small file of ours (0600, not through a link): only if absent when
        ``exclusive``, else replacing what is there."""
        _, future = self._request(b"W", [path, text, exclusive])
        doc = await self._answer(future)
        return None if doc is None else failure_of(doc)

    async def mkdirs(self, paths: list[str]) -> list[OsFailure | None]:
        """Make each directory (parents first, in the order given); one that exists is fine."""
        made = await self._each(b"M", paths, "a mkdir")
        return [None if item is None else failure_of(item) for item in made]

    def job(self, path: str, size: int, follow: bool) -> HashJob:
        """Hash ``path`` while it streams: following acknowledged writes, or the whole file."""
        rid, future = self._request(b"J", [path, size, follow])
        return HashJob(self, rid, future, size, follow)

    def put(self, heads: list[dict[str, Any]], data: list[bytes]) -> asyncio.Future[Any]:
        """Send small files packed (each head with its bytes); the future of the far verdicts.

        Each verdict is ``{"sha256", "placed", "exists"?}`` or ``{"error": [errno, text]}``.
        """
        rid, future = self._awaiting()
        frames: list[bytes] = []  # one write for the batch: a packet per frame cost 0.8 ms each
        for head, body in zip(heads, data, strict=True):
            encoded = json.dumps(head).encode()
            frames += (_HEAD.pack(b"P", rid, len(encoded)), encoded)
            for at in range(0, len(body), MAX_DATA):
                piece = body[at : at + MAX_DATA]
                frames += (_HEAD.pack(b"D", rid, len(piece)), piece)
        frames.append(_HEAD.pack(b"E", rid, 0))
        self._write(b"".join(frames))
        verdicts = asyncio.ensure_future(self._answer(future))
        verdicts.add_done_callback(retrieved)
        return verdicts

    async def drain(self) -> None:
        """Wait until the channel has taken what was written (the far side's window)."""
        await self._process.stdin.drain()

    async def get(self, items: list[tuple[str, int]]) -> AsyncIterator[Got | OsFailure]:
        """Read small files whole on the far side: each as it arrives, in the order asked.

        ``items`` are (path, size as planned); a file is never taken longer than planned.
        """
        rid = self._next
        self._next += 1
        queue: asyncio.Queue[tuple[bytes, bytes] | BaseException] = asyncio.Queue()
        self._streams[rid] = queue
        try:
            self._send(b"G", rid, json.dumps([list(i) for i in items]).encode())
            for _, size in items:
                kind, payload = await next_frame(queue)
                if kind != b"F":
                    raise hostile(f"{kind!r} where a file's header was due")
                head = json_of(payload)
                if isinstance(head, dict) and "error" in head:
                    yield failure_of(head["error"])
                    continue
                yield await file_of(queue, head, size)
            kind, _ = await next_frame(queue)
            if kind != b"R":
                raise hostile(f"{kind!r} after the last file asked for")
        finally:
            self._streams.pop(rid, None)


class HashJob:
    """A far-side hash running alongside one file's stream (see :mod:`.farprogram`)."""

    STEP = 8 << 20  # acknowledged offsets are passed on in steps of at least this much

    def __init__(
        self,
        far: FarSide,
        rid: int,
        future: asyncio.Future[tuple[bytes, Any]],
        size: int,
        follow: bool,
    ) -> None:
        self._far = far
        self._rid = rid
        self._future = future
        self._size = size
        self._follow = follow
        self._told = 0

    def advance(self, reached: int) -> None:
        """Follow mode: the far side has acknowledged every byte below ``reached``."""
        if self._follow and reached - self._told >= self.STEP:
            self._tell(reached)

    def _tell(self, reached: int) -> None:
        with contextlib.suppress(ConnectionDropped, OSError, asyncssh.Error):
            self._far._send(b"A", self._rid, str(int(reached)).encode())
        self._told = reached

    async def result(self) -> tuple[str, bool] | None:
        """(sha256, changed) once our copy is complete; None if the far side could not hash.

        Called only after every byte has arrived (and, sending, been acknowledged and
        fsynced), so the verdict covers the whole transfer window.
        """
        if self._follow:
            self._tell(self._size)
        self._far._send(b"X", self._rid, b"")
        kind, doc = await self._future
        if kind != b"R":
            failure_of(doc)  # checked, then the caller's serial check decides
            return None
        if not (isinstance(doc, list) and len(doc) == 3 and is_sha(doc[0])):
            raise hostile("a hash job's answer that is no sha256")
        digest, hashed, changed = doc
        return digest, bool(changed) or hashed != self._size

    def cancel(self) -> None:
        """Stop the far-side hash (the transfer failed before it was asked for a result)."""
        with contextlib.suppress(ConnectionDropped, OSError, asyncssh.Error):
            self._far._send(b"C", self._rid, b"")
        if self._far._replies.pop(self._rid, None) is not None:
            self._far._forgotten.add(self._rid)
        if not self._future.done():
            self._future.cancel()


class LateJob:
    """A hash job asked for before the helper may have greeted: the stream never waits on
    the far side's shell start-up (a slow ~/.bashrc), the job starts once the helper is up
    and is told how far writes got meanwhile. Without a helper its result is None."""

    def __init__(
        self, launching: asyncio.Future[FarSide | None], path: str, size: int, follow: bool
    ) -> None:
        self._job: HashJob | None = None
        self._reached = 0
        self._cancelled = False
        self._starting = asyncio.ensure_future(self._start(launching, path, size, follow))
        self._starting.add_done_callback(retrieved)

    async def _start(
        self, launching: asyncio.Future[FarSide | None], path: str, size: int, follow: bool
    ) -> HashJob | None:
        helper = await asyncio.shield(launching)
        if helper is None or self._cancelled:
            return None
        self._job = helper.job(path, size, follow)
        self._job.advance(self._reached)
        return self._job

    def advance(self, reached: int) -> None:
        """Follow mode: the far side has acknowledged every byte below ``reached``."""
        self._reached = reached
        if self._job is not None:
            self._job.advance(reached)

    async def result(self) -> tuple[str, bool] | None:
        """(sha256, changed) once our copy is complete; None without a usable far hash."""
        job = await self._starting
        return None if job is None else await job.result()

    def cancel(self) -> None:
        self._cancelled = True
        if self._job is not None:
            self._job.cancel()
        self._starting.cancel()


async def _greeted(process: asyncssh.SSHClientProcess[bytes], nonce: str) -> bool:
    """Whether the helper said hello (after whatever the login shell printed first)."""
    seen = b""
    while len(seen) < GREETING_MAX:
        chunk = await process.stdout.read(4096)
        if not chunk:
            return False  # no python3 (exit 97), a refused command, an old python
        seen += chunk
        said = greeting(seen, HELLO, nonce)
        if said is not None:
            ours, after = said
            return ours and after == b""  # not an SFTP VERSION (forced internal-sftp)
    return False
