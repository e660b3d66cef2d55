"""The docs that doctor points people at must exist and cover every check."""

from __future__ import annotations

import re
from pathlib import Path

from worldland_cli.requirements import all_requirements

DOCS = Path(__file__).resolve().parents[2] / "docs"


def _anchors(markdown: str) -> set[str]:
    """GitHub's heading slugs: lower case, punctuation dropped, spaces to dashes."""
    headings = re.findall(r"(?m)^#{1,6} (.+)$", markdown)
    return {re.sub(r"[^\w\- ]", "", h).strip().lower().replace(" ", "-") for h in headings}


def test_every_doc_link_in_the_checks_resolves() -> None:
    anchors = _anchors((DOCS / "provider-guide.md").read_text())
    source = "\n".join(
        p.read_text() for p in (DOCS.parent / "src/worldland_cli/requirements").glob("*.py")
    )
    links = set(re.findall(r"docs/provider-guide\.md#([a-z0-9-]+)", source))
    assert links, "the checks link no docs at all"
    assert sorted(links - anchors) == []


def test_json_schema_doc_lists_every_check_id() -> None:
    text = (DOCS / "doctor-json.md").read_text()
    missing = [r.id for r in all_requirements() if f"| `{r.id}` |" not in text]
    assert missing == []
