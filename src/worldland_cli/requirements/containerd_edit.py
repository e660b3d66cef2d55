"""Edit one containerd config file in place: a person's comments, key order and layout stay.

tomlkit round-trips TOML (tomllib and toml drop comments and reorder keys); on top of it,
what this module adds follows the file's own style: the indentation of containerd's
``config default`` (two spaces a table level) or none, double-quoted keys and strings
(go-toml v1, containerd 1.x) or single-quoted ones (go-toml v2, containerd 2.x), and a blank
line between tables. A value that is replaced keeps its line, its quoting and its comment.

Every edit is checked by reading the result back with tomllib: it must be the old data with
exactly the patch applied, or :class:`EditError` is raised and nothing is written. That
guards the unusual layouts (dotted keys, a table split in pieces) that the style rules do
not picture.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass
from typing import Any

import tomlkit
from tomlkit.container import Container, OutOfOrderTableProxy
from tomlkit.exceptions import TOMLKitError
from tomlkit.items import Item, Key, KeyType, SingleKey, String, StringType, Table, Whitespace

# A patch is nested like the file: a dict is a table (created when missing), anything else
# a value to set.
Patch = dict[str, Any]
_BARE = re.compile(r"[A-Za-z0-9_-]+")
_HEADER = re.compile(r"^\s*\[[^\[]")
_Parent = Container | Table | OutOfOrderTableProxy


class EditError(Exception):
    """The file could not be edited in place safely; the message says why."""


def merged(data: dict[str, Any], patch: Patch) -> dict[str, Any]:
    """``data`` with ``patch`` applied: what the edited file must read as."""
    out = dict(data)
    for key, value in patch.items():
        current = out.get(key)
        if isinstance(value, dict) and isinstance(current, dict):
            out[key] = merged(current, value)
        else:
            out[key] = value
    return out


def apply_patch(text: str, patch: Patch, *, name: str = "config") -> str:
    """``text`` with ``patch`` applied in place; ``name`` (the file) is for messages."""
    try:
        before = tomllib.loads(text)
        doc = tomlkit.parse(text)
    except (tomllib.TOMLDecodeError, TOMLKitError) as e:
        raise EditError(f"{name}: invalid TOML: {e}") from e
    style = _Style.of(doc, text)
    try:
        _apply(doc, (), patch, style)
        out = doc.as_string()
        after = tomllib.loads(out)
    except (tomllib.TOMLDecodeError, TOMLKitError) as e:
        raise EditError(f"{name}: cannot be edited in place ({e})") from e
    if after != merged(before, patch):
        raise EditError(f"{name}: cannot be edited in place (its layout defeats the editor)")
    return out


@dataclass(frozen=True)
class _Style:
    unit: int  # spaces per table level (containerd's own dumps: 2; hand-written: often 0)
    literal_keys: bool  # 'io.containerd.cri.v1.runtime' rather than "..."
    literal_strings: bool  # 'runc' rather than "runc"
    blank_lines: bool  # a blank line before most table headers

    @staticmethod
    def of(doc: Container, text: str) -> _Style:
        lines = text.splitlines()
        headers = [i for i, line in enumerate(lines) if _HEADER.match(line) and i > 0]
        spaced = sum(1 for i in headers if not lines[i - 1].strip())
        return _Style(
            unit=_indent_unit(doc),
            literal_keys=re.search(r"""^\s*\[[^\]"']*'""", text, re.M) is not None,
            literal_strings=re.search(r"^\s*[\w\"'.-]+\s*=\s*'", text, re.M) is not None,
            blank_lines=spaced * 2 >= len(headers),
        )

    def key(self, name: str) -> str:
        if _BARE.fullmatch(name):
            return name
        if self.literal_keys and "'" not in name:
            return f"'{name}'"
        return tomlkit.string(name).as_string()

    def value(self, value: Any) -> str:
        if isinstance(value, str):
            literal = self.literal_strings and "'" not in value and "\n" not in value
            return tomlkit.string(value, literal=literal).as_string()
        if isinstance(value, list):
            return "[" + ", ".join(self.value(v) for v in value) + "]"
        if isinstance(value, dict):
            inner = ", ".join(f"{self.key(k)} = {self.value(v)}" for k, v in value.items())
            return "{" + (f" {inner} " if inner else "") + "}"
        return str(tomlkit.item(value).as_string())


def _spaces(indent: str) -> int:
    return len(indent.rsplit("\n", 1)[-1])


def _indent_unit(doc: Container) -> int:
    """Spaces a table level: from the first table header below the top level."""

    def walk(body: list[tuple[Key | None, Item]], depth: int) -> int | None:
        for _key, item in body:
            if not isinstance(item, Table):
                continue
            if depth >= 2 and not item.is_super_table():
                return _spaces(item.trivia.indent) // (depth - 1)
            found = walk(item.value.body, depth + 1)
            if found is not None:
                return found
        return None

    return walk(doc.body, 1) or 0


