"""The `worldland` command line.

Start-up speed matters (`worldland --help` runs on every tab completion and in scripts):
this module and the command modules import only typer and the standard library at import
time; kubernetes, asyncssh, eth_account, httpx and friends are imported inside the commands.
"""

from __future__ import annotations

import typer

from worldland_cli import __version__
from worldland_cli.commands import certs as certs_cmd
from worldland_cli.commands import completion as completion_cmd
from worldland_cli.commands import config_cmd as config_cmd
from worldland_cli.commands import daemon as daemon_cmd
from worldland_cli.commands import diag as diag_cmd
from worldland_cli.commands import docs as docs_cmd
from worldland_cli.commands import doctor
from worldland_cli.commands import join as join_cmd
from worldland_cli.commands import login as login_cmd
from worldland_cli.commands import pods as pods_cmd
from worldland_cli.commands import register as register_cmd
from worldland_cli.commands import settlement as settlement_cmd
from worldland_cli.commands import transfer as transfer_cmd
from worldland_cli.commands import wallet as wallet_cmd
from worldland_cli.commands.common import GlobalOptions
from worldland_cli.commands.dispatch import Dispatch
from worldland_cli.commands.options import JsonFlag
from worldland_cli.commands.usage import WrittenUsage
from worldland_cli.output import show_logs

app = typer.Typer(
    name="worldland",
    help="Rent out an NVIDIA GPU box on the Worldland marketplace, move data to pods, diagnose."
    "\n\n\b\nExamples:\n"
    "  worldland doctor                                 # provider: is this host ready?\n"
    "  sudo worldland join                              # provider: make it so\n"
    "  worldland login                                  # renter: sign in with the wallet\n"
    "  worldland pods                                   # renter: your pods\n"
    "  worldland send ./data pod-7f3a:/workspace        # renter: move data to one\n"
    "  worldland docs                                   # the guides, offline",
    cls=Dispatch,  # the one door: every command's errors and results are rendered there
    no_args_is_help=True,
    add_completion=True,  # --install-completion, --show-completion: ~2 ms of start-up
    pretty_exceptions_enable=False,
    # Plain click help: typer's rich help formatter alone costs ~100 ms of start-up.
    rich_markup_mode=None,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _print_version(value: bool) -> None:
    if value:
        typer.echo(f"worldland {__version__}")
        raise typer.Exit()


@app.callback()
def main(
    ctx: typer.Context,
    version: bool = typer.Option(
        False, "--version", callback=_print_version, is_eager=True, help="Print the version."
    ),
    json_output: JsonFlag = False,
    verbose: int = typer.Option(
        0,
        "-v",
        "--verbose",
        count=True,
        help="Log what it does on stderr: -v each hub request, -vv also the config file and "
        "each tool run.",
    ),
) -> None:
    ctx.ensure_object(GlobalOptions).verbose = verbose
    show_logs(verbose)


app.command("doctor")(doctor.doctor)
app.command("join")(join_cmd.join)
app.command("reset")(join_cmd.reset)
app.add_typer(diag_cmd.app, name="diag")
app.command("pods")(pods_cmd.pods)
app.command("send", cls=WrittenUsage)(transfer_cmd.send)
app.command("receive", cls=WrittenUsage)(transfer_cmd.receive)
app.command("login")(login_cmd.login)
app.command("logout")(login_cmd.logout)
app.command("whoami")(login_cmd.whoami)
app.command("register")(register_cmd.register)
app.add_typer(wallet_cmd.app, name="wallet")
app.add_typer(config_cmd.app, name="config")
app.add_typer(certs_cmd.app, name="certs")
app.command("daemon")(daemon_cmd.daemon)
app.command("earnings")(settlement_cmd.earnings)
app.command("balance")(settlement_cmd.balance)
app.command("docs", cls=WrittenUsage)(docs_cmd.docs)
app.command("completion", cls=WrittenUsage)(completion_cmd.completion)


def run() -> None:
    app()


if __name__ == "__main__":
    run()
