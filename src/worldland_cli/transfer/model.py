"""The transfer model: what a transfer moves, how, and what came of it. No I/O here.

Both directions plan a list of :class:`Entry` (``sendplan.py`` from the local disk,
``download.py`` from the pod's listing), leave some things out (:class:`Skipped`, and what
``--exclude`` names), judge each against what the destination holds already
(:class:`Verdict`, ``survey.py``), move the files under :class:`Options`, each along its
:class:`Leg`, and report one :class:`FileResult` per file moved in a :class:`Summary`, the
``--json`` document (or, with ``--dry-run``, the verdicts).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from worldland_cli.transfer.partmark import PartMark


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


@dataclass(frozen=True)
class Leg:
    """One file's way across: the file on each side, its final name, what its ``.part`` holds.

    ``local`` is the source (send) or the ``.part`` (receive): the file our hash reads.
    ``remote`` is the ``.part`` (send) or the source (receive): the file the far side hashes.
    ``final`` is the name the ``.part`` gets, on its own side, once both hashes agree.
    """

    entry: Entry
    local: Path
    remote: str
    final: str
    mark: PartMark


@dataclass(frozen=True)
class Options:
    """Knobs with measured defaults (docs/transfer.md)."""

    overwrite: bool = False
    retries: int = 5
    backoff: float = 0.5
    files_in_flight: int = 4
    requests_in_flight: int = 64
    fsync: bool = True
    registered: Registered | None = None  # receiving a code: the one file it names
    openssh: bool = True  # large files through the OpenSSH client when it is installed
    follow_links: bool = False  # send what links inside a sent directory point to
    exclude: tuple[str, ...] = ()  # --exclude patterns (exclude.py)
    dry_run: bool = False  # say what would move and why; move nothing
    lanes: int | None = None  # --lanes: channels per large file; None: from the round trip


# What a destination's name holds, judged against the entry to move there (survey.py).
NEW = "new"  # nothing there: it moves
SAME = "same"  # the same size and sha256 (a link: the same target): skipped
DIFFERS = "differs"  # other content: refused without --overwrite, replaced with it
PARTIAL = "partial"  # nothing there but a .part of ours for this source: it resumes
FOREIGN = "foreign"  # a NAME.part we did not write: refused without --overwrite
BLOCKED = "blocked"  # a directory where a file or link goes, or the reverse: always refused


@dataclass(frozen=True)
class Verdict:
    """What happens to one entry, and why, in words for --dry-run."""

    entry: Entry
    action: str
    why: str
    part: str = ""  # a NAME.part beside a file's destination: "ours", "stale", "not ours"

    def moves(self, overwrite: bool) -> bool:
        return self.action in (NEW, PARTIAL) or (overwrite and self.action in (DIFFERS, FOREIGN))

    def to_dict(self, overwrite: bool) -> dict[str, Any]:
        return {
            "path": self.entry.rel,
            "kind": self.entry.kind,
            "size": self.entry.size,
            "action": self.action,
            "why": self.why,
            "moves": self.moves(overwrite),
        }


@dataclass
class FileResult:
    """What happened to one file; ``bytes_after_resume`` is what the last attempt moved."""

    path: str
    size: int
    sha256: str = ""
    verified_by: str = ""
    resumed_from: int = 0
    bytes_moved: int = 0
    bytes_after_resume: int = 0
    attempts: int = 0
    done: bool = False
    carried_by: str = ""  # "openssh" (the lane) or "asyncssh", for the last attempt
    lanes: int = 1  # the channels that carried it at once (ranged.py)

    def to_dict(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "size": self.size,
            "sha256": self.sha256,
            "verified_by": self.verified_by,
            "resumed_from": self.resumed_from,
            "bytes_moved": self.bytes_moved,
            "attempts": self.attempts,
            "carried_by": self.carried_by,
            "lanes": self.lanes,
        }


# Why a file that was not moved is listed under "skipped": it is there already.
UNCHANGED = "unchanged: the same size and sha256 at the destination"


@dataclass
class Summary:
    """The --json document of a finished transfer (or of a dry run: ``verdicts``).

    ``files`` are the files this run moved; a file already at the destination with the same
    size and sha256 is not one of them: it is listed under ``skipped`` and counted as
    ``unchanged``. The rate counts only the bytes that crossed the link (not a resumed
    prefix, not a file skipped).
    """

    direction: str
    source: str
    destination: str
    files: list[FileResult] = field(default_factory=list)
    seconds: float = 0.0
    retries: int = 0
    skipped: list[Skipped] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    excluded: int = 0
    verdicts: list[Verdict] | None = None  # a dry run's, in the plan's order
    overwrite: bool = False

    @property
    def total_bytes(self) -> int:
        return sum(f.size for f in self.files)

    @property
    def bytes_moved(self) -> int:
        return sum(f.bytes_moved for f in self.files)

    def to_dict(self) -> dict[str, Any]:
        rate = self.bytes_moved / self.seconds / 1e6 if self.seconds > 0 else 0.0
        doc: dict[str, Any] = {
            "direction": self.direction,
            "source": self.source,
            "destination": self.destination,
            "files": [f.to_dict() for f in self.files],
            "bytes": self.total_bytes,
            "bytes_moved": self.bytes_moved,
            "seconds": round(self.seconds, 3),
            "mb_per_s": round(rate, 1),
            "retries": self.retries,
            "skipped": [s.to_dict() for s in self.skipped]
            + [{"path": p, "reason": UNCHANGED} for p in self.unchanged],
            "counts": {
                "moved": len(self.files),
                "unchanged": len(self.unchanged),
                "skipped": len(self.skipped),
                "excluded": self.excluded,
            },
        }
        if self.verdicts is not None:
            doc["dry_run"] = True
            doc["plan"] = [v.to_dict(self.overwrite) for v in self.verdicts]
        return doc
