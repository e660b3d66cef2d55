"""What either end's disk refuses, as one line a person can act on: permission, space.

A file that may not be read or written (on this computer, or on the pod) used to end in a
traceback for files under 8 MiB, with nothing on stdout under --json; a full disk said
"Failure" (OpenSSH's sftp-server has no status for ENOSPC). Now each is one line naming the
side, the path and what to do, with the free space for a full disk. All exit 1 (failed):
a mode or a full disk is fixed with chmod or by freeing space, not by logging in again,
which is what exit 4 (denied) tells a script to do.

A full disk keeps what a resume needs: a ``.part`` is a verified prefix only once both
sides hash it, which the next run does, and finished files are skipped by it.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import os
import posixpath
from collections.abc import Awaitable, Iterator
from pathlib import Path
from typing import TypeVar

import asyncssh

from worldland_cli.errors import ExitCode
from worldland_cli.transfer.display import shown
from worldland_cli.transfer.errors import (
    HOSTILE_HINT,
    ConnectionDropped,
    RemoteRefused,
    TransferError,
)
from worldland_cli.transfer.farreplies import OsFailure
from worldland_cli.transfer.model import Leg
from worldland_cli.transfer.targets import SshLocation

_DROPS: tuple[type[BaseException], ...] = (
    asyncssh.ConnectionLost,
    asyncssh.DisconnectError,
    asyncssh.SFTPConnectionLost,
    asyncssh.SFTPNoConnection,
    asyncssh.ChannelOpenError,
    ConnectionError,
    TimeoutError,
    BrokenPipeError,
    ConnectionDropped,
)
T = TypeVar("T")
_DENIED = (errno.EACCES, errno.EPERM)
_FULL = (errno.ENOSPC, errno.EDQUOT)
_RESUME = "then run the same command again: files already there are skipped, .part files resume"
FX_PERMISSION_DENIED = 3  # SFTP status codes (draft-ietf-secsh-filexfer-02)
FX_FAILURE = 4


def amount(nbytes: int) -> str:
    """A size for people: 812.0 KiB, 3.2 GiB."""
    size = float(nbytes)
    for unit in ("bytes", "KiB", "MiB", "GiB", "TiB"):
        if size < 1024 or unit == "TiB":
            return f"{nbytes} bytes" if unit == "bytes" else f"{size:.1f} {unit}"
        size /= 1024
    raise AssertionError("unreachable")


def local_free(path: str | Path) -> int:
    """Bytes free to us on the file system that holds ``path`` (-1 when unknown)."""
    where = Path(path)
    while True:
        try:
            st = os.statvfs(where)
        except OSError:
            if where.parent == where:
                return -1
            where = where.parent
            continue
        return st.f_bavail * st.f_frsize


def _denied(side: str, doing: str, path: str | Path, reason: str = "") -> TransferError:
    fix = "on the pod" if side == "remote" else "here"
    # The far side's own words, when they say more than the standard text (shown escaped).
    said = f" ({shown(reason)})" if reason and reason.lower() != "permission denied" else ""
    return TransferError(
        f"permission denied on {_side(side)}: cannot {doing} {shown(str(path))}{said}",
        f"check its permissions {fix} (ls -ld), or choose another "
        + ("remote directory" if side == "remote" else "path"),
    )


def _full(side: str, path: str | Path, free: int) -> TransferError:
    left = f" ({amount(free)} free there)" if free >= 0 else ""
    return TransferError(
        f"no space left on {_side(side)}'s disk (ENOSPC): cannot write {shown(str(path))}{left}",
        f"free some space{' on the pod' if side == 'remote' else ''}, {_RESUME}",
    )


def _side(side: str) -> str:
    return "the remote" if side == "remote" else "this computer"


def local_failure(e: OSError, path: str | Path, doing: str) -> TransferError:
    """An OSError from this computer's disk, reading or writing ``path``."""
    where = e.filename if isinstance(e.filename, str) else str(path)
    if e.errno in _DENIED:
        return _denied("local", doing, where)
    if e.errno in _FULL:
        return _full("local", where, local_free(where))
    return TransferError(f"cannot {doing} {shown(where)} on this computer: {shown(e.strerror)}")


