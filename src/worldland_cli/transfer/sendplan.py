"""What ``send`` moves: the local files, directories and symlinks, named for the remote.

Symlinks inside a sent directory are not followed unless the renter asks (``--follow-links``,
rsync's ``--copy-links``): a link that stays inside the directory, resolved step by step
through the directory's other links, is recreated as a link on the far side; one that leads
outside is skipped and reported. Following every link by default sent whatever a link pointed
at, and a tree received from a pod could hold a chain of links that leads to ``~/.ssh``. A
path named on the command line is what the renter asked for, so it is followed when it is a
link. With ``--follow-links`` a link to a directory is walked as a directory, except one that
leads back into a directory being walked (a loop), which is skipped.

A name that is not valid UTF-8 (``caf\xe9.txt`` in Latin-1) is skipped as receive skips one
from a pod, and so is a symlink whose target is not: SFTP asks for names in UTF-8, and any
substitute could land on another file's name. A PATH named on the command line with such a
name is refused: it cannot be sent under its own name.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from worldland_cli.transfer.display import shown
from worldland_cli.transfer.errors import TransferError, UnsafePathError
from worldland_cli.transfer.exclude import Excludes
from worldland_cli.transfer.model import Entry, Skipped
from worldland_cli.transfer.safety import check_symlink, links_on_disk

_RENAME = "rename it to send it"


def _is_utf8(name: str) -> bool:
    """Whether a name (undecodable bytes kept as lone surrogates, as Python lists them) is UTF-8."""
    try:
        name.encode()
    except UnicodeEncodeError:
        return False
    return True


def plan_send(
    paths: list[Path], follow_links: bool, excludes: Excludes | None = None
) -> tuple[list[Entry], list[Skipped], int]:
    """The entries to send for ``paths``, in order (a directory before what it holds).

    Also what was skipped and why, and how many entries ``excludes`` left out (an excluded
    directory counts once: it is not walked).
    """
    plan = _SendPlan(follow_links, excludes or Excludes())
    for given in paths:
        plan.given(given)
    return plan.entries, plan.skipped, plan.excluded


class _SendPlan:
    def __init__(self, follow_links: bool, excludes: Excludes) -> None:
        self.follow_links = follow_links
        self.excludes = excludes
        self.excluded = 0
        self.entries: list[Entry] = []
        self.skipped: list[Skipped] = []
        self.seen: set[str] = set()

    def left_out(self, rel: str, is_dir: bool) -> bool:
        """Whether --exclude leaves ``rel`` out (counted)."""
        if self.excludes and self.excludes.excluded(rel, is_dir):
            self.excluded += 1
            return True
        return False

    def add(self, path: Path, rel: str, kind: str, st: os.stat_result, target: str = "") -> None:
        if rel in self.seen:
            raise TransferError(f"two sources would both be sent as {rel!r}")
        self.seen.add(rel)
        self.entries.append(
            Entry(
                rel=rel,
                kind=kind,
                size=st.st_size if kind == "file" else 0,
                mode=stat.S_IMODE(st.st_mode),
                mtime=st.st_mtime,
                atime=st.st_atime,
                source=str(path),
                link_target=target,
            )
        )

    def given(self, given: Path) -> None:
        """A path from the command line: followed when it is a link, as the renter asked."""
        path = given.resolve() if given.name in ("", ".", "..") else given
        if not _is_utf8(path.name):
            raise TransferError(
                f"{shown(given)} is not valid UTF-8, and SFTP names are sent in UTF-8", _RENAME
            )
        try:
            st = path.stat()
        except FileNotFoundError:
            raise TransferError(f"{shown(given)} does not exist") from None
        if self.left_out(path.name, stat.S_ISDIR(st.st_mode)):
            return
        if stat.S_ISREG(st.st_mode):
            self.add(path, path.name, "file", st)
        elif stat.S_ISDIR(st.st_mode):
            self.add(path, path.name, "dir", st)
            self.walk(path, path.name, path, {(st.st_dev, st.st_ino)})
        else:
            raise TransferError(f"{shown(given)} is neither a file nor a directory")

    def walk(self, directory: Path, rel_dir: str, top: Path, above: set[tuple[int, int]]) -> None:
        """The entries under ``directory``; ``above`` holds the directories being walked."""
        with os.scandir(directory) as found:
            items = sorted(found, key=lambda item: item.name)
        for item in items:
            path, rel = Path(item.path), f"{rel_dir}/{item.name}"
            if not _is_utf8(item.name):
                self.skipped.append(Skipped(rel, self.undecodable(item), _RENAME))
                continue
            if item.is_symlink() and not self.follow_links:
                if not self.left_out(rel, False):
                    self.link(path, rel, top)
                continue
            try:
                st = path.stat()
            except OSError:  # a dangling link (followed), or gone since it was listed
                self.skipped.append(Skipped(rel, "a symlink that points nowhere"))
                continue
            if self.left_out(rel, stat.S_ISDIR(st.st_mode)):
                continue
            if stat.S_ISDIR(st.st_mode):
                here = (st.st_dev, st.st_ino)
                if here in above:
                    self.skipped.append(Skipped(rel, "a symlink loop"))
                    continue
                self.add(path, rel, "dir", st)
                self.walk(path, rel, top, above | {here})
            elif stat.S_ISREG(st.st_mode):
                self.add(path, rel, "file", st)
            else:
                self.skipped.append(Skipped(rel, "not a file, directory or symlink"))

    def undecodable(self, item: os.DirEntry[str]) -> str:
        """Why an entry whose name is not UTF-8 is skipped: a directory goes with all it holds."""
        if item.is_dir(follow_symlinks=self.follow_links):
            return "a directory whose name is not valid UTF-8, with all it holds"
        return "a name that is not valid UTF-8"

    def link(self, path: Path, rel: str, top: Path) -> None:
        """Recreate the link on the far side if it stays inside the sent directory."""
        target = os.readlink(path)
        if not _is_utf8(target):
            self.skipped.append(Skipped(rel, "a symlink whose target is not valid UTF-8", _RENAME))
            return
        try:
            check_symlink(rel, target, links_on_disk(top.parent))
        except UnsafePathError:
            outside = f"a symlink that leads outside {top.name}"
            self.skipped.append(Skipped(rel, outside, "--follow-links sends what it points to"))
            return
        self.add(path, rel, "link", path.lstat(), target)
