"""The OpenSSH lane: large files' bytes through the system's ``ssh`` client, framed by us.

Why: on a CPU-bound link the rate is what the processes at both ends can encrypt, copy and
frame per second. asyncssh does its SSH packet work in Python (4.6-5.5 s of our CPU per GiB),
while OpenSSH's ``ssh`` does it in C with AES-GCM; OpenSSH's own ``sftp`` client talks the
SFTP protocol to such an ``ssh`` over two pipes. The lane does the same: it starts
``ssh -s ... sftp`` and speaks SFTP version 3 (draft-ietf-secsh-filexfer-02) itself, so our
process only frames 255 KiB requests, hashes them and copies them between a pipe and a file
(docs/transfer.md, "Benchmark").

The lane is deliberately narrow: it moves the bytes of one already-planned file, strictly in
order, so a ``.part`` is always a clean prefix (resume depends on that). Planning, checks,
renames and far-side hashes stay on the asyncssh connection, and the engine falls back to
asyncssh's data path where ``ssh`` is missing or the lane cannot start.

This module is the ``ssh`` process and its pipes; what goes into each packet, and what an
answer may hold, is :mod:`.sftpcodec`'s, which never touches a pipe.

Trust: the lane's ``ssh`` accepts exactly the host key the asyncssh connection verified (a
one-line known_hosts under ``HostKeyAlias``), reads no ssh_config, forwards nothing and never
asks for a password. Blocking I/O: the engine runs a lane in a worker thread.
"""

from __future__ import annotations

import contextlib
import functools
import os
import threading
from collections import deque
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, Concatenate, ParamSpec, Protocol, TypeVar

from worldland_cli.host import Host
from worldland_cli.transfer.display import shown
from worldland_cli.transfer.errors import ConnectionDropped, HostKeyError, TransferError
from worldland_cli.transfer.overlap import ReadAhead, WriteBehind
from worldland_cli.transfer.sftpcodec import (
    DATA,
    DATA_HEAD,
    EXTENDED_REPLY,
    PF_CREAT,
    PF_READ,
    PF_TRUNC,
    PF_WRITE,
    VERSION,
    Codec,
    string,
)
from worldland_cli.transfer.ssh import (
    CONNECT_TIMEOUT,
    KEEPALIVE_INTERVAL,
    MAX_BLOCK,
    Credentials,
)
from worldland_cli.transfer.targets import SshLocation

if TYPE_CHECKING:
    import subprocess

# The SFTP draft guarantees 32 KiB requests; OpenSSH's sftp-server announces its real limits
# (255 KiB) through limits@openssh.com, and no more than MAX_BLOCK is asked for in any case.
_SAFE_BLOCK = 32 * 1024
_PIPE_SIZE = 1 << 20
_STDERR_KEPT = 64 * 1024  # the tail of ssh's stderr kept to explain a failed start
_ALIAS = "worldland-pinned-peer"
# AES-GCM ahead of OpenSSH's default order: with AES-NI it is the cheapest cipher at both ends.
_CIPHERS = "^aes128-gcm@openssh.com,aes256-gcm@openssh.com"
# curve25519 first: what the asyncssh connection beside the lane negotiates anyway, and
# ~0.1 s faster per handshake here than OpenSSH 9's default sntrup761 hybrid. (An OpenSSH
# older than 8.4 rejects the "^" syntax; the lane then does not start and asyncssh carries.)
_KEX = "^curve25519-sha256,curve25519-sha256@libssh.org"

Moved = Callable[[int, int], None]  # (bytes acknowledged, offset reached)


class LaneUnavailable(Exception):
    """The lane cannot start here (no ``ssh``, no sftp subsystem, ...); use asyncssh."""


class Sink(Protocol):
    """Where fetched bytes go, in order (the engine's .part writer and hasher)."""

    def write(self, data: memoryview) -> None: ...


