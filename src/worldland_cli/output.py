"""Rendering shared by every command: rich tables for people, one JSON document for scripts.

Commands return a :class:`Result`; the door (:mod:`worldland_cli.commands.dispatch`) hands it,
or the error a command raised, to :func:`render_result` or :func:`render_failure`, so every
command's output follows one shape: ``{"ok": true, ...}`` or ``{"ok": false, "error": ...,
"hint": ...}`` with ``--json``, else lines for people.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from worldland_cli.errors import ExitCode

if TYPE_CHECKING:
    from rich.console import Console

    from worldland_cli.requirements.base import Finding
    from worldland_cli.requirements.runner import Report


STATUS_STYLE = {"ok": "green", "warn": "yellow", "fail": "bold red", "skip": "dim"}
STATUS_LABEL = {"ok": "ok", "warn": "warn", "fail": "FAIL", "skip": "skip"}

_console: Console | None = None
_err_console: Console | None = None


def console() -> Console:
    global _console
    if _console is None:
        from rich.console import Console

        _console = Console(highlight=False)
    return _console


def err_console() -> Console:
    global _err_console
    if _err_console is None:
        from rich.console import Console

        _err_console = Console(stderr=True, highlight=False)
    return _err_console


def print_json(document: Any) -> None:
    """One document on stdout, nothing else, so `| jq` always works."""
    sys.stdout.write(json.dumps(document, indent=2, sort_keys=False, default=str) + "\n")
    sys.stdout.flush()


@dataclass(frozen=True)
class Result:
    """What a command hands back: its JSON document, what people see, and the exit code.

    ``render`` draws what ``lines`` cannot (doctor's table); ``ok`` in the JSON document is
    always the exit code's verdict, so a script can trust either.
    """

    document: Mapping[str, Any] = field(default_factory=dict)
    lines: Sequence[str] = ()
    render: Callable[[], None] | None = None
    exit_code: int = ExitCode.OK

    @property
    def ok(self) -> bool:
        return self.exit_code == ExitCode.OK


def render_result(result: Result, *, as_json: bool) -> int:
    """Print a command's result; return its exit code."""
    if as_json:
        print_json({"ok": result.ok, **{k: v for k, v in result.document.items() if k != "ok"}})
    else:
        if result.render is not None:
            result.render()
        for line in result.lines:
            console().print(line, markup=False, highlight=False, soft_wrap=True)
    return int(result.exit_code)


def render_failure(message: str, hint: str | None, exit_code: int, *, as_json: bool) -> int:
    """Print a failure (the one JSON envelope, or an error line with its hint); return the code."""
    if as_json:
        print_json({"ok": False, "error": message, "hint": hint})
    else:
        error(message, hint)
    return int(exit_code)


def error(message: str, hint: str | None = None) -> None:
    """A problem in words a person can act on, on stderr.

    Not wrapped (a path or command split over two lines cannot be pasted) and escaped (a
    message may quote text with brackets, which is not markup).
    """
    from rich.markup import escape

    err = err_console()
    err.print(f"[bold red]error:[/] {escape(message)}", highlight=False, soft_wrap=True)
    if hint:
        err.print(f"  [dim]hint:[/] {escape(hint)}", highlight=False, soft_wrap=True)


def render_report(report: Report, *, verbose: bool = False) -> None:
    """doctor's table, grouped by area, with the readiness verdict."""
    render_findings(
        sorted(report.findings, key=lambda f: f.area),
        report.summary(),
        failed=report.failed,
        show_ms=verbose,
        sections=True,
    )


def render_findings(
    findings: Sequence[Finding],
    summary: str,
    *,
    failed: bool,
    show_ms: bool = False,
    sections: bool = False,
) -> None:
    """A table of what was seen, then the fixes as whole lines so they can be pasted.

    Remedies are printed outside the table on purpose: a command wrapped inside a narrow
    cell cannot be copied into a shell. Used by doctor and by every diag probe.
    """
    from rich.markup import escape
    from rich.table import Table

    table = Table(show_header=True, header_style="bold")
    table.add_column("check", no_wrap=True)
    table.add_column("status", no_wrap=True)
    table.add_column("observed")
    if show_ms:
        table.add_column("ms", justify="right")

    current_area = None
    for f in findings:
        if sections and current_area is not None and f.area != current_area:
            table.add_section()
        current_area = f.area
        status = f.status.value
        label = STATUS_LABEL[status]
        label += " (ignored)" if f.ignored else ""
        label += " (timed out)" if f.timed_out else ""
        row = [f.id, f"[{STATUS_STYLE[status]}]{label}[/]", escape(f.observed)]
        if show_ms:
            row.append(str(f.duration_ms))
        table.add_row(*row)
    out = console()
    out.print(table)

    fixes = [f for f in findings if f.remedy and f.status.value in ("fail", "warn")]
    if fixes:
        out.print("\n[bold]To fix:[/]")
        for f in fixes:
            out.print(f"  [{STATUS_STYLE[f.status.value]}]{f.id}[/]", highlight=False)
            out.print(f"    {escape(f.remedy or '')}", soft_wrap=True)
            if f.doc:
                out.print(f"    [dim]see {escape(f.doc)}[/]", soft_wrap=True)
    style = "bold red" if failed else "bold green"
    out.print(f"\n[{style}]{escape(summary)}[/]")
