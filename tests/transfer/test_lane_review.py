"""The OpenSSH lane's life cycle under kills and cancellations, against a real sshd."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import subprocess
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path

import pytest

from tests.support.sshd import SshdServer
from tests.transfer.conftest import random_file
from tests.transfer.test_lane import Collect, _our_ssh_children
from worldland_cli.host import Host
from worldland_cli.transfer import pipeline
from worldland_cli.transfer.errors import ConnectionDropped
from worldland_cli.transfer.lane import OpenSshLane
from worldland_cli.transfer.lanes import Lanes
from worldland_cli.transfer.progress import NullProgress
from worldland_cli.transfer.ssh import Credentials, connect
from worldland_cli.transfer.targets import parse_ssh_url


def test_a_lane_killed_mid_push_writes_nothing_into_files_that_reuse_its_fds(
    sshd: SshdServer, creds: Credentials, tmp_path: Path
) -> None:
    """kill() comes from the event loop while the lane's thread still uses the pipes.

    Were the pipes' fds closed at once, the next file opened would get one of those numbers
    and the lane's thread would write SFTP packets into it.
    """
    src = random_file(tmp_path / "src.bin", 6 * 255 * 1024)
    lane = OpenSshLane.open(
        parse_ssh_url(sshd.url(str(tmp_path)), "x"), creds, [sshd.host_public_key]
    )
    in_moved, go_on = threading.Event(), threading.Event()

    def moved(nbytes: int, reached: int) -> None:
        in_moved.set()
        go_on.wait(10)

    errors: list[BaseException] = []

    def push() -> None:
        try:
            pipeline.push(
                lane,
                src,
                str(tmp_path / "remote.part"),
                0,
                hashlib.sha256(),
                moved,
                fsync=False,
                in_flight=1,
            )
        except BaseException as e:
            errors.append(e)

    thread = threading.Thread(target=push)
    thread.start()
    victims: list[int] = []
    try:
        assert in_moved.wait(10)
        lane.kill()
        victims = [
            os.open(tmp_path / f"victim{i}", os.O_RDWR | os.O_CREAT, 0o600) for i in range(3)
        ]
    finally:
        go_on.set()
        thread.join(10)
        for fd in victims:
            os.close(fd)
    assert not thread.is_alive()
    assert [type(e) for e in errors] == [ConnectionDropped]
    assert [(tmp_path / f"victim{i}").stat().st_size for i in range(3)] == [0, 0, 0]
    # The thread, done with the pipes, closed them on its way out.
    with pytest.raises(OSError):
        os.fstat(lane._out)


def test_a_cancelled_lane_opening_leaves_no_ssh_behind(
    sshd: SshdServer, creds: Credentials, tmp_path: Path
) -> None:
    """Cancelling a worker during a lane's handshake must not orphan the ssh it starts."""
    loc = parse_ssh_url(sshd.url(str(tmp_path)), "x")

    async def main() -> None:
        lanes = Lanes(loc, creds, NullProgress(), enabled=True)
        conn = await connect(loc, creds)
        async with conn:
            opening = asyncio.ensure_future(lanes.open(conn))
            await asyncio.sleep(0.02)  # the handshake thread is under way
            assert not opening.done()
            opening.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await opening

    asyncio.run(main())  # waits for the handshake thread before it returns
    assert _our_ssh_children() == []


_SFTP_SERVER = Path("/usr/lib/openssh/sftp-server")


@pytest.mark.skipif(not _SFTP_SERVER.exists(), reason="no OpenSSH sftp-server here")
def test_a_far_side_that_talks_a_lot_on_stderr_does_not_stall_the_lane(tmp_path: Path) -> None:
    """The far side's stderr (an sftp-server logging with -e, a chatty shell) comes back on
    ssh's stderr; a pipe nobody drains fills up and stalls ssh, and with it the lane."""
    spawned: list[subprocess.Popen[bytes]] = []

    class Chatty(Host):
        def spawn(
            self,
            argv: Sequence[str],
            *,
            env: Mapping[str, str] | None = None,
            pipe_size: int = 0,
        ) -> subprocess.Popen[bytes] | None:
            # Stands in for ssh: 1 MiB on stderr first, then an SFTP server on the pipes.
            script = f"head -c 1048576 /dev/zero >&2; exec {_SFTP_SERVER}"
            proc = super().spawn(["sh", "-c", script], env=env, pipe_size=pipe_size)
            assert proc is not None
            spawned.append(proc)
            return proc

    loc = parse_ssh_url("ssh://renter@pod.example:2222/workspace", "x")
    lanes: list[OpenSshLane] = []
    key = "ssh-ed25519 AAAA"  # never checked: no ssh runs
    thread = threading.Thread(
        target=lambda: lanes.append(OpenSshLane.open(loc, Credentials(), [key], Chatty())),
        daemon=True,
    )
    thread.start()
    thread.join(10)
    stalled = thread.is_alive()
    if stalled:
        for proc in spawned:
            os.killpg(proc.pid, 9)
        thread.join(10)
    assert not stalled, "the lane's handshake stalled behind a full stderr pipe"
    lane = lanes[0]
    try:
        src = random_file(tmp_path / "src.bin", 3 * 255 * 1024 + 5)
        sink = Collect()
        pipeline.fetch(lane, str(src), 0, src.stat().st_size, sink, lambda n, r: None, in_flight=4)
        assert bytes(sink.got) == src.read_bytes()
    finally:
        lane.close()
