"""What every command shares: the global options, the hub options, and how results and
errors are rendered (one JSON document with --json, else lines for people)."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any, NoReturn

import typer


def wants_json(ctx: typer.Context, local_flag: bool) -> bool:
    """`worldland --json doctor` and `worldland doctor --json` mean the same."""
    return local_flag or bool(getattr(ctx.obj, "json", False))


def verbosity(ctx: typer.Context, local: int = 0) -> int:
    return max(local, int(getattr(ctx.obj, "verbose", 0)))


def split_ids(values: list[str] | None) -> list[str]:
    """`--only a,b --only c` -> [a, b, c]."""
    out: list[str] = []
    for v in values or []:
        out.extend(p.strip() for p in v.split(",") if p.strip())
    return out


def fail(as_json: bool, exit_code: int, message: str, hint: str | None) -> NoReturn:
    from worldland_cli.output import error, print_json

    if as_json:
        print_json({"ok": False, "error": message, "hint": hint})
    else:
        error(message, hint)
    raise typer.Exit(exit_code)


@contextmanager
def handled(as_json: bool, note: str | None = None) -> Iterator[None]:
    """Turn any ActionableError (or host error) into one error line or JSON document and its
    exit code.

    ``note`` is added to the hint: after a transfer code was claimed, a failure must say the
    code is spent, or the person retries it and is told "already used" without knowing why.
    """
    from worldland_cli.errors import ActionableError, ExitCode
    from worldland_cli.host import HostError

    try:
        yield
    except ActionableError as e:
        fail(as_json, int(e.exit_code), e.message, " ".join(filter(None, (e.hint, note))) or None)
    except HostError as e:
        fail(as_json, int(ExitCode.FAILED), str(e), note)


def done(as_json: bool, document: dict[str, Any], lines: Sequence[str]) -> None:
    """Success: one JSON document, or the seed-style log lines for people."""
    from worldland_cli.output import console, print_json

    if as_json:
        print_json({"ok": True, **document})
        return
    for line in lines:
        console().print(line, markup=False, highlight=False, soft_wrap=True)


def progress(as_json: bool, line: str) -> None:
    """A step announced before it runs (stderr, so stdout stays one JSON document)."""
    if not as_json:
        from worldland_cli.output import err_console

        err_console().print(line, markup=False, highlight=False)
