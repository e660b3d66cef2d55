"""What a transfer moves and what it leaves out: the planned entries of both directions."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Entry:
    """A file, directory or symlink to move; ``rel`` uses '/' and never escapes the tree."""

    rel: str
    kind: str  # "file" | "dir" | "link"
    size: int = 0
    mode: int = 0o644
    mtime: float = 0.0
    atime: float = 0.0
    source: str = ""  # local path (send) or remote path (receive)
    link_target: str = ""


@dataclass(frozen=True)
class Skipped:
    """Something a transfer left out on purpose, and why; --json lists them."""

    path: str
    reason: str
    hint: str = ""  # what would send it anyway; the note says it, --json leaves it out

    def to_dict(self) -> dict[str, str]:
        return {"path": self.path, "reason": self.reason}


@dataclass(frozen=True)
class Registered:
    """The one file a code names, as its sender registered it with the hub.

    The sender runs inside a pod and may lie: ``receive CODE`` checks that the path is one
    regular file of this size before it downloads, saves it under this name (a plain file
    name), and keeps it only if its sha256 is this one.
    """

    name: str
    size: int
    sha256: str
