"""Small helpers every command uses to honour the global options."""

from __future__ import annotations

from typing import Any

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


def json_option() -> Any:
    return typer.Option(False, "--json", help="Print one JSON document instead of a table.")
