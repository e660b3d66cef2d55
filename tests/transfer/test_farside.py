"""The far-side helper, run for real through sshd: its requests, its verdicts, its clean-up.

Each test starts the helper on a real connection (as the engine does) and asks it directly,
so what it does on the far disk can be checked file by file.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import pytest

from tests.support.sshd import SshdServer, account_home, sshd_missing_reason, start_sshd
from tests.transfer.conftest import random_file
from worldland_cli.transfer.farreplies import Got, OsFailure
from worldland_cli.transfer.farside import FarSide
from worldland_cli.transfer.ssh import Credentials, connect
from worldland_cli.transfer.targets import parse_ssh_url

T = TypeVar("T")


def _with_helper(
    server: SshdServer, creds: Credentials, work: Callable[[FarSide | None], Awaitable[T]]
) -> T:
    async def run() -> T:
        conn = await connect(parse_ssh_url(server.url("/"), "x"), creds)
        async with conn:
            helper = await FarSide.launch(conn)
            try:
                return await work(helper)
            finally:
                if helper is not None:
                    await helper.close()

    return asyncio.run(run())


def _head(path: Path, data: bytes, overwrite: bool = False, sha: str = "") -> dict[str, Any]:
    return {
        "path": str(path),
        "size": len(data),
        "mode": 0o640,
        "atime": 1_000_000_000,
        "mtime": 1_500_000_000,
        "sha256": sha or hashlib.sha256(data).hexdigest(),
        "overwrite": overwrite,
    }


def test_stat_hash_and_mkdirs_answer_a_batch_each(
    sshd: SshdServer, creds: Credentials, tmp_path: Path
) -> None:
    f = random_file(tmp_path / "a" / "f.bin", 3000)
    (tmp_path / "a" / "link").symlink_to("f.bin")

    async def work(helper: FarSide | None) -> None:
        assert helper is not None
        found = await helper.stat(
            [str(f), str(tmp_path / "a"), str(tmp_path / "a" / "link"), str(tmp_path / "nothing")]
        )
        assert [getattr(s, "kind", None) for s in found] == ["file", "dir", "link", None]
        assert found[0].size == 3000 and getattr(found[2], "link_target", "") == "f.bin"
        assert isinstance(found[3], OsFailure) and found[3].errno == 2
        hashes = await helper.hashes([(str(f), -1), (str(f), 100), (str(tmp_path / "a"), -1)])
        assert hashes[0] == hashlib.sha256(f.read_bytes()).hexdigest()
        assert hashes[1] == hashlib.sha256(f.read_bytes()[:100]).hexdigest()
        assert isinstance(hashes[2], OsFailure)  # a directory is no file to hash
        made = await helper.mkdirs([str(tmp_path / "b"), str(tmp_path / "b" / "c" / "d")])
        assert made == [None, None] and (tmp_path / "b" / "c" / "d").is_dir()
        refused = await helper.mkdirs([str(f / "x")])
        assert isinstance(refused[0], OsFailure)

    _with_helper(sshd, creds, work)


def test_put_places_what_it_verified_and_nothing_else(
    sshd: SshdServer, creds: Credentials, tmp_path: Path
) -> None:
    d = tmp_path / "pod"
    d.mkdir()
    (d / "taken.bin").write_bytes(b"theirs")
    (d / "again.bin").write_bytes(b"ours")
    good, lied, taken, again = b"x" * 5000, b"y" * 10, b"mine", b"ours"
    heads = [
        _head(d / "good.bin", good),
        _head(d / "lied.bin", lied, sha="0" * 64),  # our hash disagrees with the bytes sent
        _head(d / "taken.bin", taken),
        _head(d / "again.bin", again),  # placed before: a lost answer, retried
        _head(d / "empty.bin", b""),
    ]

    async def work(helper: FarSide | None) -> Any:
        assert helper is not None
        return await helper.put(heads, [good, lied, taken, again, b""])

    verdicts = _with_helper(sshd, creds, work)
    assert verdicts[0] == {"sha256": hashlib.sha256(good).hexdigest(), "placed": True}
    assert verdicts[1]["placed"] is False and not (d / "lied.bin").exists()
    assert verdicts[2]["placed"] is False and verdicts[2]["exists"] is True
    assert verdicts[3]["placed"] is True and verdicts[3]["exists"] is True
    assert verdicts[4]["placed"] is True and (d / "empty.bin").read_bytes() == b""
    assert (d / "good.bin").read_bytes() == good and (d / "taken.bin").read_bytes() == b"theirs"
    st = (d / "good.bin").stat()
    assert (st.st_mode & 0o777, int(st.st_mtime)) == (0o640, 1_500_000_000)
    assert sorted(p.name for p in d.iterdir()) == [
        "again.bin", "empty.bin", "good.bin", "taken.bin",
    ]  # fmt: skip  # no staging file left


def test_get_reads_at_most_what_was_asked_and_says_what_changed(
    sshd: SshdServer, creds: Credentials, tmp_path: Path
) -> None:
    a = random_file(tmp_path / "a.bin", 4000)
    grown = random_file(tmp_path / "grown.bin", 200)

    async def work(helper: FarSide | None) -> list[Got | OsFailure]:
        assert helper is not None
        items = [(str(a), 4000), (str(grown), 100), (str(tmp_path / "gone"), 10)]
        return [got async for got in helper.get(items)]

    first, second, third = _with_helper(sshd, creds, work)
    assert isinstance(first, Got) and first.data == a.read_bytes() and not first.changed
    assert first.sha256 == hashlib.sha256(first.data).hexdigest()
    assert isinstance(second, Got) and second.changed and len(second.data) == 100
    assert isinstance(third, OsFailure) and third.errno == 2


def test_the_helper_is_found_after_whatever_the_login_shell_prints(tmp_path: Path) -> None:
    if sshd_missing_reason():
        pytest.skip(str(sshd_missing_reason()))
    noisy = "echo 'Welcome to your pod!'; printf 'no newline at the end'\n"
    extra = account_home(tmp_path / "home", noisy)
    with start_sshd(tmp_path / "sshd", extra_config=extra) as server:
        creds = Credentials(identity=server.client_key, known_hosts=server.known_hosts)
        found = _with_helper(server, creds, lambda h: asyncio.sleep(0, h))
    assert found is not None


def test_an_sftp_only_account_has_no_helper_and_says_so_at_once(tmp_path: Path) -> None:
    if sshd_missing_reason():
        pytest.skip(str(sshd_missing_reason()))
    with start_sshd(tmp_path / "sshd", extra_config=["ForceCommand internal-sftp"]) as server:
        creds = Credentials(identity=server.client_key, known_hosts=server.known_hosts)
        began = time.monotonic()
        found = _with_helper(server, creds, lambda h: asyncio.sleep(0, h))
        waited = time.monotonic() - began
    assert found is None
    assert waited < 30  # answered by internal-sftp's VERSION, not by the hello's time-out


def test_a_version_managers_shim_is_passed_over_for_the_systems_python(tmp_path: Path) -> None:
    # pyenv's and asdf's shims are shell scripts that pick a python (~0.1 s a start); the
    # helper runs on any python3, so the system's is taken where there is one.
    if sshd_missing_reason() or not Path("/usr/bin/python3").exists():
        pytest.skip("needs sshd and /usr/bin/python3")
    shims = tmp_path / "home" / ".pyenv" / "shims"
    shims.mkdir(parents=True)
    (shims / "python3").write_text(f"#!/bin/sh\ntouch {tmp_path / 'shim-used'}\nexit 1\n")
    (shims / "python3").chmod(0o755)
    extra = account_home(tmp_path / "home", f'export PATH="{shims}:$PATH"\n')
    with start_sshd(tmp_path / "sshd", extra_config=extra) as server:
        creds = Credentials(identity=server.client_key, known_hosts=server.known_hosts)
        found = _with_helper(server, creds, lambda h: asyncio.sleep(0, h))
    assert found is not None and not (tmp_path / "shim-used").exists()
