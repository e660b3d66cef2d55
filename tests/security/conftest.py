"""Fixtures for the transfer security tests: a real sshd, the honest pod the hostile one
(:mod:`tests.security.hostile_sftp`) is compared with."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.sshd import SshdServer, sshd_missing_reason, start_sshd


@pytest.fixture
def sshd(tmp_path: Path) -> Iterator[SshdServer]:
    reason = sshd_missing_reason()
    if reason:
        pytest.skip(reason)
    with start_sshd(tmp_path / "sshd") as server:
        yield server
