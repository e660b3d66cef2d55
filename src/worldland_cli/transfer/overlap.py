"""Disk and hash work on a second thread, overlapped with a lane's pipe I/O.

Why: with both ends of a loopback transfer on 2 cores, every process in the chain (ours, ssh,
sshd, sftp-server, the far-side hash) stalls whenever its neighbour does. When one thread both
reads the pipe and hashes and writes each block, ssh waits on a full pipe during every hash.
Handing full buffers to a second thread keeps the pipe moving (hashlib and file I/O release
the GIL on large buffers, so the two threads run on both cores).

Both helpers keep strict order, recycle a fixed set of buffers (memory stays bounded), and
carry an exception from the helper thread back to the caller's thread.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable

BUFFERS = 8


class WriteBehind:
    """Consumes filled buffers in order on a helper thread (receiving: hash, write to disk)."""

    def __init__(self, consume: Callable[[memoryview, int], None], block: int) -> None:
        self._consume = consume
        self._free: queue.SimpleQueue[bytearray] = queue.SimpleQueue()
        for _ in range(BUFFERS):
            self._free.put(bytearray(block))
        self._full: queue.SimpleQueue[tuple[bytearray, int, int] | None] = queue.SimpleQueue()
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="worldland-write", daemon=True)
        self._thread.start()

    def take(self) -> bytearray:
        """An empty buffer; waits while all are queued. Raises the helper's error, if any."""
        buffer = self._free.get()
        if self._error is not None:
            self._free.put(buffer)
            raise self._error
        return buffer

    def give(self, buffer: bytearray, length: int, offset: int) -> None:
        self._full.put((buffer, length, offset))

    def finish(self) -> None:
        """Wait until every buffer given has been consumed; raise the helper's error."""
        self._full.put(None)
        self._thread.join()
        if self._error is not None:
            raise self._error

    def _run(self) -> None:
        while (item := self._full.get()) is not None:
            buffer, length, offset = item
            if self._error is None:
                try:
                    self._consume(memoryview(buffer)[:length], offset)
                except BaseException as e:  # handed to the caller's thread
                    self._error = e
            self._free.put(buffer)


class ReadAhead:
    """Produces buffers in order on a helper thread (sending: read from disk, hash).

    ``produce(buffer)`` fills the buffer and returns the length, 0 at the end.
    """

    def __init__(self, produce: Callable[[memoryview], int], block: int) -> None:
        self._produce = produce
        self._free: queue.SimpleQueue[bytearray | None] = queue.SimpleQueue()
        for _ in range(BUFFERS):
            self._free.put(bytearray(block))
        self._full: queue.SimpleQueue[tuple[bytearray, int] | BaseException] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name="worldland-read", daemon=True)
        self._thread.start()

    def next(self) -> tuple[bytearray, int]:
        """The next filled buffer and its length (0 at the end); raises the helper's error."""
        item = self._full.get()
        if isinstance(item, BaseException):
            raise item
        return item

    def recycle(self, buffer: bytearray) -> None:
        self._free.put(buffer)

    def stop(self) -> None:
        """End the helper (also early, after an error on the caller's side)."""
        self._free.put(None)
        self._thread.join()

    def _run(self) -> None:
        while (buffer := self._free.get()) is not None:
            try:
                length = self._produce(memoryview(buffer))
            except BaseException as e:  # handed to the caller's thread
                self._full.put(e)
                return
            self._full.put((buffer, length))
            if not length:
                return
