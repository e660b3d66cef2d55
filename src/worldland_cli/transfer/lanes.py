"""Lane management: which data path carries a file, and the life of each OpenSSH lane.

A file of ``LANE_MIN`` bytes or more travels through the worker's lane (one ``ssh`` process
per worker, kept for its later files); a smaller one, or every file once lanes are off,
through asyncssh. Either way the engine gets a :class:`.pipeline.Carrier` and never asks
which: the choice, the lane's handshake, its failure and its end are this module's.

On a far link (:meth:`Lanes.count`, from the measured round trip, or ``--lanes``) large files
go over several asyncssh channels at once instead (:mod:`.ranged`), and no lane is opened:
the whole transfer then rides one connection.

The first lane is opened while the asyncssh connection opens (its handshake, a login of its
own, is then no longer on the way to the first byte), trusting the keys that connection
trusts for the host (:func:`.ssh.trusted_host_keys`): the hub's pin, or the host's known_hosts
entries. It is only a head start: if it fails for any reason, the lane is opened again when
a large file needs it, as every later lane is, trusting exactly the key the connection
verified. A lane that cannot start then (no ``ssh``, a refused key, no sftp subsystem) turns
lanes off for the transfer, with a note; a different host key is fatal (HostKeyError); a
dropped link is retried by the engine.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import threading
import time
from collections.abc import Callable
from typing import TypeVar

import asyncssh

from worldland_cli.transfer.display import shown
from worldland_cli.transfer.errors import ConnectionDropped, HostKeyError, retrieved
from worldland_cli.transfer.lane import LaneUnavailable, OpenSshLane
from worldland_cli.transfer.pipeline import Carrier, on_thread
from worldland_cli.transfer.progress import ProgressSink
from worldland_cli.transfer.ranged import NEAR, SEND_WINDOW, lanes_for
from worldland_cli.transfer.sftpcarrier import AsyncsshCarrier
from worldland_cli.transfer.ssh import Credentials, key_line
from worldland_cli.transfer.targets import SshLocation

# Files this large travel through the OpenSSH lane; smaller ones are not worth its handshake.
LANE_MIN = 8 << 20

T = TypeVar("T")


class Slot:
    """One file worker's channels: its SFTP client and, from its first large file, a lane."""

    def __init__(self, sftp: asyncssh.SFTPClient) -> None:
        self.sftp = sftp
        self.lane: OpenSshLane | None = None

    def drop_lane(self) -> None:
        if self.lane is not None:
            self.lane.kill()
            self.lane = None

    async def close(self) -> None:
        """End the worker's lane politely once its files are done."""
        if self.lane is not None:
            await asyncio.to_thread(self.lane.close)

    async def run(self, carrier: Carrier, call: Callable[[], T]) -> T:
        """Run a blocking pipeline call on a thread; on failure or cancellation ``carrier``
        dies (``pipeline.on_thread``). A lane killed so is never reused: answers may still be
        owed on its pipes."""
        try:
            return await on_thread(carrier, call)
        except BaseException:
            if carrier is self.lane:
                self.lane = None
            raise


def _kill_unclaimed(
    opening: asyncio.Future[OpenSshLane] | asyncio.Future[OpenSshLane | None],
) -> None:
    """Kill a lane whose opening finished after nobody wanted it any more."""
    if not opening.cancelled() and opening.exception() is None:
        lane = opening.result()
        if lane is not None:
            lane.kill()


def _drop(early: asyncio.Future[OpenSshLane | None]) -> None:
    """Nobody will take this lane: stop its opening, or kill it once opened."""
    early.cancel()
    early.add_done_callback(_kill_unclaimed)


