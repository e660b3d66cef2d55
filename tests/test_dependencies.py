"""Every third-party package the code imports is declared in pyproject.toml.

A package that only arrives as someone else's dependency (PyYAML through kubernetes) works
until that someone drops it; then `pip install worldland` gives a CLI that fails on first
use. Checked for src/, hub_stub/, tests/, bench/ and scripts/ against the dependencies and
the test extra.
"""

from __future__ import annotations

import ast
import re
import sys
import tomllib
from importlib.metadata import packages_distributions
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FIRST_PARTY = {"worldland_cli", "hub_stub", "tests", "bench", "scripts"}


def _normal(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _declared() -> set[str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    requirements = [*project["dependencies"], *project["optional-dependencies"]["test"]]
    return {_normal(re.split(r"[<>=!~;\[ ]", r, maxsplit=1)[0]) for r in requirements}


def _imported() -> dict[str, str]:
    """Top-level module -> a file importing it, for every absolute import."""
    found: dict[str, str] = {}
    for folder in ("src", "hub_stub", "tests", "bench", "scripts"):
        for path in sorted((ROOT / folder).rglob("*.py")):
            for node in ast.walk(ast.parse(path.read_text())):
                if isinstance(node, ast.Import):
                    names = [a.name for a in node.names]
                elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                    names = [node.module]
                else:
                    continue
                for name in names:
                    found.setdefault(name.split(".")[0], str(path.relative_to(ROOT)))
    return found


def test_every_third_party_import_is_declared() -> None:
    declared = _declared()
    owners = packages_distributions()
    missing = {}
    for module, where in _imported().items():
        if module in FIRST_PARTY or module in sys.stdlib_module_names:
            continue
        distributions = {_normal(d) for d in owners.get(module, [module])}
        if not distributions & declared:
            missing[module] = (sorted(distributions), where)
    assert missing == {}
