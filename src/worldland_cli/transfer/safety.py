"""Rules that keep received files inside the destination directory.

The remote side (a pod, or a hub handing out names for codes) is not trusted: a name such as
``../../.bashrc``, an absolute name, or a symlink that points out of the tree must never make
us write outside LOCAL_DIR. Every check here runs before a byte is written.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

from worldland_cli.transfer.display import shown
from worldland_cli.transfer.errors import UnsafePathError


def check_name(name: str) -> str:
    """One path component from the far side: no separators, no dot names, no NUL."""
    if name in ("", ".", "..") or "/" in name or "\\" in name or "\0" in name:
        raise UnsafePathError(
            f"refusing the remote name {name!r}: it would escape the destination directory",
            "ask the sender to rename it; received files always stay inside LOCAL_DIR",
        )
    return name


def check_relative(rel: str) -> str:
    """A relative path from the far side: every component must pass :func:`check_name`."""
    if rel.startswith("/"):
        raise UnsafePathError(f"refusing the absolute remote name {rel!r}")
    for part in rel.split("/"):
        check_name(part)
    return rel


# The target of the symlink at a path of the tree (paths as ``rel``), or None where none is.
LinkAt = Callable[[str], "str | None"]
MAX_HOPS = 40  # links followed for one name before it counts as a loop, as Linux's ELOOP


def _no_links(rel: str) -> str | None:
    """Knows no other links: each link is then checked on its own."""
    return None


def check_symlink(rel: str, target: str, link_at: LinkAt = _no_links) -> str:
    """A symlink at ``rel`` may only lead inside its tree (``rel``'s first part), at every step.

    The target is resolved as the kernel will resolve it, one name at a time, through the
    links ``link_at`` reports (the tree as it will be on disk once the transfer is done): a
    chain such as ``up -> .`` and ``key -> up/up/../../.ssh/id_ed25519`` looks harmless one
    link at a time, but leaves the tree. A resolution that steps above the tree's top at any
    point, an absolute target, and a loop are refused: pointing at LOCAL_DIR itself or a
    sibling would expose local files through the tree. A name nothing is at resolves as a
    plain name, so a dangling link is kept (the kernel fails such a path; it never escapes).
    """
    _LinkWalk(rel, target, link_at).follow(rel.split("/")[:-1], target)
    return target


class _LinkWalk:
    """One symlink's resolution; counts the links followed to catch loops."""

    def __init__(self, rel: str, target: str, link_at: LinkAt) -> None:
        self.rel = rel
        self.target = target
        self.link_at = link_at
        self.top = rel.split("/", 1)[0]
        self.hops = 0

    def refuse(self, why: str) -> UnsafePathError:
        return UnsafePathError(f"refusing the symlink {self.rel!r} -> {self.target!r}: {why}")

    def follow(self, base: list[str], path: str) -> list[str]:
        """Where ``path``, taken from the directory ``base``, ends up."""
        if path.startswith("/") or "\0" in path:
            raise self.refuse(f"it points outside {self.top!r}")
        where = list(base)
        for name in path.split("/"):
            if name in ("", "."):
                continue
            if name == "..":
                if len(where) <= 1:
                    raise self.refuse(f"it leads outside {self.top!r} on the way")
                where.pop()
                continue
            where.append(name)
            through = self.link_at("/".join(where))
            if through is not None:
                self.hops += 1
                if self.hops > MAX_HOPS:
                    raise self.refuse("it is part of a loop of symlinks")
                where = self.follow(where[:-1], through)
        return where


def links_on_disk(root: Path) -> LinkAt:
    """The symlinks already on disk under ``root``, for :func:`check_symlink`.

    :func:`check_symlink` asks about resolved paths only (every link before a name has been
    followed already), so a path here never goes through a link the check has not seen.
    """

    def link_at(rel: str) -> str | None:
        try:
            return os.readlink(root.joinpath(*rel.split("/")))
        except (OSError, ValueError):  # not a link, nothing there, or a NUL in the name
            return None

    return link_at


def local_destination(root: Path, rel: str, *, replacing: bool = False) -> Path:
    """Where ``rel`` lands under ``root``, refusing local symlinks that lead out of it.

    Every directory on the way is resolved, links and all, and must stay inside ``root``.
    A symlink at ``rel`` itself is refused too, unless ``replacing``: the caller then only
    ever puts something else at that name (a rename onto it, or a link or hard link that
    fails if the name is taken), and none of those follows a link there.
    """
    check_relative(rel)
    real_root = Path(os.path.realpath(root))
    dest = real_root.joinpath(*rel.split("/"))
    real_parent = Path(os.path.realpath(dest.parent))
    if real_parent != real_root and real_root not in real_parent.parents:
        raise UnsafePathError(
            f"refusing to write {rel!r}: {shown(dest.parent)} leads outside {shown(real_root)} "
            "(a symlink)"
        )
    if dest.is_symlink() and not replacing:
        raise UnsafePathError(f"refusing to write through the existing symlink {shown(dest)}")
    return dest
