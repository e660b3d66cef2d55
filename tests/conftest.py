"""Suite-wide isolation: no test may read or write the developer's real ~/.worldland."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest


@pytest.fixture(autouse=True)
def worldland_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    home = tmp_path / "worldland-home"
    monkeypatch.setenv("WORLDLAND_HOME", str(home))
    for var in ("WORLDLAND_HUB", "WORLDLAND_SIWE_DOMAIN", "WORLDLAND_PRIVATE_KEY_FILE"):
        monkeypatch.delenv(var, raising=False)
    yield home
