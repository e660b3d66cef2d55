"""The journal's facts: what an action learnt while it ran reaches its undo.

A step that changes something elsewhere than in files (a node registered at the hub)
remembers what (the node id) the moment it knows it; a join killed right after must still
be undone by reset.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import pytest

from tests.join.conftest import FakeHost
from worldland_cli.join.actions import Action, Output
from worldland_cli.join.journal import Journal
from worldland_cli.join.run import join_host, reset_host
from worldland_cli.requirements.base import Finding, JoinSettings, Requirement


@dataclass(frozen=True)
class TellsTheWorld(Action):
    """A toy action that 'changes something elsewhere' and remembers what, as hub steps do."""

    kind: ClassVar[str] = "test-tells-the-world"
    undone: str = ""  # a file the undo writes what it was told

    def describe(self) -> str:
        return "tell the world"

    def as_shell(self) -> str:
        return "true"

    def apply(self, host: Any, out: Output) -> None:
        out.remember(ticket="T-42")
        raise KeyboardInterrupt  # killed right after the world heard of it

    def undo(self, host: Any, before: dict[str, Any], purge: bool, out: Output) -> None:
        host.write_atomic(self.undone, f"{before.get('ticket')} {before.get('seen')}\n")

    def prepare(self, host: Any) -> dict[str, Any]:
        return {"seen": "before"}


class Never(Requirement):
    id = "test.never"
    title = "never met"

    def __init__(self, undone: str) -> None:
        self.undone = undone

    def check(self, host: Any) -> Finding:
        return self.fail("not met", None)

    def plan(self, host: Any, finding: Finding, settings: JoinSettings) -> list[Action]:
        return [TellsTheWorld(self.undone)]


def test_facts_an_action_remembers_reach_its_undo_even_after_a_kill(fake: FakeHost) -> None:
    with pytest.raises(KeyboardInterrupt):
        join_host(fake.host, fake.journal, [Never("/undone")], JoinSettings())
    entries = Journal(fake.host).entries()
    assert [(e.state, e.extra) for e in entries] == [("begun", {"ticket": "T-42"})]
    assert reset_host(fake.host, Journal(fake.host)).failures == []
    assert (fake.root / "undone").read_text() == "T-42 before\n"
