"""Small files, packed: many to a frame stream through the far-side helper, none one by one.

A file moved alone costs a dozen SFTP round trips and a far-side hash; for 2,000 files of
4 KiB that was 28 s where rsync needs half a second (issue 14). Files under
:data:`PACK_MAX` that need no resume (nothing of theirs at the destination but, with
--overwrite, other content) travel in batches of up to :data:`BATCH_FILES` files and
:data:`BATCH_BYTES` bytes through the helper's one channel (:mod:`.farside`), two batches in
flight, and every guarantee of the one-file flow holds for each:

* **Sending**: each file is read whole and hashed here, and sent with its sha256, mode and
  times. The helper writes it under a hidden staging name beside its own, hashes it back
  from the far disk, and at the batch's end syncs the file system once and renames each
  file whose hash agrees (exclusively, unless --overwrite). We check its verdict and hash.
* **Receiving**: the helper reads each file whole, hashes it and checks it did not change
  while read (inode, size, times). We take at most the planned size (a pod announcing more
  breaks the protocol), hash what arrived, and write the batch through
  :meth:`.localfs.LocalTree.receive_small`: staging names, one sync, then the names.

A packed file that fails is not resumed from a prefix: it is small, so the next run sends it
whole; files placed before a failure stay placed, and the next run skips them.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections import deque
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from worldland_cli.transfer.display import shown
from worldland_cli.transfer.errors import (
    DestinationExistsError,
    TransferError,
    changed_during,
    checksum_failed,
)
from worldland_cli.transfer.failures import remote_os_failure
from worldland_cli.transfer.farreplies import OsFailure, failure_of
from worldland_cli.transfer.farside import FarSide
from worldland_cli.transfer.localfs import LocalTree, read_small
from worldland_cli.transfer.model import Leg

PACK_MAX = 1 << 20  # files smaller than this travel packed (whole in memory, no resume)
BATCH_FILES = 1000  # files of one batch: one far-side sync, one answer
BATCH_BYTES = 16 << 20  # bytes of one batch; two in flight bound what is held in memory

Done = Callable[[Leg, str], None]  # a file verified on both sides and under its name


def batches(legs: list[Leg]) -> list[list[Leg]]:
    """``legs`` cut into batches of at most BATCH_FILES files and BATCH_BYTES bytes."""
    out: list[list[Leg]] = []
    size = 0
    for leg in legs:
        if not out or len(out[-1]) >= BATCH_FILES or size + leg.entry.size > BATCH_BYTES:
            out.append([])
            size = 0
        out[-1].append(leg)
        size += leg.entry.size
    return out


async def _pipelined(
    work: list[list[Leg]],
    start: Callable[[list[Leg]], Awaitable[Callable[[], Awaitable[None]]]],
) -> None:
    """Start each batch (which returns how to settle it) with one more in flight meanwhile."""
    pending: deque[Callable[[], Awaitable[None]]] = deque()
    for batch in work:
        pending.append(await start(batch))
        if len(pending) > 1:
            await pending.popleft()()
    while pending:
        await pending.popleft()()


async def send(helper: FarSide, legs: list[Leg], overwrite: bool, done: Done) -> None:
    """Send small files packed (see the module docstring); ``done`` hears of each placed."""

    async def start(batch: list[Leg]) -> Callable[[], Awaitable[None]]:
        blobs = await asyncio.to_thread(
            lambda: [read_small(Path(leg.local), leg.entry.size) for leg in batch]
        )
        ours = [hashlib.sha256(blob).hexdigest() for blob in blobs]
        heads = [
            {
                "path": leg.final,
                "size": leg.entry.size,
                "mode": leg.entry.mode,
                "atime": int(leg.entry.atime),
                "mtime": int(leg.entry.mtime),
                "sha256": sha,
                "overwrite": overwrite,
            }
            for leg, sha in zip(batch, ours, strict=True)
        ]
        verdicts = helper.put(heads, blobs)
        await helper.drain()

        async def settle() -> None:
            _settle_sent(batch, ours, await verdicts, done)

        return settle

    await _pipelined(batches(legs), start)


def _settle_sent(batch: list[Leg], ours: list[str], verdicts: Any, done: Done) -> None:
    """Take the far side's verdict on each file of a batch; raise the first failure."""
    if not isinstance(verdicts, list) or len(verdicts) != len(batch):
        raise TransferError("the far side's helper answered a batch of files with no verdicts")
    failure: TransferError | None = None
    for leg, sha, verdict in zip(batch, ours, verdicts, strict=True):
        problem = _sent_problem(leg, sha, verdict)
        if problem is None:
            done(leg, sha)
        elif failure is None:
            failure = problem
    if failure is not None:
        raise failure


def _sent_problem(leg: Leg, ours: str, verdict: Any) -> TransferError | None:
    if not isinstance(verdict, dict):
        return TransferError(f"{shown(leg.entry.rel)}: the far side's helper gave no verdict")
    if "error" in verdict:
        return remote_os_failure(failure_of(verdict["error"]), leg.final, "write")
    theirs = verdict.get("sha256")
    if verdict.get("placed") is True and theirs == ours:
        return None
    if verdict.get("exists"):
        return DestinationExistsError(
            f"{shown(leg.final)} appeared on the remote during the transfer",
            "pass --overwrite to replace it",
        )
    return checksum_failed(leg.entry.rel, str(theirs), ours, "sent")


async def receive(
    helper: FarSide, legs: list[Leg], tree: LocalTree, fsync: bool, done: Done
) -> None:
    """Receive small files packed (see the module docstring); ``done`` hears of each placed."""

    async def start(batch: list[Leg]) -> Callable[[], Awaitable[None]]:
        arriving = helper.get([(leg.remote, leg.entry.size) for leg in batch])

        async def settle() -> None:
            files: list[tuple[Leg, bytes, str]] = []
            for leg in batch:
                got = await anext(arriving)
                if isinstance(got, OsFailure):
                    raise remote_os_failure(got, leg.remote, "read")
                ours = hashlib.sha256(got.data).hexdigest()
                if got.changed:
                    raise changed_during(leg.entry.rel, f"the remote {shown(leg.remote)}")
                if ours != got.sha256:
                    raise checksum_failed(leg.entry.rel, ours, got.sha256, "source")
                files.append((leg, got.data, ours))
            await anext(arriving, None)  # the batch's end
            await asyncio.to_thread(tree.receive_small, files, fsync)
            for leg, _, sha in files:
                done(leg, sha)

        return settle

    await _pipelined(batches(legs), start)
