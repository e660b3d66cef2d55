"""The OpenSSH lane's ``ssh`` command line, and the first lane's ``ssh`` started early.

Why a module of its own: it imports nothing heavy (no asyncssh, no asyncio), so the command
can start the first lane's ``ssh`` (:class:`EarlyLane`) before it imports the rest of the
transfer. That import (asyncssh above all) takes ~0.1 s before anything else can happen,
and the lane's handshake (a login of its own, mostly the far side's work) fits in it; the
first byte of a large file no longer waits for it. :mod:`.lane` runs the SFTP session on
the pipes of either kind of start.

Trust of an early lane: it is started before asyncssh could read the known_hosts file, so
OpenSSH's own ``ssh`` reads it (``UserKnownHostsFile``, strict, no global file, nothing
ever written to it): the keys it accepts for the host are the entries of the file the
connection beside it trusts, matched by the reference implementation of those rules. Only
for an ``ssh://`` destination: a pod's key is pinned by the hub, which is asked first.
"""

from __future__ import annotations

import secrets
import shlex
from pathlib import Path
from typing import TYPE_CHECKING

from worldland_cli.host import Host
from worldland_cli.transfer.credentials import CONNECT_TIMEOUT, KEEPALIVE_INTERVAL, Credentials
from worldland_cli.transfer.farprogram import START
from worldland_cli.transfer.laneserver import PROGRAM as SERVER
from worldland_cli.transfer.model import Options
from worldland_cli.transfer.targets import SshLocation

if TYPE_CHECKING:
    import subprocess

# A file of this size or more travels through a lane (:mod:`.lanes`); below it a second
# handshake would cost more than it saves.
LANE_MIN = 8 << 20
PIPE_SIZE = 1 << 20
ALIAS = "worldland-pinned-peer"  # the name a lane's pinned keys are listed under
# AES-GCM ahead of OpenSSH's default order: with AES-NI it is the cheapest cipher at both ends.
_CIPHERS = "^aes128-gcm@openssh.com,aes256-gcm@openssh.com"
# curve25519 first: what the asyncssh connection beside the lane negotiates anyway, and
# ~0.1 s faster per handshake here than OpenSSH 9's default sntrup761 hybrid. (An OpenSSH
# older than 8.4 rejects the "^" syntax; the lane then does not start and asyncssh carries.)
_KEX = "^curve25519-sha256,curve25519-sha256@libssh.org"


def ssh_argv(
    loc: SshLocation,
    creds: Credentials,
    known_hosts: Path,
    command: str | None = None,
    *,
    pinned: bool = True,
) -> list[str]:
    """The ``ssh`` command line of a lane; nothing in ssh_config or the agent can widen it.

    ``command``: what the far side runs (our server, :func:`server_command`); else the
    account's ``sftp`` subsystem. ``pinned``: ``known_hosts`` lists the trusted keys under
    :data:`ALIAS`; else it is the user's file, read for the host as OpenSSH reads it.
    """
    argv = ["ssh", "-F", "none", "-x", "-a", "-T", "-e", "none", "-p", str(loc.port)]
    options = {
        "BatchMode": "yes",
        "StrictHostKeyChecking": "yes",
        "UserKnownHostsFile": str(known_hosts),
        "GlobalKnownHostsFile": "none",
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
    if pinned:
        options["HostKeyAlias"] = ALIAS
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


def server_command(nonce: str) -> str:
    """The far side's command for our own SFTP server (:mod:`.laneserver`), one shell word
    each, as its login shell will read them."""
    return " ".join(shlex.quote(a) for a in ("sh", "-c", START, SERVER, nonce))


class EarlyLane:
    """The first lane's ``ssh``, started by the command before the transfer is imported.

    :meth:`claim` hands it over once (to :meth:`.lanes.Lanes.start_first`, whose
    :meth:`.lane.OpenSshLane.adopt` takes its process); whoever started it calls
    :meth:`discard` when the transfer ends, which stops it if nobody claimed it.
    """

    def __init__(self, process: subprocess.Popen[bytes], nonce: str, peer: str, host: Host) -> None:
        self._process: subprocess.Popen[bytes] | None = process
        self.nonce = nonce
        self.peer = peer  # "host:port", as the lane's errors name it
        self._host = host

    @classmethod
    def start(
        cls,
        loc: SshLocation,
        creds: Credentials,
        opts: Options,
        sizes: list[int] | None,
        host: Host | None = None,
    ) -> EarlyLane | None:
        """Start ``ssh`` towards ``loc`` running our server, where the first lane would open
        with the connection anyway (:meth:`.lanes.Lanes.start_first`): a file of
        :data:`LANE_MIN` or more among ``sizes`` (None: not known yet, as for a receive), no
        --dry-run, --no-openssh or --lanes N > 1. None where it is not wanted, or cannot start
        this early (a pinned key, no known_hosts file, no ``ssh``)."""
        host = host or Host()
        wanted = sizes is None or any(size >= LANE_MIN for size in sizes)
        if not wanted or opts.dry_run or not opts.openssh or (opts.lanes or 1) != 1:
            return None
        if loc.host_key is not None or not host.exists(str(creds.known_hosts.absolute())):
            return None
        nonce = secrets.token_hex(8)
        argv = ssh_argv(
            loc, creds, creds.known_hosts.absolute(), server_command(nonce), pinned=False
        )
        process = host.spawn(argv, pipe_size=PIPE_SIZE)
        if process is None:
            return None
        return cls(process, nonce, f"{loc.host}:{loc.port}", host)

    def claim(self) -> EarlyLane | None:
        """A holder of this ``ssh`` for whoever will use it (this one then holds nothing);
        None after that or after :meth:`discard`."""
        process = self.take()
        return None if process is None else EarlyLane(process, self.nonce, self.peer, self._host)

    def take(self) -> subprocess.Popen[bytes] | None:
        """The ``ssh`` process, once; None after that or after :meth:`discard`."""
        process, self._process = self._process, None
        return process

    def discard(self) -> None:
        """Stop the ``ssh`` if nobody took it."""
        process = self.take()
        if process is not None:
            self._host.stop(process)
            for pipe in (process.stdin, process.stdout, process.stderr):
                if pipe is not None:
                    pipe.close()
