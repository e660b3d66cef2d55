"""Every command's --help, as a person reads it: usage lines written the usual way.

The tree is walked from the real app (typer.main.get_command), so a new command is checked
without being listed here.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import typer
import typer.main
from typer.core import TyperGroup
from typer.testing import CliRunner

from tests.support.commandlines import parse_failure, worldland_argv
from worldland_cli.main import app

WORLDLAND = str(Path(sys.executable).with_name("worldland"))


def commands() -> Iterator[tuple[tuple[str, ...], bool]]:
    """The path of every command and group, e.g. (("diag", "gpu"), False); () is the app."""

    def walk(command: object, path: tuple[str, ...]) -> Iterator[tuple[tuple[str, ...], bool]]:
        group = isinstance(command, TyperGroup)
        yield path, group
        if isinstance(command, TyperGroup):
            ctx = typer.Context(command, info_name=path[-1] if path else "worldland")
            for name in command.list_commands(ctx):
                yield from walk(command.get_command(ctx, name), (*path, name))

    yield from walk(typer.main.get_command(app), ())


EVERY = [path for path, _ in commands()]
LEAVES = [path for path, group in commands() if not group]


def help_text(path: tuple[str, ...]) -> str:
    result = CliRunner().invoke(app, [*path, "--help"])
    assert result.exit_code == 0, result.output
    return result.stdout


def test_the_tree_is_walked() -> None:
    assert ("send",) in LEAVES and ("diag", "fix", "cni") in LEAVES and len(LEAVES) > 20


@pytest.mark.parametrize(
    ("command", "usage"),
    [
        ("send", "Usage: worldland send [OPTIONS] PATH... TARGET"),
        ("receive", "Usage: worldland receive [OPTIONS] SOURCE [LOCAL_DIR]"),
    ],
)
def test_transfer_usage_reads_as_a_person_writes_it(command: str, usage: str) -> None:
    proc = subprocess.run(
        [WORLDLAND, command, "--help"], capture_output=True, text=True, timeout=60, check=True
    )
    assert proc.stdout.splitlines()[0] == usage


@pytest.mark.parametrize("path", LEAVES, ids=" ".join)
def test_usage_has_no_typer_braces(path: tuple[str, ...]) -> None:
    usage = help_text(path).splitlines()[0]
    assert usage.startswith(f"Usage: worldland {' '.join(path)} [OPTIONS]"), usage
    # typer's {NAME} and [[NAME]]: give the command cls=WrittenUsage (commands/usage.py).
    assert "{" not in usage and "[[" not in usage and "]]" not in usage, usage


def examples(help_: str) -> list[str]:
    """The lines of the Examples block: from "Examples:" to the next blank line."""
    lines = help_.splitlines()
    starts = [i for i, line in enumerate(lines) if line.strip() == "Examples:"]
    assert starts, "no 'Examples:' section"
    block: list[str] = []
    for line in lines[starts[0] + 1 :]:
        if not line.strip():
            break
        block.append(line.strip())
    return block


def command_at(path: tuple[str, ...]) -> object:
    command: object = typer.main.get_command(app)
    for name in path:
        assert isinstance(command, TyperGroup)
        command = command.get_command(typer.Context(command), name)
    return command


@pytest.mark.parametrize("path", EVERY, ids=lambda p: " ".join(p) or "worldland")
def test_every_command_and_group_has_examples(path: tuple[str, ...]) -> None:
    block = examples(help_text(path))
    command = " ".join(("worldland", *path))
    assert any(f"{line} ".startswith(f"{command} ") for line in block), block
    # click rewraps a paragraph into one unless a \b line comes first: examples would run
    # into each other (`worldland daemon worldland daemon --listen ...`).
    assert "\b\nExamples:" in str(getattr(command_at(path), "help", ""))


@pytest.mark.parametrize("path", EVERY, ids=lambda p: " ".join(p) or "worldland")
def test_every_example_parses_as_written(path: tuple[str, ...]) -> None:
    lines = [worldland_argv(line) for line in examples(help_text(path))]
    failures = {
        " ".join(args): failure
        for args in lines
        if args is not None and (failure := parse_failure(args)) is not None
    }
    assert failures == {}
