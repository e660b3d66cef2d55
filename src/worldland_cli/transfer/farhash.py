"""The far side's sha256, computed while the data streams instead of after it.

On this 2-core development machine the far side's hash of a finished file cost ~1.1 s per GiB
of wall time on top of the stream (docs/transfer.md, "Benchmark"). Here a small python3
program runs over an exec channel *during* the stream and reports two things once the client
says its copy is complete (by closing the program's stdin):

* the sha256 of the first ``size`` bytes as the far side read them from its own disk, and
* whether the file changed while it was being copied: its inode, size, mtime and ctime are
  compared with what the program saw when it finished reading, so a write, a truncation or a
  replacement after the hash was taken is caught even though the hash itself is already done.

It is used when receiving: the far side hashes the remote source while we download it. Our
bytes and the far side's hash are two reads of the same file within the transfer window; if
the file changed in between, either the hashes differ or the stat check says "changed".
(Uploads are hashed after the last write instead: following a growing ``NAME.part`` gave
false "changed" verdicts under load.)

Where python3 or exec channels are missing (an sftp-only account), :meth:`FarHash.result`
returns ``None`` and the caller falls back to the serial check of :func:`session.remote_sha256`,
which keeps the guarantee at the old cost.
"""

from __future__ import annotations

import contextlib
import re
import shlex

import asyncssh

# Runs on the far side (python >= 3.6). argv: path, size.
# Prints "<sha256> <bytes hashed>" then "same" or "changed"; exit 0 when it could read the file.
_PROGRAM = r"""
import hashlib, os, select, sys
path, size = sys.argv[1], int(sys.argv[2])
def key(st):
    return (st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)
fd = os.open(path, os.O_RDONLY)
base = key(os.fstat(fd))
h = hashlib.sha256()
pos = 0
closed = changed = False
def wait(timeout):
    global closed
    if not closed and select.select([0], [], [], timeout)[0]:
        closed = not os.read(0, 65536)
    return closed
while pos < size:
    block = os.pread(fd, min(size - pos, 1 << 20), pos)
    if not block:
        break
    h.update(block)
    pos += len(block)
sys.stdout.write("%s %d\n" % (h.hexdigest(), pos))
sys.stdout.flush()
while not wait(None):
    pass
try:
    changed = changed or key(os.stat(path)) != base
except OSError:
    changed = True
sys.stdout.write("changed\n" if changed else "same\n")
"""

_NO_PYTHON = 97  # the wrapper's exit status when the far side has no python3
_ANSWER = re.compile(r"^([0-9a-f]{64}) (\d+)\n(same|changed)\n$")


class FarHash:
    """One far-side hash running alongside a transfer; see the module docstring."""

    def __init__(self, process: asyncssh.SSHClientProcess[str] | None, size: int) -> None:
        self._process = process
        self._size = size

    @classmethod
    async def start(cls, conn: asyncssh.SSHClientConnection, path: str, size: int) -> FarHash:
        """Start hashing ``path`` on the far side; never fails (a dud reports ``None``)."""
        script = (
            f'command -v python3 >/dev/null 2>&1 || exit {_NO_PYTHON}; exec python3 -c "$0" "$@"'
        )
        command = " ".join(
            shlex.quote(a) for a in ("sh", "-c", script, _PROGRAM, path, str(int(size)))
        )
        try:
            process = await conn.create_process(command, stderr=asyncssh.DEVNULL)
        except asyncssh.ChannelOpenError:
            return cls(None, size)
        return cls(process, size)

    async def result(self) -> tuple[str, bool] | None:
        """Tell the far side our copy is complete; its (sha256, changed), or None if unusable.

        Called only after every byte has arrived (and, when sending, been fsynced), so the
        "changed" verdict covers the whole transfer window.
        """
        process = self._process
        if process is None:
            return None
        with contextlib.suppress(BrokenPipeError):
            process.stdin.write_eof()
        output = await process.stdout.read()
        await process.wait_closed()
        found = _ANSWER.match(output)
        if process.exit_status != 0 or found is None:
            return None
        digest, hashed, verdict = found.groups()
        return digest, verdict == "changed" or int(hashed) != self._size

    def cancel(self) -> None:
        """Stop the far-side program (the transfer failed before it was asked for a result)."""
        if self._process is not None:
            with contextlib.suppress(OSError, asyncssh.Error):
                self._process.close()
            self._process = None