def _apply(parent: _Parent, path: tuple[str, ...], patch: Patch, style: _Style) -> None:
    for key, value in patch.items():
        if key not in parent:
            if isinstance(value, dict):
                _graft(parent, path, key, value, style)
            else:
                _add_value(parent, path, key, value, style)
            continue
        current = parent[key]
        if isinstance(value, dict):
            if not isinstance(current, Table | OutOfOrderTableProxy):
                raise EditError(f"{'.'.join((*path, key))} is a value, not a table")
            _apply(current, (*path, key), value, style)
        elif current != value:
            _set_value(parent, key, value, style)


def _item(value: Any, style: _Style) -> Item:
    """A value written the way this file writes values."""
    item = tomlkit.parse(f"x = {style.value(value)}\n").item("x")
    assert isinstance(item, Item)  # a value, never a table
    item.trivia.trail = "\n"
    return item


def _set_value(parent: _Parent, key: str, value: Any, style: _Style) -> None:
    """Replace a value in place: its line, its comment and its quoting stay."""
    old = parent.item(key) if isinstance(parent, Container | Table) else None
    if isinstance(value, str) and isinstance(old, String):
        literal = old.type is StringType.SLL and "'" not in value and "\n" not in value
        parent[key] = tomlkit.string(value, literal=literal)
    else:
        parent[key] = _item(value, style)


def _add_value(parent: _Parent, path: tuple[str, ...], key: str, value: Any, style: _Style) -> None:
    """A new key after the table's last key (before its sub-tables), indented like them."""
    item = _item(value, style)
    body = parent.value.body if isinstance(parent, Table) else []
    siblings = [i for k, i in body if k is not None and not isinstance(i, Table | Whitespace)]
    indent = siblings[-1].trivia.indent if siblings else " " * (style.unit * len(path))
    item.trivia.indent = indent.rsplit("\n", 1)[-1]
    if isinstance(parent, Table):
        parent.raw_append(key, item)
    else:
        parent[key] = item


def _render(path: tuple[str, ...], table: Patch, style: _Style) -> list[str]:
    """A new table (and its sub-tables) as containerd's dumps lay them out in this style."""
    leaves = {k: v for k, v in table.items() if not isinstance(v, dict)}
    subs = {k: v for k, v in table.items() if isinstance(v, dict)}
    lines: list[str] = []
    if leaves or not subs:
        header = ".".join(style.key(p) for p in path)
        lines.append(" " * (style.unit * (len(path) - 1)) + f"[{header}]")
        pad = " " * (style.unit * len(path))
        lines += [f"{pad}{style.key(k)} = {style.value(v)}" for k, v in leaves.items()]
    for key, sub in subs.items():
        lines += ([""] if lines and style.blank_lines else []) + _render((*path, key), sub, style)
    return lines


def _trailing_blank(parent: _Parent) -> tuple[Container, Whitespace] | None:
    """The blank line that ends ``parent``'s last table (it separates it from what follows)."""
    if not isinstance(parent, Container | Table):
        return None
    container = parent if isinstance(parent, Container) else parent.value
    while container.body:
        last = container.body[-1][1]
        if isinstance(last, Table):
            container = last.value
            continue
        if isinstance(last, Whitespace) and last.s.strip(" \t") and not last.s.strip():
            return container, last
        return None
    return None


def _graft(parent: _Parent, path: tuple[str, ...], key: str, table: Patch, style: _Style) -> None:
    """Add a new table at the end of ``parent``, with a blank line before it if the file has.

    The table is written as text in this file's style and parsed, so tomlkit keeps exactly
    that text. The blank line that ended the previous block moves below the new one, so the
    table that followed keeps its blank line too.
    """
    full = (*path, key)
    snippet: Any = tomlkit.parse("\n".join(_render(full, table, style)) + "\n")
    for part in full:
        snippet = snippet[part]
    first = snippet
    while first.is_super_table():
        first = next(i for _k, i in first.value.body if isinstance(i, Table))
    blank = _trailing_blank(parent)
    spaced = blank is not None or style.blank_lines
    first.trivia.indent = ("\n" if spaced else "") + first.trivia.indent.rsplit("\n", 1)[-1]
    if blank is not None:
        owner, whitespace = blank
        owner.body.pop()
        last: Table = snippet
        while last.value.body and isinstance(last.value.body[-1][1], Table):
            last = last.value.body[-1][1]
        last.raw_append(None, whitespace)
    name = SingleKey(key) if _BARE.fullmatch(key) else SingleKey(key, t=_key_type(style))
    if isinstance(parent, Table):
        parent.raw_append(name, snippet)
    elif isinstance(parent, Container):
        parent.append(name, snippet)
    else:
        parent[key] = snippet


def _key_type(style: _Style) -> KeyType:
    return KeyType.Literal if style.literal_keys else KeyType.Basic
