"""A hostile pod: an SSH server in the test process whose SFTP server lies on purpose.

Why: a real sshd only says true things about real files, and the renter's machine must survive
a pod that lies. This server serves a directory on disk through asyncssh's SFTP server, so both
of the engine's data paths read the same files (its asyncssh channel, and the OpenSSH lane,
whose ``ssh -s sftp`` reaches the same port with the same pinned host key and client key), and
applies the lies a test asks for in :class:`Lies`: other modes or file types, more bytes than
asked for on READ, extra names in a listing (odd ones, or one name twice), answers whose
frame announces a length that is not theirs, answers cut short inside a field, and limits it
does not have. It also notes the size of every READ and WRITE it is asked for, so a test can
see what a client dared to ask.

Exec requests are refused, as on an sftp-only account, so the engine checks what it received
by re-reading it over SFTP: the lies reach every path the engine takes.

The server runs on its own event loop in a thread, so tests call the engine with
``asyncio.run`` or the CLI runner exactly as they do against the real sshd.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import struct
import threading
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from unittest import mock

import asyncssh

from worldland_cli.transfer.ssh import Credentials
from worldland_cli.transfer.targets import SshLocation


@dataclass
class Lies:
    """What the server says that is not true; paths are absolute, as the client asks for them.

    ``modes``: the st_mode (type and permission bits) announced for a path, by stat, lstat
    and in listings. ``extra_read``: bytes added to every READ answer that has data.
    ``extra_names``: entries added to a directory's listing, each a name and the st_mode
    announced for it. ``refusals``: opening the path fails with this text as the reason.
    ``frame_lengths``: for "open" or "read", the length the frame of every answer to such a
    request announces (the SFTP length field, 0 to 2**32 - 1). The answer is a STATUS, which
    either request may get, so a client cannot tell its size from its type; its bytes never
    follow, the server hangs up instead. ``limits``: the largest READ and WRITE announced
    by ``limits@openssh.com``, instead of asyncssh's own 4 MiB.

    Answers cut short reach the OpenSSH client alone (the lane's ``ssh``; asyncssh's own SFTP
    client is answered truly, so the lie meets the lane and nothing else). ``cut_version``:
    the bytes of its VERSION after the type, instead of the true ones. ``cut_open``: every
    OPEN is answered with a STATUS holding these bytes after the request id.
    """

    modes: dict[str, int] = field(default_factory=dict)
    extra_read: int = 0
    extra_names: dict[str, list[tuple[str, int]]] = field(default_factory=dict)
    refusals: dict[str, str] = field(default_factory=dict)
    frame_lengths: dict[str, int] = field(default_factory=dict)
    limits: tuple[int, int] | None = None
    cut_version: bytes | None = None
    cut_open: bytes | None = None


@dataclass
class Asked:
    """The size of each READ and WRITE request the server received, in order."""

    reads: list[int] = field(default_factory=list)
    writes: list[int] = field(default_factory=list)


class _LyingSFTPServer(asyncssh.SFTPServer):
    """asyncssh's file-system SFTP server with the lies of :class:`Lies` applied."""

    lies: Lies
    asked: Asked

    def _attrs(self, path: bytes, found: os.stat_result) -> asyncssh.SFTPAttrs:
        attrs = asyncssh.SFTPAttrs.from_local(found)
        mode = self.lies.modes.get(os.fsdecode(path))
        if mode is not None:
            attrs.permissions = mode
        return attrs

    def lstat(self, path: bytes) -> asyncssh.SFTPAttrs:
        return self._attrs(path, os.lstat(path))

    def stat(self, path: bytes) -> asyncssh.SFTPAttrs:
        return self._attrs(path, os.stat(path))

    def _lying_frame(self, request: str) -> None:
        """Start an answer whose frame announces ``frame_lengths[request]`` bytes, then hang up.

        The frame goes out ahead of the real answer, which the closed channel then drops.
        """
        length = self.lies.frame_lengths.get(request)
        if length is not None:
            self.channel.write(struct.pack(">IB", length, asyncssh.FXP_STATUS))
            self.channel.close()

    def open(self, path: bytes, pflags: int, attrs: asyncssh.SFTPAttrs) -> object:
        refusal = self.lies.refusals.get(os.fsdecode(path))
        if refusal is not None:
            raise asyncssh.SFTPPermissionDenied(refusal)
        self._lying_frame("open")
        return super().open(path, pflags, attrs)

    def read(self, file_obj: object, offset: int, size: int) -> bytes:
        self.asked.reads.append(size)
        data: bytes = super().read(file_obj, offset, size)  # type: ignore[assignment]
        self._lying_frame("read")
        return data + b"\xee" * self.lies.extra_read if data else data

    def write(self, file_obj: object, offset: int, data: bytes) -> int:
        self.asked.writes.append(len(data))
        return super().write(file_obj, offset, data)  # type: ignore[return-value]

    async def scandir(self, path: bytes) -> AsyncIterator[asyncssh.SFTPName]:
        async for name in super().scandir(path):
            mode = self.lies.modes.get(os.fsdecode(os.path.join(path, name.filename)))
            if mode is not None:
                name.attrs.permissions = mode
            yield name
        for extra, mode in self.lies.extra_names.get(os.fsdecode(path), []):
            attrs = asyncssh.SFTPAttrs(type=None, size=0, permissions=mode, mtime=0, atime=0)
            yield asyncssh.SFTPName(extra.encode(), attrs=attrs)


