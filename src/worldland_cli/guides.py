"""The docs shipped inside the package, so ``worldland docs TOPIC`` opens them anywhere.

A provider who installed the wheel has no checkout, so a reference such as
``docs/provider-guide.md#containerd`` would name a file they do not have. The Markdown files
of ``docs/`` ship as ``worldland_cli/docs`` (like ``templates/``), and every reference the
CLI prints is a topic: a file's name without ``.md``, optionally with the anchor of one
of its sections as GitHub spells it (``provider-guide#containerd``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from importlib import resources
from importlib.resources.abc import Traversable

_FENCE = re.compile(r"^(```|~~~)")
_HEADING = re.compile(r"^(#{1,6})\s+(.+?)\s*#*\s*$")


class UnknownTopic(LookupError):
    """No such doc, or no such section in it; the message lists what there is."""


@dataclass(frozen=True)
class Heading:
    level: int
    title: str
    anchor: str
    line: int  # index into the document's lines


def _docs() -> Traversable:
    return resources.files("worldland_cli").joinpath("docs")


def topics() -> dict[str, str]:
    """Every topic (file name without ``.md``) with its title (the first heading)."""
    found: dict[str, str] = {}
    for entry in sorted(_docs().iterdir(), key=lambda e: e.name):
        if entry.name.endswith(".md"):
            heads = headings(entry.read_text())
            found[entry.name.removesuffix(".md")] = heads[0].title if heads else ""
    return found


def anchor(title: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to dashes."""
    return re.sub(r"[^\w\- ]", "", title).strip().lower().replace(" ", "-")


def headings(text: str) -> list[Heading]:
    """The Markdown headings of ``text``, outside code blocks (a ``# comment`` in a shell
    example is not a heading)."""
    found: list[Heading] = []
    fenced = False
    for index, line in enumerate(text.splitlines()):
        if _FENCE.match(line):
            fenced = not fenced
            continue
        match = None if fenced else _HEADING.match(line)
        if match:
            title = match.group(2)
            found.append(Heading(len(match.group(1)), title, anchor(title), index))
    return found


def split_topic(reference: str) -> tuple[str, str]:
    """``docs/provider-guide.md#kernel``, ``provider-guide.md#kernel`` or
    ``provider-guide#kernel`` -> (``provider-guide``, ``kernel``)."""
    name, _, section = reference.strip().partition("#")
    name = name.removeprefix("docs/").removesuffix(".md")
    return name, section


def read(reference: str) -> tuple[str, str]:
    """The topic's canonical name and its text: the whole doc, or the one section its
    anchor names (from that heading to the next one of the same or a higher level)."""
    name, section = split_topic(reference)
    known = topics()
    if name not in known:
        raise UnknownTopic(f"no doc {name!r}; the docs are: {', '.join(known)}")
    text = _docs().joinpath(f"{name}.md").read_text()
    if not section:
        return name, text
    heads = headings(text)
    match = next((h for h in heads if h.anchor == section), None)
    if match is None:
        sections = ", ".join(h.anchor for h in heads[1:])
        raise UnknownTopic(f"no section {section!r} in {name}; its sections: {sections}")
    end = next(
        (h.line for h in heads if h.line > match.line and h.level <= match.level),
        None,
    )
    lines = text.splitlines()[match.line : end]
    return f"{name}#{section}", "\n".join(lines).rstrip("\n") + "\n"
