"""Rules that keep received files inside the destination directory.

The remote side (a pod, or a hub handing out names for codes) is not trusted: a name such as
``../../.bashrc``, an absolute name, or a symlink that points out of the tree must never make
us write outside LOCAL_DIR. Every check here runs before a byte is written.
"""

from __future__ import annotations

import os
import posixpath
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


def check_symlink(rel: str, target: str) -> str:
    """A symlink at ``rel`` may only point inside the received tree (``rel``'s first part).

    Pointing at LOCAL_DIR itself or a sibling would expose local files through the tree.
    """
    if target.startswith("/"):
        raise UnsafePathError(f"refusing the symlink {rel!r} -> {target!r}: it points outside")
    top = rel.split("/", 1)[0]
    resolved = posixpath.normpath(posixpath.join(posixpath.dirname(rel), target))
    if resolved != top and not resolved.startswith(top + "/"):
        raise UnsafePathError(f"refusing the symlink {rel!r} -> {target!r}: it points outside")
    return target


def local_destination(root: Path, rel: str) -> Path:
    """Where ``rel`` lands under ``root``, refusing local symlinks that lead out of it."""
    check_relative(rel)
    real_root = Path(os.path.realpath(root))
    dest = real_root.joinpath(*rel.split("/"))
    real_parent = Path(os.path.realpath(dest.parent))
    if real_parent != real_root and real_root not in real_parent.parents:
        raise UnsafePathError(
            f"refusing to write {rel!r}: {shown(dest.parent)} leads outside {shown(real_root)} "
            "(a symlink)"
        )
    if dest.is_symlink():
        raise UnsafePathError(f"refusing to write through the existing symlink {shown(dest)}")
    return dest
