"""A long fat link on one machine: a TCP relay that delays, rate-caps and buffers like a WAN path.

    .venv/bin/python bench/wanrelay.py --to 127.0.0.1:22 [--rtt-ms 100] [--mbit 400]

This kernel has no sch_netem, so ``tc qdisc ... netem delay`` cannot build the link the
transfer benchmark needs; a relay in user space can. Each direction is one bottleneck shared
by every connection through the relay, as a real path is:

* bytes enter a queue and leave it at the capped rate (their serialisation time, back to
  back), then arrive RTT/2 later (the one-way delay); both directions delay, so a round
  trip costs the RTT;
* the queue holds at most one bandwidth-delay product plus a few MiB (``--buffer-mib``, the
  bytes in flight included); while it is full the relay stops reading, so TCP's flow control
  pushes back on the sender as a full router queue would.

The relay terminates TCP at both ends (on loopback, so TCP's own window never limits): what
it shows is what the SSH layer's windows and round trips cost, which is what this project's
transfers must beat. Each connection gets two threads per direction; every byte is copied
once into the queue and once out.
"""

from __future__ import annotations

import argparse
import contextlib
import socket
import threading
import time
from collections import deque
from collections.abc import Iterator

_CHUNK = 256 << 10
_SLACK = 4 << 20  # buffer beyond one bandwidth-delay product


class Bottleneck:
    """One direction of the path: a rate, a one-way delay and a bounded queue."""

    def __init__(self, rate: float, delay: float, capacity: int) -> None:
        self.rate = rate  # bytes per second
        self.delay = delay  # seconds, one way
        self.capacity = capacity  # bytes queued or in flight at most
        self._free = threading.Condition()
        self._held = 0
        self._last_out = 0.0  # when the queue's last byte has been serialised

    def admit(self, limit: int) -> int:
        """Wait for room in the queue; how many bytes (at most ``limit``) may enter now."""
        with self._free:
            while self._held >= self.capacity:
                self._free.wait()
            return min(limit, self.capacity - self._held)

    def enqueue(self, n: int) -> float:
        """Account for ``n`` bytes just read; when they arrive at the far end."""
        with self._free:
            self._held += n
            out = max(time.monotonic(), self._last_out) + n / self.rate
            self._last_out = out
            return out + self.delay

    def delivered(self, n: int) -> None:
        with self._free:
            self._held -= n
            self._free.notify_all()


class _Direction:
    """Bytes from ``src`` to ``dst`` through ``link``: a reader thread and a writer thread."""

    def __init__(self, src: socket.socket, dst: socket.socket, link: Bottleneck) -> None:
        self._src, self._dst, self._link = src, dst, link
        self._due: deque[tuple[float, bytes]] = deque()
        self._ready = threading.Condition()
        self.threads = [
            threading.Thread(target=self._read, daemon=True),
            threading.Thread(target=self._write, daemon=True),
        ]
        for t in self.threads:
            t.start()

    def _read(self) -> None:
        try:
            while True:
                room = self._link.admit(_CHUNK)
                data = self._src.recv(room)
                if not data:
                    break
                due = self._link.enqueue(len(data))
                with self._ready:
                    self._due.append((due, data))
                    self._ready.notify()
        except OSError:
            pass
        with self._ready:
            self._due.append((0.0, b""))  # end of stream, after everything queued
            self._ready.notify()

    def _write(self) -> None:
        broken = False
        while True:
            with self._ready:
                while not self._due:
                    self._ready.wait()
                due, data = self._due.popleft()
            if not data:
                break
            wait = due - time.monotonic()
            if wait > 0:
                time.sleep(wait)
            if not broken:
                try:
                    self._dst.sendall(data)
                except OSError:
                    broken = True  # keep draining so the reader is never stuck on the queue
            self._link.delivered(len(data))
        with contextlib.suppress(OSError):
            self._dst.shutdown(socket.SHUT_WR)


class WanRelay:
    """Listens on 127.0.0.1 and relays each connection to ``target`` across the emulated path."""

    def __init__(
        self,
        target: tuple[str, int],
        rtt: float = 0.1,
        mbit: float = 400.0,
        buffer: int | None = None,
    ) -> None:
        rate = mbit * 1e6 / 8
        capacity = buffer if buffer is not None else int(rate * rtt) + _SLACK
        self.target = target
        self.rtt, self.mbit = rtt, mbit
        self.up = Bottleneck(rate, rtt / 2, capacity)  # client to server
        self.down = Bottleneck(rate, rtt / 2, capacity)
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port: int = self._listener.getsockname()[1]
        self._pairs: list[tuple[socket.socket, socket.socket]] = []
        self._accepting = threading.Thread(target=self._accept, daemon=True)
        self._accepting.start()

    def floor(self, nbytes: int) -> float:
        """The least time ``nbytes`` can take one way: serialisation plus one delay."""
        return nbytes / self.up.rate + self.rtt / 2

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            try:
                server = socket.create_connection(self.target)
            except OSError:
                client.close()
                continue
            for s in (client, server):
                s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self._pairs.append((client, server))
            _Direction(client, server, self.up)
            _Direction(server, client, self.down)

    def close(self) -> None:
        self._listener.close()
        for pair in self._pairs:
            for s in pair:
                with contextlib.suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)
                s.close()


@contextlib.contextmanager
def wan(target: tuple[str, int], rtt: float = 0.1, mbit: float = 400.0) -> Iterator[WanRelay]:
    relay = WanRelay(target, rtt, mbit)
    try:
        yield relay
    finally:
        relay.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--to", required=True, help="HOST:PORT to relay to")
    parser.add_argument("--rtt-ms", type=float, default=100.0)
    parser.add_argument("--mbit", type=float, default=400.0)
    parser.add_argument("--buffer-mib", type=float, default=None)
    args = parser.parse_args()
    host, _, port = args.to.rpartition(":")
    buffer = int(args.buffer_mib * (1 << 20)) if args.buffer_mib is not None else None
    relay = WanRelay((host, int(port)), args.rtt_ms / 1000, args.mbit, buffer)
    print(f"relaying 127.0.0.1:{relay.port} -> {args.to}", flush=True)
    with contextlib.suppress(KeyboardInterrupt):
        threading.Event().wait()
    relay.close()


if __name__ == "__main__":
    main()
