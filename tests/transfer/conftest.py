"""Fixtures for transfer tests: a real sshd per test, credentials for it, a CLI runner."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.support.sshd import SshdServer, sshd_missing_reason, start_sshd
from worldland_cli.transfer.ssh import Credentials


@pytest.fixture
def sshd(tmp_path: Path) -> Iterator[SshdServer]:
    reason = sshd_missing_reason()
    if reason:
        pytest.skip(reason)
    with start_sshd(tmp_path / "sshd") as server:
        yield server


@pytest.fixture
def creds(sshd: SshdServer) -> Credentials:
    return Credentials(
        identity=sshd.client_key, identity_explicit=True, known_hosts=sshd.known_hosts
    )


def sha256_of(path: Path) -> str:
    with path.open("rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def random_file(path: Path, size: int) -> Path:
    """Incompressible content, written in 1 MiB pieces to keep memory flat."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("wb") as f:
        left = size
        while left:
            n = min(left, 1 << 20)
            f.write(os.urandom(n))
            left -= n
    return path


class Hook:
    """A progress sink that runs ``action`` once, when ``at`` bytes have been acknowledged."""

    def __init__(self, at: int, action: Callable[[], object]) -> None:
        self.at = at
        self.action = action
        self.done = 0
        self.fired_at: int | None = None
        self.notes: list[str] = []

    def add_total(self, nbytes: int) -> None:
        return None

    def advance(self, nbytes: int) -> None:
        self.done += nbytes
        if self.fired_at is None and self.done >= self.at:
            self.fired_at = self.done
            self.action()

    def skip(self, nbytes: int) -> None:
        self.done += nbytes

    def note(self, message: str) -> None:
        self.notes.append(message)
