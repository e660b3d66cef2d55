"""`worldland completion SHELL`: the shell code that completes worldland's commands and options.

typer's own `--install-completion` and `--show-completion` guess the shell from the parent
process and edit ~/.bashrc or ~/.zshrc themselves; this prints the script for the shell a
person names, to put where that shell's completions live (kubectl and gh do the same), so an
installer or a dotfiles repository can do it without a terminal. Either way the shell then
runs `worldland` with _WORLDLAND_COMPLETE set at each Tab, which costs one start-up
(bench/startup.py keeps it within 150 ms).
"""

from __future__ import annotations

from typing import Literal

import typer

from worldland_cli.commands.options import JsonFlag
from worldland_cli.output import Result


def completion(
    ctx: typer.Context,
    shell: Literal["bash", "zsh", "fish", "powershell"] = typer.Argument(
        ..., metavar="SHELL", help="The shell to complete in."
    ),
    json_output: JsonFlag = False,
) -> Result:
    """Print the script that makes SHELL complete worldland's commands, options and values.

    \b
    Examples:
      worldland completion bash > ~/.local/share/bash-completion/completions/worldland
      worldland completion zsh > "${fpath[1]}/_worldland"      # then start a new zsh
      worldland completion fish > ~/.config/fish/completions/worldland.fish
      eval "$(worldland completion bash)"                      # this shell only
      worldland --install-completion                           # this shell, via its rc file

    Exit status: 0 printed, 2 a shell it does not know.
    """
    # typer's own scripts, so they speak the protocol its completion classes answer.
    from typer._completion_shared import get_completion_script

    prog = ctx.find_root().info_name or "worldland"
    script = get_completion_script(
        prog_name=prog,
        complete_var=f"_{prog.replace('-', '_').upper()}_COMPLETE",
        shell=shell,
    )
    # Written as is: a script is not text for the console to wrap or style.
    return Result({"shell": shell, "script": script}, render=lambda: print(script))
