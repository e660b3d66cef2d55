"""Usage lines written as a person writes them: ``worldland send [OPTIONS] PATH... TARGET``.

typer writes a required argument as ``{NAME}``, an optional one as ``[NAME]``, and adds
``...`` to a variadic one even when its metavar already says how it repeats, so ``send``
read ``{PATH... [TARGET]}...`` and ``receive`` ``{SOURCE} [[LOCAL_DIR]]``: notation nobody
types and that man pages, rsync and kubectl do not use. A command whose arguments have a
metavar uses :class:`WrittenUsage` (``app.command(..., cls=WrittenUsage)``);
tests/cli/test_help.py walks every command and fails on typer's braces.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from typer.core import TyperArgument, TyperCommand

if TYPE_CHECKING:
    # The type TyperCommand declares: the click typer vendors (typer.Context subclasses it).
    from typer._click import Context


class WrittenUsage(TyperCommand):
    """A command whose usage line shows each argument's metavar as written."""

    def collect_usage_pieces(self, ctx: Context) -> list[str]:
        pieces = [self.options_metavar] if self.options_metavar else []
        for param in self.get_params(ctx):
            if isinstance(param, TyperArgument):
                pieces.append(_written(param))
            else:
                pieces.extend(param.get_usage_pieces(ctx))
        return pieces


def _written(argument: TyperArgument) -> str:
    """The metavar as given (``[LOCAL_DIR]``, ``PATH... TARGET``); else NAME, [NAME], NAME..."""
    if argument.metavar is not None:
        return argument.metavar
    name = (argument.name or "ARG").upper()
    if argument.nargs != 1:
        name += "..."
    return name if argument.required else f"[{name}]"
