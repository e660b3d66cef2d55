"""docs/support-runbook.md describes what the commands do today: every command it tells
support to run parses, and every check id it tells them to look for is one a probe reports."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.support.commandlines import parse_failure, worldland_argv
from worldland_cli.requirements import all_requirements

REPO = Path(__file__).resolve().parents[2]
RUNBOOK = (REPO / "docs" / "support-runbook.md").read_text()
# What the probes and the daemon can report, by id: diag's checks and the daemon's log events.
SOURCES = "\n".join(
    p.read_text()
    for folder in ("diag", "daemon")
    for p in (REPO / "src" / "worldland_cli" / folder).glob("*.py")
)


def command_lines() -> list[str]:
    """Inline `worldland ...` spans and the lines of code blocks, as the runbook writes them."""
    spans = re.findall(r"`((?:sudo )?worldland [^`]+)`", RUNBOOK)
    blocks = re.findall(r"```sh\n(.*?)```", RUNBOOK, flags=re.DOTALL)
    return spans + [line.strip() for block in blocks for line in block.splitlines()]


COMMANDS = sorted({" ".join(a) for line in command_lines() if (a := worldland_argv(line))})


def test_the_runbook_names_commands() -> None:
    assert "diag bundle -o bundle.tar.gz" in COMMANDS and len(COMMANDS) > 10


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_in_the_runbook_parses(command: str) -> None:
    assert parse_failure(command.split(" ")) is None


def test_every_check_id_and_event_in_the_runbook_is_reported() -> None:
    kinds = "gpu|network|k8s|certs|kube|daemon|watch|usage|interval|heartbeat|hub|certificate|api"
    named = set(re.findall(rf"`((?:{kinds}|slices)\.[a-z][a-z_-]*)`", RUNBOOK))
    doctor = {r.id for r in all_requirements()}
    unknown = sorted(i for i in named if f'"{i}"' not in SOURCES and i not in doctor)
    assert named and unknown == []
