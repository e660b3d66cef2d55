"""The OpenSSH lane: large files' bytes through the system's ``ssh`` client, framed by us.

Why: on a CPU-bound link the rate is what the processes at both ends can encrypt, copy and
frame per second. asyncssh does its SSH packet work in Python (4.6-5.5 s of our CPU per GiB),
while OpenSSH's ``ssh`` does it in C with AES-GCM; OpenSSH's own ``sftp`` client talks the
SFTP protocol to such an ``ssh`` over two pipes. The lane does the same: it starts ``ssh``
and speaks SFTP version 3 (draft-ietf-secsh-filexfer-02) itself, so our process only frames
255 KiB requests, hashes them and copies them between a pipe and a file (docs/transfer.md,
"Benchmark"). Its far end is our own small SFTP server (:mod:`.laneserver`, where the pod has
python3: the kernel copies the bytes there) or the account's ``sftp`` subsystem.

The lane is deliberately narrow: it moves the bytes of one already-planned file, strictly in
order, so a ``.part`` is always a clean prefix (resume depends on that). Planning, checks,
renames and far-side hashes stay on the asyncssh connection, and :mod:`.lanes` falls back to
asyncssh's data path where ``ssh`` is missing or the lane cannot start.

This module is the ``ssh`` process and its pipes; what goes into each packet, and what an
answer may hold, is :mod:`.sftpcodec`'s, which never touches a pipe.

Trust: the lane's ``ssh`` accepts only the host keys it is given (a known_hosts of them under
``HostKeyAlias``): the keys the asyncssh connection trusts for the host, for the first lane
(opened while that connection opens), or exactly the one it verified (:mod:`.lanes`). It
reads no ssh_config, forwards nothing and never asks for a password. Blocking I/O:
:mod:`.pipeline` drives a lane from a worker thread.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import threading
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from worldland_cli.host import Host
from worldland_cli.transfer.display import shown
from worldland_cli.transfer.errors import ConnectionDropped, HostKeyError
from worldland_cli.transfer.farprogram import GREETING_MAX, greeting, start_command
from worldland_cli.transfer.laneserver import HELLO
from worldland_cli.transfer.laneserver import PROGRAM as SERVER
from worldland_cli.transfer.pipeline import SAFE_BLOCK, RemoteFile, request_block
from worldland_cli.transfer.sftpcodec import (
    DATA,
    DATA_HEAD,
    EXTENDED_REPLY,
    FX_EOF,
    PF_CREAT,
    PF_READ,
    PF_TRUNC,
    PF_WRITE,
    VERSION,
    Codec,
    string,
)
from worldland_cli.transfer.ssh import CONNECT_TIMEOUT, KEEPALIVE_INTERVAL, Credentials
from worldland_cli.transfer.targets import SshLocation

if TYPE_CHECKING:
    import subprocess

_PIPE_SIZE = 1 << 20
_STDERR_KEPT = 64 * 1024  # the tail of ssh's stderr kept to explain a failed start
_ALIAS = "worldland-pinned-peer"
# AES-GCM ahead of OpenSSH's default order: with AES-NI it is the cheapest cipher at both ends.
_CIPHERS = "^aes128-gcm@openssh.com,aes256-gcm@openssh.com"
# curve25519 first: what the asyncssh connection beside the lane negotiates anyway, and
# ~0.1 s faster per handshake here than OpenSSH 9's default sntrup761 hybrid. (An OpenSSH
# older than 8.4 rejects the "^" syntax; the lane then does not start and asyncssh carries.)
_KEX = "^curve25519-sha256,curve25519-sha256@libssh.org"


class LaneUnavailable(Exception):
    """The lane cannot start here (no ``ssh``, no sftp subsystem, ...); use asyncssh.

    ``stopped``: nothing else is worth trying (no ``ssh``, or the lane was killed meanwhile).
    """

    def __init__(self, message: str, *, stopped: bool = False) -> None:
        super().__init__(message)
        self.stopped = stopped


def ssh_argv(
    loc: SshLocation, creds: Credentials, known_hosts: Path, command: str | None = None
) -> list[str]:
    """The ``ssh`` command line of a lane; nothing in ssh_config or the agent can widen it.

    ``command``: what the far side runs (our server, :func:`.farprogram.start_command`);
    else the account's ``sftp`` subsystem.
    """
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
    if creds.identity is not None and Host().exists(str(creds.identity.absolute())):
        argv += ["-i", str(creds.identity)]
        if not creds.use_agent:
            options["IdentitiesOnly"] = "yes"
    if not creds.use_agent:
        options["IdentityAgent"] = "none"
    for name, value in options.items():
        argv += ["-o", f"{name}={value}"]
    if command is not None:
        return [*argv, "-l", loc.user, "--", loc.host, command]
    return [*argv, "-l", loc.user, "-s", "--", loc.host, "sftp"]


class OpenSshLane:
    """One ``ssh`` process and the SFTP session on its pipes; see the module doc.

    A :class:`.pipeline.Carrier`: the pipeline moves a file's bytes through :meth:`opened`.
    """

    name = "openssh"

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
        # kill() may come from another thread while a file still uses the pipes: their
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
        self.block = SAFE_BLOCK
        self.can_fsync = False
        self._pending = b""  # read with the server's hello: the start of its first answer
        self.far_end = "sftp"  # who answers: the account's SFTP server, or "worldland" (ours)

    # ------------------------------------------------------------------ life cycle

    @classmethod
    def open(
        cls,
        loc: SshLocation,
        creds: Credentials,
        host_keys: Sequence[str],
        host: Host | None = None,
        *,
        spawned: Callable[[OpenSshLane], None] | None = None,
    ) -> OpenSshLane:
        """Start the lane, trusting only ``host_keys`` ("ssh-ed25519 AAAA..." each), or raise.

        The far end is our own server (:mod:`.laneserver`) where the pod runs python3, else
        the account's ``sftp`` subsystem (a second login, only where the first could not
        start it). HostKeyError when the server shows the lane another key (never fall back
        then); LaneUnavailable for everything else that keeps it from starting;
        ConnectionDropped when the link is down (the engine retries). ``spawned`` hears of
        the lane as soon as its ``ssh`` runs, before the handshake: a :meth:`kill` from
        another thread then ends a handshake under way at once, where ssh's own time-out
        would take 15 s.
        """
        host = host or Host()
        nonce = secrets.token_hex(8)
        try:
            return cls._start(loc, creds, host_keys, host, spawned, nonce)
        except LaneUnavailable as e:
            if e.stopped:
                raise
        return cls._start(loc, creds, host_keys, host, spawned, None)

    @classmethod
    def _start(
        cls,
        loc: SshLocation,
        creds: Credentials,
        host_keys: Sequence[str],
        host: Host,
        spawned: Callable[[OpenSshLane], None] | None,
        nonce: str | None,
    ) -> OpenSshLane:
        """One ``ssh`` and its handshake: with our server (``nonce``), or the subsystem."""
        lines = "".join(f"{_ALIAS} {key}\n" for key in host_keys)
        workdir = host.private_temp_dir("worldland-lane-", {"known_hosts": lines})
        command = start_command(SERVER, nonce) if nonce is not None else None
        argv = ssh_argv(loc, creds, workdir / "known_hosts", command)
        process = host.spawn(argv, pipe_size=_PIPE_SIZE)
        if process is None:
            host.remove_temp_dir(workdir)
            raise LaneUnavailable("the OpenSSH client (ssh) is not installed", stopped=True)
        lane = cls(process, workdir, host, f"{loc.host}:{loc.port}")
        if spawned is not None:
            spawned(lane)
        try:
            with lane._using_pipes():
                lane._handshake(nonce)
        except LaneUnavailable as e:
            e.stopped = lane._dead
            lane.kill()
            raise
        except BaseException:
            lane.kill()
            raise
        return lane

    def _handshake(self, nonce: str | None) -> None:
        try:
            self._send_raw(self._codec.init())
            if nonce is not None:
                self._greeted(nonce)
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
                self.block = request_block(*self._codec.limits(body))

    def _greeted(self, nonce: str) -> None:
        """Skip what the login shell printed, up to our server's hello; keep what follows.

        An account forced to ``internal-sftp`` runs no command: its VERSION comes at once,
        and the lane takes that server as it is.
        """
        seen = b""
        while len(seen) < GREETING_MAX:
            try:
                chunk = os.read(self._in, 4096)
            except OSError as e:
                raise ConnectionDropped(f"the OpenSSH client went away: {e}") from e
            if not chunk:
                raise ConnectionDropped("the SSH connection closed")
            seen += chunk
            said = greeting(seen, HELLO, nonce)
            if said is not None:
                ours, self._pending = said
                self.far_end = "worldland" if ours else "sftp"
                return
        raise LaneUnavailable("the far side printed more than 64 KiB before starting the lane")

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

        Safe from another thread than the one using a file it :meth:`opened`: that thread
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
        if self._pending:
            got = min(len(view), len(self._pending))
            view[:got] = self._pending[:got]
            self._pending = self._pending[got:]
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

    @contextlib.contextmanager
    def opened(
        self, path: str, *, write: bool, start: int, ranged: bool = False
    ) -> Iterator[RemoteFile]:
        """``path`` open for :mod:`.pipeline`; the pipes stay open until the block ends.

        Closed when the block ends without an error; after one, answers may still be owed,
        so the engine kills the lane instead.
        """
        with self._using_pipes():
            if not write:
                flags, mode = PF_READ, None
            elif ranged:  # one range of a file several lanes write: created if need be, never cut
                flags, mode = PF_WRITE | PF_CREAT, 0o600
            elif start:
                flags, mode = PF_WRITE | PF_READ, None
            else:
                flags, mode = PF_WRITE | PF_CREAT | PF_TRUNC, 0o600
            kind, body = self._call(self._codec.open(path, flags, mode))
            handle = self._codec.handle(kind, body, f"cannot open {shown(path)} on the remote")
            yield _LaneFile(self, handle, path)
            kind, body = self._call(self._codec.close(handle))
            self._codec.expect_status(kind, body, f"closing {shown(path)} on the remote")


class _LaneFile:
    """A file open through the lane: requests framed by the codec, answers read off the pipe."""

    def __init__(self, lane: OpenSshLane, handle: bytes, path: str) -> None:
        self._lane = lane
        self._codec = lane._codec
        self._handle = handle
        self._path = path
        self._writing = f"writing {shown(path)} on the remote"
        self._reading = f"reading {shown(path)} on the remote"

    def ask(self, reads: list[tuple[int, int]]) -> None:
        # One pipe write for the batch: one wake-up of ssh, sshd and sftp-server, not many.
        self._lane._send_raw(b"".join(self._codec.read(self._handle, o, n) for o, n in reads))

    def answer(self, into: memoryview) -> int:
        length, kind = self._codec.frame(self._lane._read_exact(5))
        if kind != DATA:  # end of file, or a refusal
            body = self._lane._read_exact(length - 1)
            self._codec.expect_status(kind, body, self._reading, FX_EOF)
            return 0
        head = self._lane._read_exact(DATA_HEAD)
        n = self._codec.data_length(head, length, len(into), self._path)
        self._lane._read_into(into[:n])
        return n

    def write(self, offset: int, data: memoryview) -> None:
        self._lane._send_raw(self._codec.write(self._handle, offset, len(data)), data)

    def written(self) -> None:
        kind, body = self._lane._receive()
        self._codec.expect_status(kind, body, self._writing)

    def flush(self) -> None:
        if self._lane.can_fsync:
            request = self._codec.extended(b"fsync@openssh.com", string(self._handle))
            kind, body = self._lane._call(request)
            what = f"flushing {shown(self._path)} to disk on the remote"
            self._codec.expect_status(kind, body, what)