def ssh_argv(loc: SshLocation, creds: Credentials, known_hosts: Path) -> list[str]:
    """The ``ssh`` command line of a lane; nothing in ssh_config or the agent can widen it."""
    argv = ["ssh", "-F", "none", "-x", "-a", "-T", "-e", "none", "-p", str(loc.port)]
    options = {
        "BatchMode": "yes",
        "StrictHostKeyChecking": "yes",
        "UserKnownHostsFile": str(known_hosts),
        "GlobalKnownHostsFile": "none",
        "HostKeyAlias": _ALIAS,
        "UpdateHostKeys": "no",
        "CheckHostIP": "no",
        "PasswordAuthentication": "no",
        "KbdInteractiveAuthentication": "no",
        "GSSAPIAuthentication": "no",
        "ClearAllForwardings": "yes",
        "ControlMaster": "no",
        "ControlPath": "none",
        "Ciphers": _CIPHERS,
        "KexAlgorithms": _KEX,
        "Compression": "no",
        "ConnectTimeout": str(int(CONNECT_TIMEOUT)),
        "ServerAliveInterval": str(int(KEEPALIVE_INTERVAL)),
        "ServerAliveCountMax": "3",
        "LogLevel": "ERROR",
    }
    if creds.identity is not None and creds.identity.exists():
        argv += ["-i", str(creds.identity)]
        if not creds.use_agent:
            options["IdentitiesOnly"] = "yes"
    if not creds.use_agent:
        options["IdentityAgent"] = "none"
    for name, value in options.items():
        argv += ["-o", f"{name}={value}"]
    return [*argv, "-l", loc.user, "-s", "--", loc.host, "sftp"]


P = ParamSpec("P")
R = TypeVar("R")


def _holding_pipes(
    method: Callable[Concatenate[OpenSshLane, P], R],
) -> Callable[Concatenate[OpenSshLane, P], R]:
    """A lane call that keeps the pipes open until it returns (see ``_using_pipes``)."""

    @functools.wraps(method)
    def held(lane: OpenSshLane, /, *args: P.args, **kwargs: P.kwargs) -> R:
        with lane._using_pipes():
            return method(lane, *args, **kwargs)

    return held


