"""An installed hub (a wheel, no source tree) has the compiled contracts it deploys and calls."""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

from tests.support.anvil import REPO

from .conftest import BUILD

# What setuptools needs to build the wheel: the project's metadata and its two packages.
SOURCES = ("pyproject.toml", "README.md", "src", "hub_stub")


def test_an_installed_wheel_loads_the_bundled_contracts(tmp_path: Path) -> None:
    tree = tmp_path / "tree"
    tree.mkdir()
    for name in SOURCES:  # a copy: building in place would write build/ into the repository
        source = REPO / name
        if source.is_dir():
            shutil.copytree(source, tree / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(source, tree / name)
    wheels = tmp_path / "wheels"
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "-q"]
    subprocess.run([*pip, "wheel", "--no-deps", "-w", str(wheels), str(tree)], check=True)
    (wheel,) = wheels.glob("worldland-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        shipped = sorted(n for n in archive.namelist() if n.startswith("hub_stub/contracts/"))
    assert shipped == [f"hub_stub/contracts/{p.name}" for p in sorted(BUILD.glob("*.json"))]

    target = tmp_path / "installed"
    subprocess.run([*pip, "install", "--no-deps", "--target", str(target), str(wheel)], check=True)
    probe = (
        "import sys; sys.path.insert(0, sys.argv[1]); import hub_stub.chain as c; "
        "assert c.__file__.startswith(sys.argv[1]), c.__file__; "
        "a = c.Artifact.bundled('WorldlandPayments'); t = c.Artifact.bundled('TestToken'); "
        "print(a.name, len(a.bytecode) > 1000, t.entry('function', 'mint')['name'])"
    )
    # Run from the temporary directory, so the repository is not on sys.path.
    out = subprocess.run(
        [sys.executable, "-c", probe, str(target)],
        cwd=tmp_path,
        check=True,
        capture_output=True,
        text=True,
    )
    assert out.stdout.split() == ["WorldlandPayments", "True", "mint"]