_HANDLERS = asyncssh.sftp.SFTPServerHandler._packet_handlers
_TRUE_LIMITS: Any = _HANDLERS[b"limits@openssh.com"]


async def _lying_limits(handler: Any, packet: Any) -> asyncssh.sftp.SFTPLimits:
    """asyncssh's answer to ``limits@openssh.com``, with the limits a hostile pod lies about.

    The handler, not the SFTPServer, answers this request, so the lie goes into asyncssh's
    table of handlers while a hostile pod runs; a server that is not one is answered truly.
    """
    limits: asyncssh.sftp.SFTPLimits = await _TRUE_LIMITS(handler, packet)
    server = handler._server
    if isinstance(server, _LyingSFTPServer) and server.lies.limits is not None:
        limits.max_read_len, limits.max_write_len = server.lies.limits
    return limits


_TRUE_SEND: Any = asyncssh.sftp.SFTPServerHandler.send_packet


def _lying_send(handler: Any, pkttype: int, pktid: int | None, *args: bytes) -> None:
    """asyncssh's server sending an answer, or in its place the cut-short one a lie asks for.

    Every answer passes here (the VERSION, and each request's: its id, then its body), so a
    cut-short one carries the request id of the request it answers.
    """
    server = handler._server
    client = str(handler._reader.get_extra_info("client_version", ""))
    if isinstance(server, _LyingSFTPServer) and "OpenSSH" in client:
        lies = server.lies
        if pkttype == asyncssh.FXP_VERSION and lies.cut_version is not None:
            args = (lies.cut_version,)
        elif pkttype == asyncssh.FXP_HANDLE and lies.cut_open is not None:
            pkttype, args = asyncssh.FXP_STATUS, (args[0], lies.cut_open)
    _TRUE_SEND(handler, pkttype, pktid, *args)


def _key_files(directory: Path) -> tuple[asyncssh.SSHKey, Path]:
    host_key = asyncssh.generate_private_key("ssh-ed25519")
    client_key = asyncssh.generate_private_key("ssh-ed25519")
    client_file = directory / "id_ed25519"
    client_key.write_private_key(str(client_file))
    os.chmod(client_file, 0o600)
    client_key.write_public_key(str(client_file) + ".pub")
    return host_key, client_file


@dataclass
class HostileServer:
    """A running hostile pod and what a client needs to reach it."""

    host: str
    port: int
    host_public_key: str
    client_key: Path
    known_hosts: Path
    lies: Lies
    asked: Asked

    @property
    def creds(self) -> Credentials:
        return Credentials(
            identity=self.client_key, identity_explicit=True, known_hosts=self.known_hosts
        )

    def location(self, path: Path | str) -> SshLocation:
        """Where the engine finds ``path``, with this server's host key pinned (as for pods)."""
        return SshLocation(self.host, self.port, "renter", str(path), self.host_public_key)

    def url(self, path: Path | str) -> str:
        return f"ssh://renter@{self.host}:{self.port}{path}"


@contextlib.contextmanager
def hostile_server(directory: Path, lies: Lies | None = None) -> Iterator[HostileServer]:
    """Run a hostile pod on a free loopback port until the block ends.

    ``directory`` holds its keys; the files it serves are wherever the test's paths point.
    """
    directory.mkdir(parents=True, exist_ok=True)
    told = lies or Lies()
    asked = Asked()
    host_key, client_file = _key_files(directory)
    authorized = asyncssh.import_authorized_keys(Path(f"{client_file}.pub").read_text())

    def sftp_factory(chan: Any) -> asyncssh.SFTPServer:
        server = _LyingSFTPServer(chan)
        server.lies = told
        server.asked = asked
        return server

    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, name="hostile-pod", daemon=True)
    thread.start()

    async def listen() -> asyncssh.SSHAcceptor:
        return await asyncssh.listen(
            "127.0.0.1",
            0,
            server_host_keys=[host_key],
            authorized_client_keys=authorized,
            sftp_factory=sftp_factory,
            allow_scp=False,
        )

    acceptor = asyncio.run_coroutine_threadsafe(listen(), loop).result(timeout=10)
    port = acceptor.get_port()
    public = host_key.export_public_key("openssh").decode().split()
    known_hosts = directory / "known_hosts"
    known_hosts.write_text(f"[127.0.0.1]:{port} {public[0]} {public[1]}\n")
    try:
        with (
            mock.patch.dict(_HANDLERS, {b"limits@openssh.com": _lying_limits}),
            mock.patch.object(asyncssh.sftp.SFTPServerHandler, "send_packet", _lying_send),
        ):
            yield HostileServer(
                host="127.0.0.1",
                port=port,
                host_public_key=f"{public[0]} {public[1]}",
                client_key=client_file,
                known_hosts=known_hosts,
                lies=told,
                asked=asked,
            )
    finally:

        async def stop() -> None:
            acceptor.close()
            await acceptor.wait_closed()

        asyncio.run_coroutine_threadsafe(stop(), loop).result(timeout=10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=10)
        loop.close()
