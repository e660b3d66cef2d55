"""Fixtures for the login/wallet/certs/register tests: real hubs, a CLI runner, a fake GPU.

Hubs are module-scoped (starting one costs about two seconds); each test uses its own
WORLDLAND_HOME (tests/conftest.py) and its own wallet, so tests sharing a hub do not see
each other's sessions or nodes.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from tests.support.hub import RunningHub, start_hub
from tests.support.nvml import no_nvml, nvml_t4  # noqa: F401
from worldland_cli.main import app

# A key anyone could recognise in a leak: must never appear in any output, log or error.
PLANTED_KEY = "4c0883a69102937d6231471b5dbb6204fe5129617082792ae468d01a3f362318"
PLANTED_ADDRESS = "0x2c7536E3605D9C16a7a3D7b1898e529396a65c23"


@pytest.fixture(scope="module")
def plain_hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningHub]:
    running = start_hub(tmp_path_factory.mktemp("hub"))
    yield running
    running.stop()


@pytest.fixture(scope="module")
def tls_hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningHub]:
    running = start_hub(tmp_path_factory.mktemp("tlshub"), tls=True)
    yield running
    running.stop()


@pytest.fixture(params=["http", "https"])
def any_hub(request: pytest.FixtureRequest) -> RunningHub:
    """The same test against the plain hub and the TLS hub."""
    name = "plain_hub" if request.param == "http" else "tls_hub"
    hub: RunningHub = request.getfixturevalue(name)
    return hub


def hub_args(hub: RunningHub) -> list[str]:
    """--hub (and --hub-ca for a TLS hub), as a provider would pass them."""
    args = ["--hub", hub.url]
    if hub.tls:
        args += ["--hub-ca", str(hub.ca_cert)]
    return args


def write_key(path: Path, text: str, mode: int = 0o600) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    path.chmod(mode)
    return path


def cli(*args: str) -> Result:
    """Run `worldland ARGS` in this process (stdout and stderr kept apart)."""
    return CliRunner().invoke(app, list(args))


def files_under(root: Path) -> list[str]:
    """Every file below root, relative and sorted (temp files included)."""
    if not root.exists():
        return []
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())
