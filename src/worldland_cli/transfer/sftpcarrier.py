"""asyncssh's SFTP client as a :class:`.pipeline.Carrier`, for the pipeline's worker thread.

asyncssh carries the bytes of files too small to be worth the lane's handshake, and all of
them where the lane cannot start (docs/transfer.md, "Engine"). The pipeline that moves them
is the lane's own (:mod:`.pipeline`): it runs on a worker thread, and each request here is
a coroutine run on the event loop that owns the connection (``run_coroutine_threadsafe``),
whose future the thread waits on in order. So both data paths share one window, one
short-read rule and one disk-and-hash thread, and the event loop only speaks SSH.

Killing the carrier cancels every future a thread may be waiting on; that thread then
raises ConnectionDropped, as a killed lane's does.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import threading
from collections import deque
from collections.abc import Coroutine, Iterator
from typing import Any, TypeVar

import asyncssh

from worldland_cli.transfer.errors import ConnectionDropped, sent_more_than_asked
from worldland_cli.transfer.pipeline import RemoteFile, request_block

T = TypeVar("T")


class AsyncsshCarrier:
    """One file's data path over the connection's SFTP channel ``sftp``, driven from a thread.

    Every method but :meth:`kill` blocks on the event loop ``loop``: never call one there.
    """

    name = "asyncssh"

    def __init__(self, sftp: asyncssh.SFTPClient, loop: asyncio.AbstractEventLoop) -> None:
        self._sftp = sftp
        self._loop = loop
        self.block = request_block(sftp.limits.max_read_len, sftp.limits.max_write_len)
        self._guard = threading.Lock()
        self._live: set[concurrent.futures.Future[Any]] = set()
        self._dead = False

    def call(self, work: Coroutine[Any, Any, T]) -> concurrent.futures.Future[T]:
        """Start ``work`` on the event loop; its future, which :meth:`kill` cancels."""
        with self._guard:
            if self._dead:
                work.close()
                raise ConnectionDropped("the transfer was stopped")
            future = asyncio.run_coroutine_threadsafe(work, self._loop)
            self._live.add(future)
        future.add_done_callback(self._settled)
        return future

    def _settled(self, future: concurrent.futures.Future[Any]) -> None:
        with self._guard:
            self._live.discard(future)

    def kill(self) -> None:
        with self._guard:
            self._dead = True
            live = list(self._live)
        for future in live:
            future.cancel()

    async def _open(
        self, path: str, mode: str | int, attrs: asyncssh.SFTPAttrs
    ) -> asyncssh.SFTPClientFile:
        # SFTPClient.open gives an awaitable context manager, not the coroutine that
        # run_coroutine_threadsafe takes; each READ and WRITE names its offset (block_size=0),
        # and bytes go in and out whatever the flags (encoding=None: with integer flags
        # asyncssh would encode and decode text).
        return await self._sftp.open(path, mode, attrs, encoding=None, block_size=0)

    @contextlib.contextmanager
    def opened(
        self, path: str, *, write: bool, start: int, ranged: bool = False
    ) -> Iterator[RemoteFile]:
        """``path`` open for the pipeline; closed however the block ends, if the link allows."""
        mode: str | int
        if not write:
            mode, attrs = "rb", asyncssh.SFTPAttrs()
        else:
            # A range of a ranged file: created if need be (0600), never cut.
            ranged_flags = asyncssh.FXF_WRITE | asyncssh.FXF_CREAT
            mode = ranged_flags if ranged else "r+b" if start else "wb"
            attrs = asyncssh.SFTPAttrs(permissions=0o600)
        rf = wait(self.call(self._open(path, mode, attrs)))
        try:
            yield _SftpFile(self, rf, path)
        except BaseException:
            with contextlib.suppress(Exception):
                wait(self.call(rf.close()))
            raise
        wait(self.call(rf.close()))


def wait(future: concurrent.futures.Future[T]) -> T:
    """The result of a request; ConnectionDropped once the carrier was killed."""
    try:
        return future.result()
    except concurrent.futures.CancelledError:
        raise ConnectionDropped("the transfer was stopped") from None


class _SftpFile:
    """A file open over asyncssh: each request a future, answers taken in the order asked."""

    def __init__(self, carrier: AsyncsshCarrier, rf: asyncssh.SFTPClientFile, path: str) -> None:
        self._carrier = carrier
        self._rf = rf
        self._path = path
        self._reads: deque[concurrent.futures.Future[Any]] = deque()
        self._writes: deque[concurrent.futures.Future[Any]] = deque()

    def ask(self, reads: list[tuple[int, int]]) -> None:
        for offset, length in reads:
            self._reads.append(self._carrier.call(self._rf.read(length, offset)))

    def answer(self, into: memoryview) -> int:
        data: bytes = wait(self._reads.popleft())  # b"" at end of file
        if len(data) > len(into):
            raise sent_more_than_asked(self._path)
        into[: len(data)] = data
        return len(data)

    def write(self, offset: int, data: memoryview) -> None:
        # A copy: the pipeline reuses the buffer once this returns, before the loop sends it.
        self._writes.append(self._carrier.call(self._rf.write(bytes(data), offset)))

    def written(self) -> None:
        wait(self._writes.popleft())

    def flush(self) -> None:
        with contextlib.suppress(asyncssh.SFTPOpUnsupported):
            wait(self._carrier.call(self._rf.fsync()))
