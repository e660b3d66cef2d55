"""Fixtures for the tests of the one door every command goes through (errors, --json)."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture
def broken_config(worldland_home: Path) -> Path:
    """A config.toml that is not TOML: every command that reads settings must say so."""
    worldland_home.mkdir(parents=True, exist_ok=True)
    path = worldland_home / "config.toml"
    path.write_text('hub = "http://127.0.0.1:1\n')
    return path
