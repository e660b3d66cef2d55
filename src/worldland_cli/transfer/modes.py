"""The modes received files and directories get: the far side's permission bits, masked.

A pod chooses the modes it announces. Kept as they were, a received file could arrive setuid,
setgid or world-writable, and a directory sticky and 0777, open to every user of this machine.
As OpenSSH's sftp does, what we create gets ``mode & 0o777 & ~umask``: never setuid, setgid or
sticky, and never more than the renter's umask allows (read once per transfer, through
:meth:`worldland_cli.host.Host.umask`).
"""

from __future__ import annotations


def received_mode(announced: int, umask: int) -> int:
    """The mode a received file or directory gets for the far side's ``announced`` mode."""
    return announced & 0o777 & ~umask
