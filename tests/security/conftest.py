"""Fixtures for the attack tests: real hubs on loopback, a CLI runner, real wallets."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from typer.testing import CliRunner, Result

from tests.support.hub import RunningHub, start_hub
from worldland_cli.main import app


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
