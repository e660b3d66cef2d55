"""The one door every command goes through: one error handler, one renderer, one exit code.

pipx's ``run_pipx_command`` model: the command group's ``main`` runs the command, renders
the :class:`~worldland_cli.output.Result` it returns, and turns whatever it raises that a
person can act on (an ActionableError such as a ConfigError, a HostError, a click usage
error) into one hinted line on stderr, or with ``--json`` into the envelope
``{"ok": false, "error": ..., "hint": ...}`` on stdout, with the exit code scripts rely on.
A command therefore never catches, prints or exits for an error itself, and a new command
cannot forget to (``diag network`` once printed a traceback for a broken config.toml).

Whether JSON was asked for is read from the command line before parsing
(:func:`~worldland_cli.commands.common.json_requested`), because a usage error stops parsing
before any option has a value; commands ask :func:`~worldland_cli.commands.common.wants_json`.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import Any

import typer
from typer.core import TyperGroup

from worldland_cli.commands.common import GlobalOptions, json_requested
from worldland_cli.errors import ActionableError, ExitCode
from worldland_cli.output import Result, render_failure, render_result


class Dispatch(TyperGroup):
    """The top-level command group; see the module docstring."""

    def main(
        self,
        args: Sequence[str] | None = None,
        prog_name: str | None = None,
        complete_var: str | None = None,
        standalone_mode: bool = True,
        windows_expand_args: bool = True,
        **extra: Any,
    ) -> Any:
        argv = list(sys.argv[1:] if args is None else args)
        options = GlobalOptions(json=json_requested(argv))
        try:
            returned = super().main(
                argv,
                prog_name,
                complete_var,
                standalone_mode=False,
                windows_expand_args=windows_expand_args,
                obj=options,
                **extra,
            )
        except Exception as e:
            code = _render_error(e, options.json)
        else:
            if isinstance(returned, Result):
                code = render_result(returned, as_json=options.json)
            else:  # --help, --version, typer.Exit(code): the exit code itself
                code = int(returned or 0)
        if standalone_mode:
            sys.exit(code)
        return code


def _render_error(error: Exception, as_json: bool) -> int:
    """Render an error a person can act on and return its exit code; re-raise any other."""
    from worldland_cli.host import HostError

    if isinstance(error, ActionableError):
        return render_failure(error.message, error.hint, error.exit_code, as_json=as_json)
    if isinstance(error, HostError):
        return render_failure(str(error), None, ExitCode.FAILED, as_json=as_json)
    if isinstance(error, typer.Abort):  # a prompt met the end of its input
        if not as_json:
            typer.echo("Aborted!", err=True)
            return int(ExitCode.FAILED)
        return render_failure("aborted", None, ExitCode.FAILED, as_json=True)
    if isinstance(error, typer.TyperException):  # click's usage and parameter errors
        if not as_json:
            _show(error)
            return error.exit_code
        hint = f"see `{_command_path(error)} --help`"
        return render_failure(error.format_message(), hint, error.exit_code, as_json=True)
    raise error


def _show(error: typer.TyperException) -> None:
    """click's own text for the error (usage line, "Try ... -h", the message), unchanged."""
    show = getattr(error, "show", None)
    if callable(show):
        show()
    else:
        typer.echo(f"Error: {error.format_message()}", err=True)


def _command_path(error: typer.TyperException) -> str:
    """``worldland diag gpu`` for an error in that command's arguments."""
    ctx = getattr(error, "ctx", None)
    return str(getattr(ctx, "command_path", None) or "worldland")