class OpenSshLane:
    """One ``ssh -s sftp`` process and the SFTP session on its pipes; see the module doc."""

    def __init__(
        self, process: subprocess.Popen[bytes], workdir: Path, host: Host, peer: str
    ) -> None:
        self._process = process
        self._host = host
        self._workdir = workdir
        assert process.stdin is not None and process.stdout is not None
        self._out = process.stdin.fileno()
        self._in = process.stdout.fileno()
        self._codec = Codec(peer)  # peer: "host:port", named in the codec's errors
        self._buffer = bytearray(MAX_BLOCK)
        # kill() may come from another thread while a push or fetch still uses the pipes: their
        # fds are closed only once no call uses them, or a file opened meanwhile could get one
        # of those numbers and receive the lane's SFTP packets.
        self._guard = threading.Lock()
        self._users = 0
        self._dead = False
        # ssh's stderr (and the far side's, which ssh passes on) is read all along: a pipe
        # nobody drains fills up and stalls ssh, and with it the lane.
        self._said = bytearray()
        self._drain = threading.Thread(target=self._drain_stderr, name="worldland-ssh-err")
        self._drain.daemon = True
        self._drain.start()
        self.block = _SAFE_BLOCK
        self.can_fsync = False

    # ------------------------------------------------------------------ life cycle

    @classmethod
    def open(
        cls, loc: SshLocation, creds: Credentials, host_key: str, host: Host | None = None
    ) -> OpenSshLane:
        """Start the lane, pinned to ``host_key`` ("ssh-ed25519 AAAA..."), or raise.

        HostKeyError when the server shows the lane another key than it showed asyncssh
        (never fall back then); LaneUnavailable for everything else that keeps it from
        starting; ConnectionDropped when the link is down (the engine retries).
        """
        host = host or Host()
        workdir = host.private_temp_dir(
            "worldland-lane-", {"known_hosts": f"{_ALIAS} {host_key}\n"}
        )
        process = host.spawn(ssh_argv(loc, creds, workdir / "known_hosts"), pipe_size=_PIPE_SIZE)
        if process is None:
            host.remove_temp_dir(workdir)
            raise LaneUnavailable("the OpenSSH client (ssh) is not installed")
        lane = cls(process, workdir, host, f"{loc.host}:{loc.port}")
        try:
            lane._handshake()
        except BaseException:
            lane.kill()
            raise
        return lane

    def _handshake(self) -> None:
        try:
            self._send_raw(self._codec.init())
            kind, body = self._receive()
        except ConnectionDropped:
            raise self._startup_failure() from None
        if kind != VERSION:
            raise LaneUnavailable(f"the far side did not answer as an SFTP server (type {kind})")
        extensions = self._codec.version(body)
        self.can_fsync = b"fsync@openssh.com" in extensions
        if b"limits@openssh.com" in extensions:
            kind, body = self._call(self._codec.extended(b"limits@openssh.com"))
            if kind == EXTENDED_REPLY:
                max_read, max_write = self._codec.limits(body)
                self.block = max(_SAFE_BLOCK, min(MAX_BLOCK, max_read, max_write))

    def _startup_failure(self) -> Exception:
        """Why ``ssh`` ended before the SFTP session began, from what it printed."""
        self._host.stop(self._process, grace=CONNECT_TIMEOUT)
        self._drain.join(timeout=5)
        said = bytes(self._said).decode(errors="replace").strip()
        last = said.splitlines()[-1] if said else f"ssh exited with {self._process.returncode}"
        if "Host key verification failed" in said or "IDENTIFICATION HAS CHANGED" in said:
            return HostKeyError(
                "the server showed the OpenSSH client another host key than the one it "
                "showed a moment earlier; refusing to send data",
                "someone may be intercepting the connection; contact support",
            )
        if "Connection refused" in said or "Connection closed" in said or "reset" in said:
            return ConnectionDropped(last)
        return LaneUnavailable(last)

    def close(self) -> None:
        """End the session politely (ssh exits once its stdin closes)."""
        if self._process.stdin is not None:
            with contextlib.suppress(OSError):
                self._process.stdin.close()
        self._host.stop(self._process, grace=5)
        self._cleanup()

    def kill(self) -> None:
        """Stop at once; a thread blocked on the pipes wakes up with ConnectionDropped.

        Safe from another thread than the one in :meth:`push` or :meth:`fetch`: that call
        closes the pipes on its way out.
        """
        self._host.stop(self._process)
        self._cleanup()

    def _cleanup(self) -> None:
        with self._guard:
            self._dead = True
            idle = self._users == 0
        if idle:
            self._close_pipes()
        self._drain.join(timeout=5)
        self._host.remove_temp_dir(self._workdir)

    def _close_pipes(self) -> None:
        # stderr is the drain thread's: it closes it at end of file (ssh has exited).
        for pipe in (self._process.stdin, self._process.stdout):
            if pipe is not None:
                with contextlib.suppress(OSError):
                    pipe.close()

    def _drain_stderr(self) -> None:
        err = self._process.stderr
        assert err is not None
        try:
            while chunk := err.read(_STDERR_KEPT):
                self._said += chunk
                del self._said[:-_STDERR_KEPT]
        except (OSError, ValueError):
            pass
        finally:
            with contextlib.suppress(OSError):
                err.close()

    @contextlib.contextmanager
    def _using_pipes(self) -> Iterator[None]:
        """Hold the pipes open for one call; ConnectionDropped once the lane was killed."""
        with self._guard:
            if self._dead:
                raise ConnectionDropped("the OpenSSH client was stopped")
            self._users += 1
        try:
            yield
        finally:
            with self._guard:
                self._users -= 1
                last = self._dead and self._users == 0
            if last:
                self._close_pipes()

    # ------------------------------------------------------------------ framing

    def _send_raw(self, *parts: bytes | memoryview) -> None:
        views = [memoryview(p) for p in parts]
        try:
            while views:
                sent = os.writev(self._out, views)
                while views and sent >= len(views[0]):
                    sent -= len(views[0])
                    views.pop(0)
                if views and sent:
                    views[0] = views[0][sent:]
        except (BrokenPipeError, ConnectionResetError, OSError) as e:
            raise ConnectionDropped(f"the OpenSSH client went away: {e}") from e

    def _read_into(self, view: memoryview) -> None:
        got = 0
        while got < len(view):
            try:
                n = os.readv(self._in, [view[got:]])
            except OSError as e:
                raise ConnectionDropped(f"the OpenSSH client went away: {e}") from e
            if n == 0:
                raise ConnectionDropped("the SSH connection closed")
            got += n

    def _read_exact(self, n: int) -> bytes:
        out = bytearray(n)
        self._read_into(memoryview(out))
        return bytes(out)

    def _receive(self) -> tuple[int, bytes]:
        """The next answer's type and body, once its frame's length is one worth reading."""
        length, kind = self._codec.frame(self._read_exact(5))
        return kind, self._read_exact(length - 1)

    def _call(self, request: bytes) -> tuple[int, bytes]:
        self._send_raw(request)
        return self._receive()

    # ------------------------------------------------------------------ files

    def _open(self, path: str, flags: int, mode: int | None) -> bytes:
        kind, body = self._call(self._codec.open(path, flags, mode))
        return self._codec.handle(kind, body, f"cannot open {shown(path)} on the remote")

    def _close(self, handle: bytes, path: str) -> None:
        kind, body = self._call(self._codec.close(handle))
        self._codec.expect_ok(kind, body, f"closing {shown(path)} on the remote")

    @_holding_pipes
    def push(
        self,
        local: Path,
        remote: str,
        start: int,
        digest: Any,
        moved: Moved,
        *,
        fsync: bool,
        in_flight: int,
    ) -> int:
        """Write ``local`` from ``start`` into ``remote`` (truncated when ``start`` is 0).

        Hashes what it reads into ``digest``; writes are acknowledged in order, and ``moved``
        hears of each. Returns the offset reached (the local size as read).
        """
        flags = PF_WRITE | (PF_READ if start else PF_CREAT | PF_TRUNC)
        handle = self._open(remote, flags, None if start else 0o600)
        pending: deque[tuple[int, int]] = deque()
        offset = start
        with local.open("rb", buffering=0) as source:
            source.seek(start)

            def read_and_hash(view: memoryview) -> int:
                n: int = source.readinto(view[: self.block]) or 0  # type: ignore[attr-defined]
                digest.update(view[:n])
                return n

            ahead = ReadAhead(read_and_hash, self.block)
            try:
                while True:
                    buffer, n = ahead.next()
                    if not n:
                        break
                    self._send_raw(self._codec.write(handle, offset, n), memoryview(buffer)[:n])
                    ahead.recycle(buffer)  # the pipe holds a copy now
                    offset += n
                    pending.append((n, offset))
                    if len(pending) >= in_flight:
                        self._acknowledge(pending, moved, remote)
                while pending:
                    self._acknowledge(pending, moved, remote)
            finally:
                ahead.stop()
        if fsync and self.can_fsync:
            kind, body = self._call(self._codec.extended(b"fsync@openssh.com", string(handle)))
            self._codec.expect_ok(kind, body, f"flushing {shown(remote)} to disk on the remote")
        self._close(handle, remote)
        return offset

    def _acknowledge(self, pending: deque[tuple[int, int]], moved: Moved, remote: str) -> None:
        kind, body = self._receive()
        self._codec.expect_ok(kind, body, f"writing {shown(remote)} on the remote")
        size, reached = pending.popleft()
        moved(size, reached)

    @_holding_pipes
    def fetch(
        self, remote: str, start: int, size: int, sink: Sink, moved: Moved, *, in_flight: int
    ) -> None:
        """Read ``remote`` from ``start`` to ``size`` into ``sink``, in order, pipelined."""
        handle = self._open(remote, PF_READ, None)

        def write_and_hash(view: memoryview, offset: int) -> None:
            sink.write(view)
            moved(len(view), offset + len(view))

        behind = WriteBehind(write_and_hash, self.block)
        try:
            self._stream_reads(handle, remote, start, size, behind, in_flight)
        except BaseException:
            with contextlib.suppress(BaseException):
                behind.finish()
            raise
        behind.finish()
        self._close(handle, remote)

    def _stream_reads(
        self,
        handle: bytes,
        remote: str,
        start: int,
        size: int,
        behind: WriteBehind,
        in_flight: int,
    ) -> None:
        """Pipelined READs from ``start`` to ``size``; each answer goes to ``behind``."""
        asked: deque[tuple[int, int]] = deque()
        wanted = start
        refill = max(1, in_flight // 2)
        while True:
            if len(asked) <= in_flight - refill:
                # Requests go in batches: one pipe write and one SSH packet for many READs
                # instead of a wake-up of ssh, sshd and sftp-server for each.
                batch = []
                while wanted < size and len(asked) < in_flight:
                    n = min(self.block, size - wanted)
                    batch.append(self._codec.read(handle, wanted, n))
                    asked.append((wanted, n))
                    wanted += n
                if batch:
                    self._send_raw(b"".join(batch))
            if not asked:
                break
            offset, n = asked.popleft()
            buffer = behind.take()
            got = self._receive_data(memoryview(buffer)[:n], remote)
            if got == 0:
                raise TransferError(f"{shown(remote)} shrank during the transfer; fetch it again")
            behind.give(buffer, got, offset)
            if got < n:  # a short answer: the replies still owed overlap; ask again from here
                for _ in asked:
                    self._receive_data(memoryview(self._buffer), remote)
                asked.clear()
                wanted = offset + got

    def _receive_data(self, into: memoryview, remote: str) -> int:
        """One reply to a READ: its bytes land in ``into``; 0 at end of file."""
        length, kind = self._codec.frame(self._read_exact(5))
        if kind != DATA:
            self._codec.at_end(
                kind, self._read_exact(length - 1), f"reading {shown(remote)} on the remote"
            )
            return 0
        n = self._codec.data_length(self._read_exact(DATA_HEAD), length, len(into), remote)
        self._read_into(into[:n])
        return n