class _Opening:
    """One lane's opening on a thread, which :meth:`stop` ends at once from the event loop.

    The handshake blocks its thread until the server answers: a head start towards a pod
    that never does would hold up the exit (and Ctrl-C) for ssh's 15 s time-out.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._lane: OpenSshLane | None = None
        self._stopped = False

    def spawned(self, lane: OpenSshLane) -> None:
        """On the opening thread: its ``ssh`` runs (killed at once if stopped already)."""
        with self._lock:
            self._lane, stopped = lane, self._stopped
        if stopped:
            lane.kill()

    def stop(self) -> None:
        with self._lock:
            self._stopped, lane = True, self._lane
        if lane is not None:
            lane.kill()


async def _round_trip(sftp: asyncssh.SFTPClient) -> float:
    """The least of two SFTP round trips, in seconds (the channel idle meanwhile)."""
    best = float("inf")
    for _ in range(2):
        began = time.monotonic()
        await sftp.lstat("/")
        best = min(best, time.monotonic() - began)
    return best


class Lanes:
    """The lanes of one transfer: whether they are on, and the first one, opened early."""

    def __init__(
        self,
        loc: SshLocation,
        creds: Credentials,
        progress: ProgressSink,
        enabled: bool,
        asked: int | None = None,
    ) -> None:
        self._loc = loc
        self._creds = creds
        self._progress = progress
        self._off = not enabled
        self._asked = asked  # --lanes N; None: from the round trip
        self._opening = 0.0  # what the first SFTP channel took to open (three round trips)
        self._rtt: asyncio.Future[float] | None = None
        self._early: asyncio.Future[OpenSshLane | None] | None = None

    def channel_opened(self, seconds: float, sftp: asyncssh.SFTPClient) -> None:
        """How long the planning channel took to open: a first, free guess at the distance.

        It is three round trips, plus the far side starting its SFTP server (through the
        account's shell, so a slow ~/.bashrc makes a near pod look far): a guess under NEAR
        is trusted; one over it is checked by round trips of our own, started now so that
        the planning hides them.
        """
        if self._opening:
            return
        self._opening = seconds
        if self._asked is None and seconds / 3 >= NEAR:
            self._rtt = asyncio.ensure_future(_round_trip(sftp))
            self._rtt.add_done_callback(retrieved)  # count() reads a failure as one lane

    async def count(self, window: int) -> int:
        """How many lanes a large file gets: --lanes, or what the round trip asks for with
        lanes that move ``window`` per round trip."""
        if self._asked is not None:
            return self._asked
        if self._rtt is None:
            return 1
        try:
            rtt = await asyncio.shield(self._rtt)
        except (asyncssh.Error, OSError):
            return 1
        return lanes_for(rtt, window)

    async def carrier(self, conn: asyncssh.SSHClientConnection, slot: Slot, size: int) -> Carrier:
        """What carries ``size`` bytes for ``slot``: its lane, or asyncssh's data path."""
        if not self._off and size >= LANE_MIN:
            if slot.lane is None:
                early, self._early = self._early, None
                slot.lane = await self._if_near(conn, early)
            if slot.lane is not None:
                return slot.lane
        return AsyncsshCarrier(slot.sftp, asyncio.get_running_loop())

    def start_first(self, host_keys: list[str]) -> None:
        """Open the first lane now, while the connection opens, trusting ``host_keys``.

        Called before the planning knows whether a large file will move (a receive cannot
        know): :meth:`start_early` drops it when none will, or when the link is far.
        """
        if not self._off and host_keys and (self._asked or 1) == 1 and self._early is None:
            self._early = asyncio.ensure_future(self._head_start(host_keys))

    async def _head_start(self, host_keys: list[str]) -> OpenSshLane | None:
        """A lane trusting ``host_keys``; None if it fails (:meth:`carrier` tries again)."""
        try:
            return await self._open_trusting(host_keys)
        except (LaneUnavailable, HostKeyError, ConnectionDropped):
            return None

    def start_early(self, conn: asyncssh.SSHClientConnection, sizes: list[int]) -> None:
        """Open the first lane while the checks before the first large file still run, or
        keep the one :meth:`start_first` opened: only for a large file on a near link.

        Its handshake (~0.15 s) would otherwise come after them; a far link, whose large
        files go over several channels of the connection, gets none. Called once the sizes
        of the files still to move are known; :meth:`end_early` disposes of a lane nobody
        took.
        """
        wanted = not self._off and any(size >= LANE_MIN for size in sizes)
        early, self._early = self._early, None
        if wanted:
            self._early = asyncio.ensure_future(self._if_near(conn, early))
        elif early is not None:
            _drop(early)

    async def _if_near(
        self, conn: asyncssh.SSHClientConnection, early: asyncio.Future[OpenSshLane | None] | None
    ) -> OpenSshLane | None:
        """The first lane on a near link (``early``'s, or one opened now); none on a far one."""
        if await self.count(SEND_WINDOW) == 1:
            lane = await early if early is not None else None
            return lane if lane is not None else await self.open(conn)
        if early is not None:
            _drop(early)
        return None

    async def end_early(self) -> None:
        early, self._early = self._early, None
        if early is None:
            return
        early.cancel()  # a handshake still under way is stopped; a lane it gave is killed
        with contextlib.suppress(BaseException):
            lane = await early
            if lane is not None:
                lane.kill()

    async def open(self, conn: asyncssh.SSHClientConnection) -> OpenSshLane | None:
        """A lane pinned to ``conn``'s verified host key; None once lanes are off."""
        key = conn.get_server_host_key()
        if key is None or self._off:
            self._off = True
            return None
        try:
            return await self._open_trusting([key_line(key)])
        except LaneUnavailable as e:
            self._off = True
            self._progress.note(
                f"not using the OpenSSH client ({shown(e)}); asyncssh carries the data"
            )
            return None

    async def _open_trusting(self, host_keys: list[str]) -> OpenSshLane:
        """:meth:`.lane.OpenSshLane.open` on a thread, trusting ``host_keys``."""
        # A plain future (not a task), shielded: a cancellation while the handshake's thread
        # runs cannot lose the lane it returns, which is then killed instead of orphaned; and
        # the handshake itself is stopped, so the thread ends now.
        thread = _Opening()
        opening = asyncio.get_running_loop().run_in_executor(
            None,
            functools.partial(
                OpenSshLane.open, self._loc, self._creds, host_keys, spawned=thread.spawned
            ),
        )
        try:
            return await asyncio.shield(opening)
        except asyncio.CancelledError:
            thread.stop()
            opening.add_done_callback(_kill_unclaimed)
            raise
