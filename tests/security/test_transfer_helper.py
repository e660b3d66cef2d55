"""A pod that lies through the far-side helper: small files received packed (issue 14).

Small files now arrive many to a stream from one far-side process, which the pod controls
(it can put any ``python3`` first in its PATH; ``lying_helper.py`` is one). Whatever it
sends, a file is never taken longer than the listing said, a frame is never read past its
bound, an answer must be to a question asked, and a lie fails the receive in one line with
nothing written to LOCAL_DIR: no file, no staging file.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.security.conftest import cli, flat
from tests.support.sshd import SshdServer, account_home, sshd_missing_reason, start_sshd
from tests.transfer.conftest import random_file

LYING = Path(__file__).with_name("lying_helper.py")


@pytest.fixture
def lying_pod(tmp_path: Path) -> Iterator[tuple[SshdServer, Path]]:
    """A real sshd whose account runs ``lying_helper.py`` as its python3."""
    reason = sshd_missing_reason()
    if reason:
        pytest.skip(reason)
    fake = tmp_path / "fakebin"
    fake.mkdir()
    (fake / "python3").write_text(f'#!/bin/sh\nexec {sys.executable} {LYING} "$@"\n')
    (fake / "python3").chmod(0o755)
    home = tmp_path / "home"
    extra = account_home(home, f'export PATH="{fake}:$PATH"\n')
    with start_sshd(tmp_path / "sshd", extra_config=extra) as server:
        yield server, home


@pytest.mark.parametrize(
    ("lie", "said"),
    [
        ("longer", "a file of 5096 bytes where 1000 were asked for"),
        ("more-data", "more bytes than the file's header announced"),
        ("huge-frame", "a frame of 4294967295 bytes"),
        ("stray", "an answer b'R' to no question"),
        ("not-json", "an answer that is not JSON"),
    ],
)
def test_a_lying_helper_fails_the_receive_and_writes_nothing(
    lying_pod: tuple[SshdServer, Path], tmp_path: Path, lie: str, said: str
) -> None:
    sshd, home = lying_pod
    (home / "lie").write_text(lie)
    random_file(tmp_path / "pod" / "ckpt" / "weights.bin", 1000)
    back = tmp_path / "back"
    result = cli(
        *("receive", sshd.url(str(tmp_path / "pod" / "ckpt")), str(back), "--retries", "0"),
        *("--identity", str(sshd.client_key), "--known-hosts", str(sshd.known_hosts)),
    )
    assert result.exit_code == 1, result.output
    assert f"the far side's helper broke its protocol: {said}" in flat(result.output)
    assert "hostile" in result.output
    assert [str(p.relative_to(back)) for p in back.rglob("*")] == ["ckpt"]
