"""Transfer failures a person can act on, each tied to the exit code scripts rely on."""

from __future__ import annotations

import asyncio
from typing import Any

from worldland_cli.errors import ActionableError, ExitCode
from worldland_cli.transfer.display import shown

# What to do about a far side that breaks the SFTP protocol: nothing it sends can be trusted.
HOSTILE_HINT = "the pod's SFTP server is broken or hostile; do not trust what it sends"


class TransferError(ActionableError):
    """A transfer could not be completed; ``hint`` says what to do about it."""

    exit_code: int = ExitCode.FAILED


class UnreachableError(TransferError):
    """The pod or sshd could not be reached, or the link kept dropping past the retries."""

    exit_code = ExitCode.UNREACHABLE


class DeniedError(TransferError):
    """Authentication was refused, or we refused the server (an unknown or changed host key)."""

    exit_code = ExitCode.DENIED


class HostKeyError(DeniedError):
    """The server's host key is unknown or differs from the trusted one; never auto-accepted."""


class RemoteRefused(TransferError):
    """The far side's SFTP server refused a request; ``code`` is its SFTP status.

    Kept so that a refusal can be explained by what it means (``failures.py``): permission
    denied, or a failure that statvfs shows to be a full disk.
    """

    def __init__(self, message: str, code: int, reason: str) -> None:
        super().__init__(message)
        self.code = code
        self.reason = reason


class ChecksumError(TransferError):
    """The bytes that arrived differ from the source; the partial file was discarded."""


class UnsafePathError(TransferError):
    """A name would land outside the destination directory (``../x``, absolute, symlink out)."""


class DestinationExistsError(TransferError):
    """The destination file exists and ``--overwrite`` was not given."""


def sent_more_than_asked(remote: str) -> TransferError:
    """A READ answered with more bytes than it asked for: a protocol violation.

    Both data paths (asyncssh's and the OpenSSH lane's) refuse such an answer before writing
    any of it, so a pod cannot make us write past the range we asked for or the size it
    announced.
    """
    return TransferError(
        f"reading {shown(remote)}: the server sent more bytes than it was asked for (a protocol "
        "violation); nothing past the range asked for was written",
        HOSTILE_HINT,
    )


def checksum_failed(rel: str, received: str, sent: str, where: str) -> ChecksumError:
    """The two ends' sha256 of one file disagree (``where``: "sent" or "source")."""
    return ChecksumError(
        f"{shown(rel)}: checksum mismatch ({where}: {sent[:16]}..., received "
        f"{received[:16]}...); the partial file was deleted",
        "the source may have changed during the transfer; run the command again",
    )


def changed_during(rel: str, what: str) -> ChecksumError:
    """The far side saw ``what`` change while it was copied: no hash can vouch for it."""
    return ChecksumError(
        f"{shown(rel)}: {what} changed during the transfer, so no checksum can vouch for "
        "it; the partial file was deleted",
        "run the command again once nothing else writes to the file",
    )


def not_ours(parts: list[str], where: str) -> DestinationExistsError:
    """Refusing ``.part`` files we did not write (on either side): they are someone's own."""
    return DestinationExistsError(
        f"{where}: {', '.join(shown(p) for p in parts[:5])}"
        + (f" and {len(parts) - 5} more" if len(parts) > 5 else "")
        + " (not written by worldland, so not resumed from or replaced)",
        "move them away, or pass --overwrite to replace them",
    )


class ConnectionDropped(Exception):
    """Internal: the link went away mid-transfer; the engine reconnects and resumes."""


def retrieved(future: asyncio.Future[Any]) -> None:
    """A done-callback that reads a future's failure, so one nobody awaits (a request given
    up on, a probe whose channel closed first) is not logged by asyncio as never retrieved."""
    if not future.cancelled():
        future.exception()
