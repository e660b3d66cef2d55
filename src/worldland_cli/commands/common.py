"""What every command shares: the invocation's global options and small parsing helpers.

Errors and results are not rendered here: a command raises or returns, and the door
(:mod:`worldland_cli.commands.dispatch`) renders.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

import typer


@dataclass
class GlobalOptions:
    """What holds for the whole invocation; commands reach it through their context."""

    json: bool = False
    verbose: int = 0


def json_requested(args: Sequence[str]) -> bool:
    """``--json`` anywhere before ``--``: ``worldland --json doctor`` = ``doctor --json``."""
    for arg in args:
        if arg == "--":
            return False
        if arg == "--json":
            return True
    return False


def wants_json(ctx: typer.Context) -> bool:
    """Whether this invocation prints one JSON document (the door decided it, from argv)."""
    options = ctx.find_object(GlobalOptions)
    return options is not None and options.json


def verbosity(ctx: typer.Context) -> int:
    options = ctx.find_object(GlobalOptions)
    return options.verbose if options is not None else 0


def split_ids(values: list[str] | None) -> list[str]:
    """`--only a,b --only c` -> [a, b, c]."""
    out: list[str] = []
    for v in values or []:
        out.extend(p.strip() for p in v.split(",") if p.strip())
    return out


@contextmanager
def noted(note: str | None) -> Iterator[None]:
    """Add ``note`` to the hint of any failure a person can act on raised inside.

    After a transfer code was claimed, a failure must say the code is spent, or the person
    retries it and is told "already used" without knowing why.
    """
    from worldland_cli.errors import ActionableError
    from worldland_cli.host import HostError

    try:
        yield
    except ActionableError as e:
        e.hint = " ".join(filter(None, (e.hint, note))) or None
        raise
    except HostError as e:
        raise ActionableError(str(e), note) from e


def progress(as_json: bool, line: str) -> None:
    """A step announced before it runs (stderr, so stdout stays one JSON document)."""
    if not as_json:
        from worldland_cli.output import err_console

        err_console().print(line, markup=False, highlight=False)
