"""Fixtures for the doctor tests: a fake tool directory, a fake root, a Host over both."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.doctor.hosts import make_root, realbin
from tests.support.fakebin import FakeBin
from tests.support.nvml import nvml_t4  # noqa: F401
from worldland_cli.host import Host


@pytest.fixture
def fakebin(tmp_path: Path) -> FakeBin:
    return FakeBin(tmp_path / "fakebin")


@pytest.fixture
def root(tmp_path: Path) -> Path:
    return make_root(tmp_path)


@pytest.fixture
def host(root: Path, fakebin: FakeBin, tmp_path: Path) -> Host:
    """Fakes first; only the real containerd and wg behind them (no real kubectl leaks in)."""
    real = realbin(tmp_path, "containerd", "wg")
    return Host(root, search_path=fakebin.env_path(str(real)), default_timeout=5.0)
