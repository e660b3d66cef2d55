"""What the far-side helper may answer, each checked before it is believed.

The pod runs the helper and may lie through it (docs/security.md), so every answer of
:mod:`.farside` is read here: its shape, its types, its sizes against what was asked for.
Anything else is a protocol violation (HOSTILE_HINT), and no byte of it is used.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from typing import Any

from worldland_cli.transfer.errors import HOSTILE_HINT, TransferError


@dataclass(frozen=True)
class Stat:
    """One path on the far side, from lstat: ``kind`` is file, dir, link or other."""

    kind: str
    size: int
    mode: int
    mtime: float
    link_target: str = ""


@dataclass(frozen=True)
class OsFailure:
    """An OS error the far side met for one path (its errno and text, the free bytes if known)."""

    errno: int
    text: str
    free: int = -1


@dataclass(frozen=True)
class Got:
    """A small file as the far side read it: its bytes, their sha256, whether it changed."""

    data: bytes
    sha256: str
    changed: bool


def hostile(what: str) -> TransferError:
    return TransferError(f"the far side's helper broke its protocol: {what}", HOSTILE_HINT)


def failure_of(doc: Any) -> OsFailure:
    """An ``[errno, text(, free)]`` list from the far side, checked."""
    if (
        isinstance(doc, list)
        and 2 <= len(doc) <= 3
        and isinstance(doc[0], int)
        and isinstance(doc[1], str)
        and all(isinstance(x, int) for x in doc[2:])
    ):
        return OsFailure(doc[0], doc[1][:500], doc[2] if len(doc) == 3 else -1)
    raise hostile("an error that is not [errno, text]")


def is_sha(value: Any) -> bool:
    return (
        isinstance(value, str) and len(value) == 64 and all(c in "0123456789abcdef" for c in value)
    )


def failure_error(doc: Any) -> TransferError:
    failure = failure_of(doc)
    return TransferError(f"the far side's helper failed: {failure.text}")


def json_of(payload: bytes) -> Any:
    try:
        return json.loads(payload) if payload else None
    except ValueError:
        raise hostile("an answer that is not JSON") from None


def stat_of(item: Any) -> Stat | OsFailure:
    if isinstance(item, list) and item and item[0] is None:
        return failure_of(item[1:])
    kinds = {"f": "file", "d": "dir", "l": "link", "o": "other"}
    if (
        isinstance(item, list)
        and len(item) in (4, 5)
        and item[0] in kinds
        and isinstance(item[1], int)
        and isinstance(item[2], int)
        and isinstance(item[3], (int, float))
    ):
        target = item[4] if len(item) == 5 and isinstance(item[4], str) else ""
        return Stat(kinds[item[0]], item[1], item[2], float(item[3]), target)
    raise hostile("a stat answer of the wrong shape")


async def next_frame(
    queue: asyncio.Queue[tuple[bytes, bytes] | BaseException],
) -> tuple[bytes, bytes]:
    item = await queue.get()
    if isinstance(item, BaseException):
        raise item
    return item


async def file_of(
    queue: asyncio.Queue[tuple[bytes, bytes] | BaseException], head: Any, planned: int
) -> Got:
    """One file's data frames after its header; never more than ``planned`` bytes."""
    if not (
        isinstance(head, dict)
        and isinstance(head.get("size"), int)
        and is_sha(head.get("sha256"))
        and isinstance(head.get("changed"), bool)
    ):
        raise hostile("a file header of the wrong shape")
    size: int = head["size"]
    if not 0 <= size <= planned:
        raise hostile(f"a file of {size} bytes where {planned} were asked for")
    parts: list[bytes] = []
    got = 0
    while got < size:
        kind, payload = await next_frame(queue)
        if kind != b"D" or got + len(payload) > size:
            raise hostile("more bytes than the file's header announced")
        parts.append(payload)
        got += len(payload)
    return Got(b"".join(parts), head["sha256"], head["changed"] or size != planned)
