"""``--exclude PATTERN``: what a send or receive leaves out, with rsync's rules for a pattern.

Patterns are matched against each entry's path as the transfer names it: the sent (or
received) directory's own name first, then the names inside it, joined by ``/``
(``dataset/cache/x.bin``), so ``worldland send dataset ...`` and ``rsync -a dataset ...``
see the same paths. The rules are rsync's (its "INCLUDE/EXCLUDE PATTERN RULES"), the subset
people use:

* ``*`` matches any run of characters but ``/``; ``**`` any run including ``/``; ``?`` one
  character but ``/``; ``[...]`` one character of a class, as in a shell.
* A pattern without a ``/`` matches a name at any depth (``*.pyc``, ``__pycache__``).
* A pattern with a ``/`` inside matches the end of the path at a name boundary
  (``cache/*.bin`` matches ``dataset/cache/a.bin``); one that starts with ``/`` is anchored
  at the top (``/dataset/cache`` matches only that directory).
* A pattern that ends with ``/`` matches only directories (``logs/``).
* An excluded directory is left out with everything in it: it is never walked or listed.

Excluded entries are counted (``excluded`` in --json), not listed one by one: they are what
the renter asked to leave out.
"""

from __future__ import annotations

import re
from dataclasses import dataclass


def _translate(glob: str) -> str:
    """The regular expression for one rsync glob (without its anchoring)."""
    out: list[str] = []
    i = 0
    while i < len(glob):
        c = glob[i]
        if glob.startswith("**", i):
            out.append(".*")
            i += 2
            continue
        if c == "*":
            out.append("[^/]*")
        elif c == "?":
            out.append("[^/]")
        elif c == "[":
            end = glob.find("]", i + 2 if glob[i + 1 : i + 2] in ("!", "^", "]") else i + 1)
            if end < 0:
                out.append(re.escape(c))
            else:
                body = glob[i + 1 : end]
                if body[:1] in ("!", "^"):
                    body = "^" + body[1:]
                out.append("[" + body.replace("\\", "\\\\") + "]")
                i = end + 1
                continue
        else:
            out.append(re.escape(c))
        i += 1
    return "".join(out)


@dataclass(frozen=True)
class _Rule:
    regex: re.Pattern[str]
    dirs_only: bool


class Excludes:
    """The patterns of one transfer; :meth:`excluded` says whether an entry is left out."""

    def __init__(self, patterns: tuple[str, ...] | list[str] = ()) -> None:
        self._rules: list[_Rule] = []
        for pattern in patterns:
            dirs_only = pattern.endswith("/") and pattern.strip("/") != ""
            body = pattern.rstrip("/") if dirs_only else pattern
            if body.startswith("/"):
                regex = "^" + _translate(body.lstrip("/")) + "$"
            else:
                regex = "(?:^|/)" + _translate(body) + "$"
            self._rules.append(_Rule(re.compile(regex, re.DOTALL), dirs_only))

    def __bool__(self) -> bool:
        return bool(self._rules)

    def excluded(self, rel: str, is_dir: bool) -> bool:
        """Whether the entry at ``rel`` (``top/sub/name``) matches a pattern."""
        return any(
            (is_dir or not rule.dirs_only) and rule.regex.search(rel) for rule in self._rules
        )
