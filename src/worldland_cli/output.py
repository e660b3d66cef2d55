"""Rendering shared by every command: rich tables for people, one JSON document for scripts.

Commands return a :class:`Result`; the door (:mod:`worldland_cli.commands.dispatch`) hands it,
or the error a command raised, to :func:`render_result` or :func:`render_failure`, so every
command's output follows one shape: ``{"ok": true, ...}`` or ``{"ok": false, "error": ...,
"hint": ...}`` with ``--json``, else lines for people.
"""

from __future__ import annotations

import json
import logging
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


class _Stderr(logging.Handler):
    """Log records on stderr as it is when each is written (a test runner swaps it)."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            sys.stderr.write(self.format(record) + "\n")
            sys.stderr.flush()
        except Exception:  # logging's contract: a broken stream must not break the command
            self.handleError(record)


def show_logs(verbosity: int) -> None:
    """Log on stderr what the CLI does: ``-v`` INFO (each hub request and its answer),
    ``-vv`` DEBUG too (the config file read, each tool run on the host).

    The one place logging is configured, by the entry point once per invocation; modules
    only log to ``logging.getLogger(__name__)``. stderr, so ``--json`` keeps stdout one
    document. Only the CLI's own loggers: a library's debug output (asyncssh, httpx) is
    noise to a person asking what worldland did. Without ``-v`` nothing is added, and
    anything an earlier in-process invocation set up is taken down.
    """
    ours = logging.getLogger("worldland_cli")
    for handler in [h for h in ours.handlers if isinstance(h, _Stderr)]:
        ours.removeHandler(handler)
    ours.setLevel(logging.NOTSET)
    if verbosity <= 0:
        return
    handler = _Stderr()
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    ours.addHandler(handler)
    ours.setLevel(logging.INFO if verbosity == 1 else logging.DEBUG)


def render_report(report: Report, fixes: Sequence[FixBlock] = (), *, verbose: bool = False) -> None:
    """doctor's table in the seed's order (what the fixes are numbered by), the fixes, the
    readiness verdict."""
    render_findings(
        report.findings,
        report.summary(),
        failed=report.failed,
        show_ms=verbose,
        sections=True,
        fixes=fixes,
    )


@dataclass(frozen=True)
class FixBlock:
    """One numbered fix: what it is for, the commands to paste, where to read more."""

    title: str
    commands: Sequence[str]
    doc: str | None = None
    status: str = "fail"


def render_findings(
    findings: Sequence[Finding],
    summary: str,
    *,
    failed: bool,
    show_ms: bool = False,
    sections: bool = False,
    fixes: Sequence[FixBlock] | None = None,
) -> None:
    """A table of what was seen, then the fixes as numbered blocks of shell, then ``summary``.

    Fixes are printed outside the table on purpose: a command wrapped inside a narrow cell
    cannot be copied into a shell. Without ``fixes`` (diag's probes), each remedy is a
    block, in the findings' order, once: findings with the same remedy (no driver: NVML and
    nvidia-smi both fail) share its block, as doctor's fixes do.
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

    if fixes is None:
        fixes = _remedy_blocks(findings)
    if fixes:
        out.print("\n[bold]To fix, paste these blocks into a shell, in this order:[/]\n")
        render_fixes(fixes, out.width)
    style = "bold red" if failed else "bold green"
    out.print(f"[{style}]{escape(summary)}[/]")


def _remedy_blocks(findings: Sequence[Finding]) -> list[FixBlock]:
    """One block per distinct remedy of a failure or warning, titled by every check it fixes."""
    grouped: dict[str, list[Finding]] = {}
    for f in findings:
        if f.remedy and f.status.value in ("fail", "warn"):
            grouped.setdefault(f.remedy, []).append(f)
    return [
        FixBlock(
            f"{', '.join(f.id for f in group)}: {group[0].observed}",
            [remedy],
            group[0].doc,
            "fail" if any(f.status.value == "fail" for f in group) else "warn",
        )
        for remedy, group in grouped.items()
    ]


