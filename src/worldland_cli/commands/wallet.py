"""`worldland wallet new [FILE]` and `worldland wallet address`: the wallet key file.

The key is never printed: `new` shows the address and where the key went, `address` reads
the file (refusing one that group or others can read) and shows the address only.
"""

from __future__ import annotations

import typer

from worldland_cli.commands.options import JsonFlag, KeyFile
from worldland_cli.commands.usage import WrittenUsage
from worldland_cli.output import Result

app = typer.Typer(
    help="Create a wallet key file or show its address.\n\n"
    "\b\nExamples:\n"
    "  worldland wallet new\n"
    "  worldland wallet address",
    no_args_is_help=True,
    rich_markup_mode=None,
)


@app.command("new", cls=WrittenUsage)
def new(
    file: str | None = typer.Argument(
        None, metavar="[FILE]", help="Where to write the key (default: the configured key file)."
    ),
    json_output: JsonFlag = False,
) -> Result:
    """Create a new wallet key file: mode 0600 from the first byte, never over a file.

    \b
    Examples:
      worldland wallet new                             # ~/.worldland/private-key.txt
      worldland wallet new ~/keys/provider.key
      worldland config set private_key_file ~/keys/provider.key
    """
    from pathlib import Path

    from worldland_cli import config
    from worldland_cli.auth.wallet import new_wallet

    target = str(Path(file or config.load().get("private_key_file") or "").absolute())
    wallet = new_wallet(target)
    return Result(
        {"address": wallet.address, "key_file": target},
        [
            f"Wallet created: {wallet.address}",
            f"Private key saved to {target} (mode 0600); back it up, it is not shown again",
        ],
    )


@app.command("address")
def address(
    private_key_file: KeyFile = None,
    json_output: JsonFlag = False,
) -> Result:
    """Print the address of the wallet key file.

    \b
    Examples:
      worldland wallet address
      worldland wallet address --private-key-file ~/keys/provider.key --json
    """
    from worldland_cli import config
    from worldland_cli.auth.wallet import load_wallet

    key_file = config.load().get("private_key_file", private_key_file) or ""
    wallet = load_wallet(key_file)
    return Result({"address": wallet.address, "key_file": key_file}, [wallet.address])
