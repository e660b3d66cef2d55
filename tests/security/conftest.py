"""Fixtures for the attack tests: real hubs and a real sshd on loopback, a CLI runner.

Each test here failed before its fix. The hostile side is built in the tests' own modules:
a relaying fake hub (:mod:`tests.security.relay`) and a lying pod
(:mod:`tests.security.hostile_sftp`), which the honest sshd here is compared with. The hub
tests use the fixtures of ``tests/hub/conftest.py`` too (real SIWE logins, certificates).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from typer.testing import CliRunner, Result

from tests.hub.conftest import client, stub_hub, tls_hub, wallet
from tests.support.hub import RunningHub, start_hub
from tests.transfer.conftest import sshd
from worldland_cli.main import app

__all__ = ["client", "sshd", "stub_hub", "tls_hub", "wallet"]


@pytest.fixture(scope="module")
def real_hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningHub]:
    """The genuine hub an attacker wants a session on (plain HTTP, shared by a module)."""
    running = start_hub(tmp_path_factory.mktemp("realhub"))
    yield running
    running.stop()


def cli(*args: str) -> Result:
    """Run `worldland ARGS` in this process (stdout and stderr kept apart)."""
    return CliRunner().invoke(app, list(args))


def flat(text: str) -> str:
    """Text with rich's line wrapping undone, for matching whole sentences."""
    return " ".join(text.split())