def render_fixes(fixes: Sequence[FixBlock], width: int) -> None:
    """Each fix: a numbered comment line, its commands broken to ``width``, its doc, a gap.

    Every line printed here is shell (the titles and notes are comments), so the whole
    section can be pasted at once, and no line is wider than the terminal where a shell
    allows a break: a command wrapped by the terminal instead reads back as another one.
    """
    from rich.text import Text

    out = console()
    for number, fix in enumerate(fixes, 1):
        style = STATUS_STYLE.get(fix.status, "bold")
        for line in comment_lines(f"{number}. {fix.title}", width):
            out.print(Text(line, style=style), soft_wrap=True)
        for command in fix.commands:
            # Written as they are: rich would expand the tabs of a file's here-document.
            out.file.write("".join(line + "\n" for line in paste_lines(command, width)))
            out.file.flush()
        if fix.doc:
            for line in comment_lines(f"more: worldland docs {fix.doc}", width):
                out.print(Text(line, style="dim"), soft_wrap=True)
        out.print()


def comment_lines(text: str, width: int) -> list[str]:
    """``text`` as shell comment lines within ``width`` (a word longer than that stays whole)."""
    import textwrap

    wrapped = textwrap.wrap(
        text,
        width=max(width - 2, 20),
        break_long_words=False,
        break_on_hyphens=False,
        subsequent_indent="  ",
    )
    return [f"# {line}" for line in wrapped] or ["#"]


def paste_lines(command: str, width: int) -> list[str]:
    """``command`` as lines a shell reads back as the same command, each within ``width``
    where a break is possible.

    A line breaks only between words outside quotes, with a backslash (which a shell removes
    with the newline), after ``&&``, ``||``, ``|`` or ``;`` where it can; continuation lines
    are indented two spaces. A trailing comment moves above the command as comment lines (a
    backslash inside a comment would not continue the line). A here-document's body and
    delimiter are data and are printed as they are; a word longer than a line stays whole.
    """
    first, newline, body = command.partition("\n")
    tail = body.split("\n") if newline else []
    if len(first) <= width:
        return [first, *tail]
    words, comment = _shell_words(first)
    head = comment_lines(comment.removeprefix("#").strip(), width) if comment else []
    return [*head, *_packed(words, width - 2), *tail]


_OPERATORS = frozenset({"&&", "||", "|", ";"})


def _packed(words: Sequence[str], room: int) -> list[str]:
    """``words`` in lines of at most ``room`` characters (before the " \\" each line but the
    last gets): a whole ``cmd ... &&`` together where it fits, else word by word.

    An operator stays with the word before it, and a word too long for any line shares the
    line it starts on, which is too long anyway, rather than leave fragments around it.
    """
    units: list[str] = []
    for word in words:
        if word in _OPERATORS and units:
            units[-1] += " " + word
        else:
            units.append(word)
    segments: list[list[str]] = [[]]
    for unit in units:
        segments[-1].append(unit)
        if unit.rsplit(" ", 1)[-1] in _OPERATORS:
            segments.append([])
    lines: list[str] = []
    current = ""
    for segment in (s for s in segments if s):
        text = " ".join(segment)
        if current and len(current) + 1 + len(text) <= room:
            current += " " + text
            continue
        if current:
            lines.append(current)
            current = ""
        if len(text) + (2 if lines else 0) <= room:
            current = ("  " if lines else "") + text
            continue
        for unit in segment:
            overlong = len(unit) + 2 > room
            if current and (len(current) + 1 + len(unit) <= room or overlong):
                current += " " + unit
                continue
            if current:
                lines.append(current)
            current = ("  " if lines else "") + unit
    if current:
        lines.append(current)
    return [line + " \\" for line in lines[:-1]] + lines[-1:]


def _shell_words(line: str) -> tuple[list[str], str]:
    """The words of one shell line as written (quotes kept) and its trailing comment.

    Only what decides where a break may go is modelled: quotes, backslash escapes, blanks,
    and a ``#`` that starts a word.
    """
    words: list[str] = []
    word = ""
    quote = ""
    index = 0
    while index < len(line):
        char = line[index]
        if quote:
            word += char
            if quote == '"' and char == "\\" and index + 1 < len(line):
                word += line[index + 1]
                index += 1
            elif char == quote:
                quote = ""
        elif char in " \t":
            if word:
                words.append(word)
                word = ""
        elif char == "#" and not word:
            return words, line[index:]
        elif char == "\\" and index + 1 < len(line):
            word += line[index : index + 2]
            index += 1
        else:
            word += char
            if char in "'\"":
                quote = char
        index += 1
    if word:
        words.append(word)
    return words, ""
