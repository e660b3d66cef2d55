"""The far side's sha256, computed while the data streams instead of after it.

On this 2-core development machine the far side's hash of a finished GiB cost 1.2-1.6 s of
wall time on top of the stream (docs/transfer.md, "Benchmark"). Here a small python3 program
runs over an exec channel *during* the stream, in one of two modes:

* ``whole`` (receiving): it hashes the remote source while we download it. Once the client
  says its copy is complete (by closing the program's stdin) it reports the sha256 and whether
  the file changed while it was being copied: inode, size, mtime and ctime are compared with
  what it saw when it opened the file, so a write, a truncation or a replacement after the
  hash was taken is caught although the hash itself is already done. Our bytes and its hash
  are two reads of the same file within the transfer window; if the file changed in between,
  either the hashes differ or the stat check says "changed".
* ``follow`` (sending): the client tells it, line by line, how far the far side has
  *acknowledged* our writes to ``NAME.part``; it hashes exactly up to there, so it never reads
  a byte before sftp-server has written it (a follower that guessed from the file's growing
  size gave false verdicts under load). It also hands each hashed range to the disk's
  writeback, so the fsync before the rename finds little left to write. When stdin closes it
  hashes up to the last offset and reports the sha256, and "changed" if the ``.part`` was
  replaced or no longer has that size. What it vouches for is each byte as it was on the far
  disk right after the write that put it there was acknowledged.

Where python3 or exec channels are missing (an sftp-only account), :meth:`FarHash.result`
returns ``None`` and the caller falls back to the serial check of :func:`.ssh.remote_sha256`,
which keeps the guarantee at the old cost.
"""

from __future__ import annotations

import contextlib
import re
import shlex

import asyncssh

# Runs on the far side (python >= 3.6). argv: path, size, mode ("whole" or "follow").
# At nice 10: on a pod the renter's own work comes first, and the hash, which nothing waits on
# until the stream ends, fills the gaps the transfer's processes leave.
# Prints "<sha256> <bytes hashed>" then "same" or "changed"; exit 0 when it could read the file.
_PROGRAM = r"""
import hashlib, mmap, os, sys
path, size, follow = sys.argv[1], int(sys.argv[2]), sys.argv[3] == "follow"
try:
    os.nice(10)
except OSError:
    pass
advise = getattr(os, "posix_fadvise", None)
h = hashlib.sha256()
buf = bytearray(1 << 20)
view = memoryview(buf)
state = {"pos": 0, "file": None, "base": None}
def key(st):
    return (st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)
def hash_to(limit):
    f = state["file"]
    if f is None:
        f = state["file"] = open(path, "rb", buffering=0)
        state["base"] = os.fstat(f.fileno())
    pos = began = state["pos"]
    if not follow and pos < limit:
        # The whole source: hashed through a mapping, one copy of each byte less. Should the
        # file shrink meanwhile, SIGBUS ends this program and the caller's serial check runs.
        try:
            mapped = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
        except (ValueError, OSError):
            mapped = None
        if mapped is not None:
            whole = memoryview(mapped)
            end = min(limit, len(whole))
            while pos < end:
                h.update(whole[pos:min(end, pos + (1 << 20))])
                pos = min(end, pos + (1 << 20))
            whole.release()
            mapped.close()
    f.seek(pos)
    while pos < limit:
        n = f.readinto(view[:min(limit - pos, len(buf))])
        if not n:
            break
        h.update(view[:n])
        pos += n
    if follow and advise is not None and pos > began:
        advise(f.fileno(), began, pos - began, os.POSIX_FADV_DONTNEED)
    state["pos"] = pos
stdin = sys.stdin.buffer
if follow:
    limit = 0
    for line in stdin:
        limit = max(limit, int(line))
        hash_to(limit)
    hash_to(limit)
else:
    hash_to(size)
sys.stdout.write("%s %d\n" % (h.hexdigest(), state["pos"]))
sys.stdout.flush()
while stdin.read(65536):
    pass
try:
    now = os.stat(path)
    if follow:
        changed = now.st_ino != state["base"].st_ino or now.st_size != state["pos"]
    else:
        changed = key(now) != key(state["base"])
except OSError:
    changed = True
sys.stdout.write("changed\n" if changed else "same\n")
"""

_NO_PYTHON = 97  # the wrapper's exit status when the far side has no python3
_ANSWER = re.compile(r"^([0-9a-f]{64}) (\d+)\n(same|changed)\n$")


class FarHash:
    """One far-side hash running alongside a transfer; see the module docstring."""

    # In follow mode, acknowledged offsets are passed on in steps of at least this much.
    STEP = 8 << 20

    def __init__(
        self, process: asyncssh.SSHClientProcess[str] | None, size: int, follow: bool
    ) -> None:
        self._process = process
        self._size = size
        self._follow = follow
        self._told = 0

    @classmethod
    async def launch(
        cls, conn: asyncssh.SSHClientConnection, path: str, size: int, *, follow: bool
    ) -> FarHash:
        """Start hashing ``path``: the whole file (receiving), or following it as
        :meth:`advance` reports acknowledged writes (sending). Never fails: a dud (``result``
        None) where no exec channel or python3 is to be had."""
        script = (
            f'command -v python3 >/dev/null 2>&1 || exit {_NO_PYTHON}; exec python3 -c "$0" "$@"'
        )
        mode = "follow" if follow else "whole"
        command = " ".join(
            shlex.quote(a) for a in ("sh", "-c", script, _PROGRAM, path, str(int(size)), mode)
        )
        try:
            process = await conn.create_process(command, stderr=asyncssh.DEVNULL)
        except asyncssh.ChannelOpenError:
            return cls(None, size, follow)
        return cls(process, size, follow)

    def advance(self, reached: int) -> None:
        """Follow mode: the far side has acknowledged every byte below ``reached``."""
        if self._process is None or not self._follow or reached - self._told < self.STEP:
            return
        self._tell(reached)

    def _tell(self, reached: int) -> None:
        assert self._process is not None
        with contextlib.suppress(BrokenPipeError, asyncssh.Error, OSError):
            self._process.stdin.write(f"{int(reached)}\n")
        self._told = reached

    async def result(self) -> tuple[str, bool] | None:
        """Tell the far side our copy is complete; its (sha256, changed), or None if unusable.

        Called only after every byte has arrived (and, when sending, been acknowledged and
        fsynced), so the verdict covers the whole transfer window.
        """
        process = self._process
        if process is None:
            return None
        if self._follow:
            self._tell(self._size)
        with contextlib.suppress(BrokenPipeError, asyncssh.Error, OSError):
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
