"""Fixtures for diag tests: a fake machine root, fake tool executables, a PKI."""

from __future__ import annotations

import os
import stat
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.support.pki import Pki
from worldland_cli.host import Host

ToolMaker = Callable[[str, str], Path]


@pytest.fixture
def root(tmp_path: Path) -> Path:
    r = tmp_path / "root"
    (r / "etc").mkdir(parents=True)
    (r / "etc" / "hostname").write_text("gpu-node-1\n")
    return r


@pytest.fixture
def bindir(tmp_path: Path) -> Path:
    """Fake tools first, then the real system PATH for sh, sleep, cat, ip."""
    d = tmp_path / "bin"
    d.mkdir()
    return d


@pytest.fixture
def tool(bindir: Path) -> ToolMaker:
    """Write a fake executable: a shell script printing what the real tool prints."""

    def make(name: str, script: str) -> Path:
        p = bindir / name
        p.write_text("#!/bin/sh\n" + script + "\n")
        p.chmod(p.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
        return p

    return make


@pytest.fixture
def host(root: Path, bindir: Path) -> Host:
    return Host(root, search_path=f"{bindir}:{os.environ.get('PATH', '/usr/bin:/bin')}")


@pytest.fixture
def bare_host(root: Path, bindir: Path) -> Host:
    """A host whose PATH holds only the fake tools and the shell basics they need."""
    return Host(root, search_path=f"{bindir}:/usr/bin:/bin")


@pytest.fixture(scope="session")
def pki() -> Pki:
    return Pki.make()
