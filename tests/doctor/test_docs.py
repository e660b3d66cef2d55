"""The docs that doctor points people at must exist, cover every check, and open anywhere."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from worldland_cli import guides
from worldland_cli.main import app
from worldland_cli.requirements import all_requirements

DOCS = Path(__file__).resolve().parents[2] / "docs"
SOURCES = DOCS.parent / "src" / "worldland_cli"


def _anchors(markdown: str) -> set[str]:
    """GitHub's heading slugs: lower case, punctuation dropped, spaces to dashes."""
    headings = re.findall(r"(?m)^#{1,6} (.+)$", markdown)
    return {re.sub(r"[^\w\- ]", "", h).strip().lower().replace(" ", "-") for h in headings}


def doc_references() -> set[str]:
    """Every doc topic the CLI's code can print (doctor's `doc`, hints naming a doc)."""
    source = "\n".join(p.read_text() for p in SOURCES.rglob("*.py"))
    return set(re.findall(r"\"((?:provider-guide|support-runbook|configuration|transfer)"
                          r"#[a-z0-9-]+)\"", source))  # fmt: skip


def test_every_doc_link_in_the_checks_resolves() -> None:
    anchors = _anchors((DOCS / "provider-guide.md").read_text())
    links = {r.split("#", 1)[1] for r in doc_references() if r.startswith("provider-guide#")}
    assert links, "the checks link no docs at all"
    assert sorted(links - anchors) == []


@pytest.mark.parametrize("reference", sorted(doc_references()))
def test_worldland_docs_opens_every_reference(reference: str) -> None:
    """An installed worldland has no docs/ folder: every reference opens with `worldland docs`."""
    shown = CliRunner().invoke(app, ["docs", reference])
    assert shown.exit_code == 0, shown.output
    first = shown.stdout.splitlines()[0]
    assert first.startswith("## ") and guides.anchor(first.lstrip("# ")) == reference.split("#")[1]
    assert shown.stdout.count("\n## ") == 0  # the one section, not the ones after it


def test_docs_lists_topics_and_refuses_unknown_ones_with_what_there_is() -> None:
    listed = json.loads(CliRunner().invoke(app, ["docs", "--json"]).stdout)
    assert listed["ok"] and set(listed["topics"]) == {p.stem for p in DOCS.glob("*.md")}
    whole = json.loads(CliRunner().invoke(app, ["docs", "support-runbook", "--json"]).stdout)
    assert whole["text"] == (DOCS / "support-runbook.md").read_text()
    unknown = CliRunner().invoke(app, ["docs", "provider-guide#nope"])
    assert unknown.exit_code == 2 and "its sections: " in unknown.output
    assert "the docs are: " in CliRunner().invoke(app, ["docs", "nope"]).output


def test_a_shell_comment_in_an_example_is_not_a_heading() -> None:
    text = "# Guide\n\n## Kernel\n\n```sh\n# not a heading\nsudo modprobe x\n```\n\n## Swap\n"
    assert [h.anchor for h in guides.headings(text)] == ["guide", "kernel", "swap"]


def test_json_schema_doc_lists_every_check_id() -> None:
    text = (DOCS / "doctor-json.md").read_text()
    missing = [r.id for r in all_requirements() if f"| `{r.id}` |" not in text]
    assert missing == []
