"""The modes received files and directories get: the far side's permission bits, masked.

A pod chooses the modes it announces. Kept as they were, a received file could arrive setuid,
setgid or world-writable, and a directory sticky and 0777, open to every user of this machine.
As OpenSSH's sftp does, what we create gets ``mode & 0o777 & ~umask``: never setuid, setgid or
sticky, and never more than the renter's umask allows.
"""

from __future__ import annotations

import os

from worldland_cli.host import Host


def current_umask(host: Host | None = None) -> int:
    """The process's umask, read once per transfer.

    Linux 4.7 and later say it in /proc/self/status, which leaves it untouched. Elsewhere it
    can only be read by setting it and setting it back: that is process-wide, so it happens
    before the transfer starts any thread.
    """
    status = (host or Host()).read_text("/proc/self/status") or ""
    for line in status.splitlines():
        if line.startswith("Umask:"):
            return int(line.split()[1], 8)
    mask = os.umask(0o077)
    os.umask(mask)
    return mask


def received_mode(announced: int, umask: int) -> int:
    """The mode a received file or directory gets for the far side's ``announced`` mode."""
    return announced & 0o777 & ~umask
