"""The first OpenSSH lane opens while the asyncssh connection opens (lanes.Lanes.start_first).

Its handshake used to start only once planning knew a large file would move, and the first
byte waited for it (~0.13 s on loopback). The head start trusts the keys the connection
trusts for the host; whatever goes wrong with it, the lane pinned to the verified key is
what the transfer falls back to, and a head start nobody needs is killed.
"""

from __future__ import annotations

import asyncio
import dataclasses
import socket
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import asyncssh
import pytest

from tests.support.sshd import SshdServer
from tests.transfer.conftest import random_file, sha256_of
from tests.transfer.test_lane import _our_ssh_children
from worldland_cli.transfer import engine as engine_module
from worldland_cli.transfer.download import download
from worldland_cli.transfer.errors import UnreachableError
from worldland_cli.transfer.lane import OpenSshLane
from worldland_cli.transfer.lanes import LANE_MIN, Lanes
from worldland_cli.transfer.model import Options, Registered
from worldland_cli.transfer.progress import NullProgress
from worldland_cli.transfer.ssh import Credentials, connect, trusted_host_keys
from worldland_cli.transfer.targets import SshLocation, parse_ssh_url
from worldland_cli.transfer.upload import upload


class LaneSpy:
    """Counts lanes opened (and the keys each trusted) and lanes killed."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.opened: list[list[str]] = []
        self.killed = 0
        self.entered = threading.Event()
        real_open, real_kill = OpenSshLane.open, OpenSshLane.kill
        spy = self

        def open_(
            cls: type[OpenSshLane], loc: Any, creds: Any, keys: list[str], **kw: Any
        ) -> OpenSshLane:
            spy.opened.append(list(keys))
            spy.entered.set()
            return real_open(loc, creds, keys, **kw)

        def kill(lane: OpenSshLane) -> None:
            spy.killed += 1
            real_kill(lane)

        monkeypatch.setattr(OpenSshLane, "open", classmethod(open_))
        monkeypatch.setattr(OpenSshLane, "kill", kill)


def _connect_after_the_lane_started(monkeypatch: pytest.MonkeyPatch, spy: LaneSpy) -> None:
    """The engine's connect() waits until a lane's handshake has begun: if the engine only
    opened its lane after connecting, this would time out and fail the transfer."""

    async def connect_later(loc: SshLocation, creds: Credentials) -> asyncssh.SSHClientConnection:
        started = await asyncio.to_thread(spy.entered.wait, 10)
        assert started, "no lane was opening while the connection opened"
        return await connect(loc, creds)

    monkeypatch.setattr(engine_module, "connect", connect_later)


def _send(tmp_path: Path, sshd: SshdServer, creds: Credentials, size: int) -> Callable[[], Any]:
    src = random_file(tmp_path / "src" / "big.bin", size)
    remote = tmp_path / "remote"
    remote.mkdir()

    def run() -> Any:
        summary = asyncio.run(upload([src], parse_ssh_url(sshd.url(str(remote)), "x"), creds))
        assert sha256_of(remote / "big.bin") == sha256_of(src)
        return summary

    return run


def _receive(
    tmp_path: Path, sshd: SshdServer, creds: Credentials, size: int, opts: Options | None = None
) -> Callable[[], Any]:
    src = random_file(tmp_path / "remote" / "big.bin", size)
    back = tmp_path / "back"

    def run() -> Any:
        loc = parse_ssh_url(sshd.url(str(src)), "x")
        summary = asyncio.run(download(loc, back, creds, opts))
        assert sha256_of(back / "big.bin") == sha256_of(src)
        return summary

    return run


@pytest.mark.parametrize("direction", ["send", "receive"])
def test_the_first_lane_opens_while_the_connection_opens_and_carries_the_file(
    sshd: SshdServer,
    creds: Credentials,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    direction: str,
) -> None:
    spy = LaneSpy(monkeypatch)
    _connect_after_the_lane_started(monkeypatch, spy)
    move = (_send if direction == "send" else _receive)(tmp_path, sshd, creds, LANE_MIN + 7)
    summary = move()
    assert summary.files[0].carried_by == "openssh"
    # One lane: the head start was the one used, trusting the key known_hosts holds.
    assert spy.opened == [[sshd.host_public_key]]
    assert _our_ssh_children() == []


def test_a_head_start_nobody_needs_is_killed(
    sshd: SshdServer, creds: Credentials, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A receive cannot know its sizes before the listing: the lane it opened on the chance
    of a large file is killed once the listing shows none."""
    spy = LaneSpy(monkeypatch)
    summary = _receive(tmp_path, sshd, creds, 1000)()
    assert summary.files[0].carried_by != "openssh"
    assert len(spy.opened) == 1
    assert spy.killed >= 1  # stopped mid-handshake, or killed once open
    assert _our_ssh_children() == []


