"""The committed hub_stub/contracts files are what the pinned solc-js makes of the sources."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from tests.support.anvil import REPO, TOOLS, require_tool

from .conftest import BUILD

COMPILE = REPO / "tools" / "compile.js"


def test_committed_build_matches_a_fresh_compile(tmp_path: Path) -> None:
    node = shutil.which("node")
    require_tool(Path(node) if node else REPO / "node", "node")
    require_tool(TOOLS / "solc", "solc-js")
    subprocess.run(
        ["node", str(COMPILE), str(tmp_path)], check=True, capture_output=True, timeout=120
    )

    fresh = sorted(p.name for p in tmp_path.glob("*.json"))
    assert (
        fresh
        == sorted(p.name for p in BUILD.glob("*.json"))
        == [
            "TestToken.json",
            "WorldlandPayments.json",
        ]
    )
    for name in fresh:
        assert (tmp_path / name).read_bytes() == (BUILD / name).read_bytes(), (
            f"hub_stub/contracts/{name} is stale: run `make contracts` and commit it"
        )
