"""Which ``NAME.part`` files this tool wrote: a sidecar ``NAME.part.worldland`` marks each.

A ``.part`` is resumed from, truncated or deleted only when it carries our mark. Any other
``NAME.part`` belongs to the renter (or to whoever owns the far side's directory), and a
transfer refuses to touch it unless --overwrite says so. The mark also says what the
``.part`` holds a prefix of (the source, its size and mtime): a mark for anything else means
the ``.part`` is ours but stale, and the transfer starts that file over.

A sidecar rather than an extended attribute: tmpfs before Linux 6.6, NFS and many FUSE file
systems keep no user xattrs, and an upload's far side is reached over SFTP, which sets none.
A received name ending in ``.part.worldland`` is never written (the engine skips it), so a
pod cannot plant a mark that claims the renter's own ``NAME.part``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

PART_SUFFIX = ".part"
_MARK_EXT = ".worldland"
MARK_SUFFIX = PART_SUFFIX + _MARK_EXT  # NAME.part's mark is NAME.part.worldland
MARK_MAX = 4096  # a mark is one short JSON line; anything longer is not one of ours


@dataclass(frozen=True)
class PartMark:
    """What a ``.part`` we wrote holds a prefix of."""

    source: str  # ssh://USER@HOST:PORT/PATH when receiving, the local path when sending
    size: int
    mtime: int

    def encode(self) -> bytes:
        doc = {"worldland_part": 1, "source": self.source, "size": self.size, "mtime": self.mtime}
        return json.dumps(doc).encode() + b"\n"

    @classmethod
    def decode(cls, data: bytes) -> PartMark | None:
        """The mark ``data`` holds, or None when it is not one of ours."""
        if len(data) > MARK_MAX:
            return None
        try:
            doc = json.loads(data)
        except ValueError:  # UnicodeDecodeError is one
            return None
        if not isinstance(doc, dict) or doc.get("worldland_part") != 1:
            return None
        source, size, mtime = doc.get("source"), doc.get("size"), doc.get("mtime")
        if not isinstance(source, str) or not isinstance(size, int) or not isinstance(mtime, int):
            return None
        return cls(source, size, mtime)


def mark_of(part: str) -> str:
    """Where the mark of the ``.part`` at ``part`` is (a local or a remote path)."""
    return part + _MARK_EXT