@pytest.mark.parametrize(
    "why",
    ["small files to send", "a small code", "no openssh", "dry run", "several lanes asked for"],
)
def test_no_head_start_where_no_lane_can_be_wanted(
    sshd: SshdServer,
    creds: Credentials,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    why: str,
) -> None:
    spy = LaneSpy(monkeypatch)
    if why == "small files to send":
        _send(tmp_path, sshd, creds, 1000)()
    elif why == "a small code":
        src = random_file(tmp_path / "remote" / "big.bin", 1000)
        code = Registered("big.bin", 1000, sha256_of(src))
        asyncio.run(
            download(
                parse_ssh_url(sshd.url(str(src)), "x"),
                tmp_path / "back",
                creds,
                Options(registered=code),
            )
        )
    elif why == "no openssh":
        _receive(tmp_path, sshd, creds, LANE_MIN + 1, Options(openssh=False))()
    elif why == "dry run":
        random_file(tmp_path / "remote" / "big.bin", LANE_MIN + 1)
        loc = parse_ssh_url(sshd.url(str(tmp_path / "remote" / "big.bin")), "x")
        asyncio.run(download(loc, tmp_path / "back", creds, Options(dry_run=True)))
    else:
        _receive(tmp_path, sshd, creds, LANE_MIN + 1, Options(lanes=2))()
    assert spy.opened == []


def test_a_head_start_the_server_refuses_falls_back_to_the_verified_key(
    sshd: SshdServer, creds: Credentials, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The head start trusting keys the server does not show fails as a host key refusal;
    that is no reason to stop: the lane pinned to the key the connection verified carries."""
    other = asyncssh.generate_private_key("ssh-ed25519").export_public_key().decode()
    stale = " ".join(other.split()[:2])
    monkeypatch.setattr(engine_module, "trusted_host_keys", lambda loc, creds: [stale])
    spy = LaneSpy(monkeypatch)
    summary = _receive(tmp_path, sshd, creds, LANE_MIN + 3)()
    assert summary.files[0].carried_by == "openssh"
    assert spy.opened == [[stale], [sshd.host_public_key]]
    assert _our_ssh_children() == []


def test_a_head_start_on_a_far_link_is_killed(
    sshd: SshdServer, creds: Credentials, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Far away, large files go over channels of the one connection: no OpenSSH lane."""
    spy = LaneSpy(monkeypatch)
    loc = parse_ssh_url(sshd.url(str(tmp_path)), "x")

    async def main() -> None:
        lanes = Lanes(loc, creds, NullProgress(), enabled=True)

        async def far(window: int) -> int:
            return 4

        monkeypatch.setattr(lanes, "count", far)
        lanes.start_first([sshd.host_public_key])
        conn = await connect(loc, creds)
        async with conn:
            lanes.start_early(conn, [LANE_MIN])
            await lanes.end_early()

    asyncio.run(main())
    assert len(spy.opened) == 1
    assert spy.killed >= 1  # stopped mid-handshake, or killed once open
    assert _our_ssh_children() == []


def test_trusted_host_keys_are_the_pin_or_the_hosts_known_hosts_entries(
    sshd: SshdServer, tmp_path: Path
) -> None:
    loc = parse_ssh_url(sshd.url("/x"), "x")
    known = tmp_path / "known_hosts"
    other = " ".join(
        asyncssh.generate_private_key("ssh-ed25519").export_public_key().decode().split()[:2]
    )
    revoked = " ".join(
        asyncssh.generate_private_key("ssh-ed25519").export_public_key().decode().split()[:2]
    )
    where = f"[{loc.host}]:{loc.port}"
    known.write_text(
        f"[elsewhere.example]:{loc.port} {other}\n"
        f"{where} {sshd.host_public_key}\n"
        f"{where} {revoked}\n"
        f"@revoked {where} {revoked}\n"
    )
    assert trusted_host_keys(loc, Credentials(known_hosts=known)) == [sshd.host_public_key]
    pinned = dataclasses.replace(loc, host_key=other)
    assert trusted_host_keys(pinned, Credentials(known_hosts=known)) == [other]
    # Nothing to trust: the connection itself says why (no head start).
    assert trusted_host_keys(loc, Credentials(known_hosts=tmp_path / "missing")) == []


def test_a_head_start_towards_a_silent_server_does_not_hold_up_the_failure(
    creds: Credentials, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A pod that accepts TCP and never says a word: ssh would wait 15 s for its banner.

    The connection's own failure (here at once) must end the run at once, the head start's
    ssh killed mid-handshake rather than waited for (the same holds for Ctrl-C).
    """
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(8)  # the kernel completes the TCP handshake; nobody ever answers
    port = silent.getsockname()[1]
    key = " ".join(
        asyncssh.generate_private_key("ssh-ed25519").export_public_key().decode().split()[:2]
    )
    loc = SshLocation("127.0.0.1", port, "x", "/remote/big.bin", host_key=key)
    spy = LaneSpy(monkeypatch)

    async def refused(loc: SshLocation, creds: Credentials) -> asyncssh.SSHClientConnection:
        await asyncio.to_thread(spy.entered.wait, 10)  # the head start's ssh is under way
        raise UnreachableError(f"cannot reach 127.0.0.1:{port}: refused")

    monkeypatch.setattr(engine_module, "connect", refused)
    began = time.monotonic()
    try:
        with pytest.raises(UnreachableError):
            asyncio.run(download(loc, tmp_path / "back", creds))
    finally:
        silent.close()
    assert time.monotonic() - began < 5
    assert len(spy.opened) == 1
    assert _our_ssh_children() == []