def remote_os_failure(failure: OsFailure, path: str, doing: str) -> TransferError:
    """An OS error the far-side helper met, reading or writing ``path`` on the pod."""
    if failure.errno in _DENIED:
        return _denied("remote", doing, path)
    if failure.errno in _FULL:
        return _full("remote", path, failure.free)
    return TransferError(f"cannot {doing} {shown(path)} on the remote: {shown(failure.text)}")


def remote_refusal(
    code: int, reason: str, path: str, doing: str, free: int | None
) -> TransferError:
    """An SFTP status refusing to ``doing`` ``path``; ``free`` the far file system's free
    bytes where a failure may be a full disk (sftp-server says only "Failure" then)."""
    if code == FX_PERMISSION_DENIED:
        return _denied("remote", doing, path, reason)
    if code == FX_FAILURE and free is not None:
        return _full("remote", path, free)
    return TransferError(f"cannot {doing} {shown(path)} on the remote: {shown(reason)}")


class Interrupted(TransferError):
    """Ctrl-C: what arrived is verified and kept, and the same command picks up from there."""

    exit_code = ExitCode.INTERRUPTED


async def interruptible(job: Awaitable[T]) -> T:
    """``job``, with Ctrl-C as an error a person can act on (exit 130, one JSON document).

    ``asyncio.run`` answers SIGINT by cancelling its task; the engine's clean-up has run by
    the time the cancellation gets here (lanes killed, the far-side helper told to remove
    its staging files). Typer turned it into a silent exit 130 with nothing on stdout, even
    under --json.
    """
    try:
        return await job
    except asyncio.CancelledError:
        raise Interrupted(
            "interrupted (Ctrl-C); what arrived is verified and kept",
            "run the same command again: files already there are skipped, .part files resume",
        ) from None


def is_drop(exc: BaseException) -> bool:
    """Whether ``exc`` is the link going away (retried), not a refusal (reported)."""
    return isinstance(exc, _DROPS)


async def explain(
    exc: BaseException, sftp: asyncssh.SFTPClient, leg: Leg, sending: bool, left: int
) -> BaseException:
    """``exc`` from moving ``leg``, as one line when either disk refused it; else ``exc``.

    ``left`` is what was still to be written when it failed: a remote "Failure" while
    writing, with less than that free on the far file system, is a full disk.
    """
    if is_drop(exc) or not isinstance(exc, (OSError, RemoteRefused, asyncssh.SFTPError)):
        return exc
    if isinstance(exc, OSError):
        return local_failure(exc, leg.local, "read" if sending else "write")
    if isinstance(exc, asyncssh.SFTPBadMessage):
        return exc
    code, reason = exc.code, str(exc.reason)
    free = None
    if sending and code == FX_FAILURE:
        with contextlib.suppress(asyncssh.Error, OSError):
            vfs = await sftp.statvfs(posixpath.dirname(leg.remote) or ".")
            free = vfs.bavail * vfs.frsize
        if free is not None and free >= max(left, 1):
            free = None
    return remote_refusal(code, reason, leg.remote, "write" if sending else "read", free)


def actionable(exc: BaseException, loc: SshLocation, sending: bool) -> BaseException:
    """An SFTP error the far side answered with, as a TransferError a person can read.

    Its reason is the far side's text: it is shown escaped, and never as a traceback. A bad
    message is asyncssh refusing what the far side sent (a packet over its 4 MiB limit, one
    cut short), not a refusal by the far side, and is named as such.
    """
    if isinstance(exc, asyncssh.SFTPBadMessage):
        return TransferError(
            f"the remote {loc.host}:{loc.port} broke the SFTP protocol: {shown(exc.reason)}",
            HOSTILE_HINT,
        )
    if isinstance(exc, asyncssh.SFTPError):
        return TransferError(f"the remote refused a request: {shown(exc.reason)}")
    if isinstance(exc, OSError):  # this computer's disk, outside one file's move
        return local_failure(exc, exc.filename or "", "read" if sending else "write")
    return exc


def flatten(group: BaseException) -> Iterator[BaseException]:
    """Every exception in ``group``, however deeply grouped (a TaskGroup of workers)."""
    if isinstance(group, BaseExceptionGroup):
        for inner in group.exceptions:
            yield from flatten(inner)
    else:
        yield group
