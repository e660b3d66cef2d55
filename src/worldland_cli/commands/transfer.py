"""`worldland send` and `worldland receive`: move files to and from pods, verified and resumable.

Parsing and rendering only; the engine lives in worldland_cli.transfer and is imported inside
the commands so that `worldland --help` never pays for asyncssh.
"""

from __future__ import annotations

import getpass
import sys
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

import typer

from worldland_cli.commands.common import json_option, wants_json

if TYPE_CHECKING:
    from worldland_cli.transfer.engine import Options, Summary
    from worldland_cli.transfer.progress import ProgressSink
    from worldland_cli.transfer.session import Credentials


def _identity_option() -> Any:
    return typer.Option(
        None,
        "--identity",
        "-i",
        metavar="KEY_FILE",
        help="Private key to log in with (default ~/.ssh/id_ed25519, then the ssh agent).",
    )


def _known_hosts_option() -> Any:
    return typer.Option(
        None,
        "--known-hosts",
        metavar="FILE",
        help="Trusted host keys for ssh:// targets (default ~/.ssh/known_hosts).",
    )


def _overwrite_option() -> Any:
    return typer.Option(False, "--overwrite", help="Replace files that already exist.")


def _retries_option() -> Any:
    return typer.Option(
        5, "--retries", min=0, help="Reconnect this many times after a dropped link."
    )


def _credentials(identity: Path | None, known_hosts: Path | None) -> Credentials:
    from worldland_cli.transfer.session import Credentials

    default_key = Path.home() / ".ssh" / "id_ed25519"
    return Credentials(
        identity=identity or default_key,
        identity_explicit=identity is not None,
        known_hosts=known_hosts or Path.home() / ".ssh" / "known_hosts",
    )


def _fail(as_json: bool, exit_code: int, message: str, hint: str | None) -> NoReturn:
    from worldland_cli.output import error, print_json

    if as_json:
        print_json({"ok": False, "error": message, "hint": hint})
    else:
        error(message, hint)
    raise typer.Exit(exit_code)


def _run(
    as_json: bool,
    description: str,
    job: Callable[[ProgressSink], Coroutine[Any, Any, Summary]],
) -> None:
    """Run one engine call with a progress bar on stderr, then print the outcome."""
    import asyncio

    from worldland_cli.output import console, print_json
    from worldland_cli.transfer.errors import TransferError
    from worldland_cli.transfer.progress import NullProgress, RichProgress

    try:
        if sys.stderr.isatty():
            with RichProgress(description) as bar:
                summary = asyncio.run(job(bar))
        else:
            summary = asyncio.run(job(NullProgress()))
    except TransferError as e:
        _fail(as_json, int(e.exit_code), e.message, e.hint)
    if as_json:
        print_json({"ok": True, **summary.to_dict()})
        return
    doc = summary.to_dict()
    console().print(
        f"{summary.direction}: {len(summary.files)} file(s), {doc['bytes']} bytes in "
        f"{doc['seconds']} s ({doc['mb_per_s']} MB/s), sha256 verified -> {summary.destination}"
    )


def _options(overwrite: bool, retries: int) -> Options:
    from worldland_cli.transfer.engine import Options

    return Options(overwrite=overwrite, retries=retries)


def send(
    ctx: typer.Context,
    args: list[str] = typer.Argument(
        ...,
        metavar="PATH... TARGET",
        help="Files or directories, then ssh://USER@HOST:PORT/REMOTE_DIR.",
    ),
    identity: Path | None = _identity_option(),
    known_hosts: Path | None = _known_hosts_option(),
    overwrite: bool = _overwrite_option(),
    retries: int = _retries_option(),
    json_output: bool = json_option(),
) -> None:
    """Upload files and directories; each is verified by sha256 before it gets its name.

    Data lands in NAME.part on the far side and is renamed only when the far side's sha256
    matches; running the same command again after a failure resumes where it stopped.
    Exit status: 0 sent, 1 failed, 2 usage, 3 unreachable, 4 denied (key or host key).
    """
    from worldland_cli.transfer.targets import TargetError, is_ssh_url, parse_ssh_url

    as_json = wants_json(ctx, json_output)
    if len(args) < 2:
        raise typer.BadParameter("give one or more PATHs and a TARGET", param_hint="PATH... TARGET")
    *sources, target = args
    if not is_ssh_url(target):
        raise typer.BadParameter(
            f"{target!r}: the target must be ssh://USER@HOST:PORT/REMOTE_DIR",
            param_hint="TARGET",
        )
    try:
        loc = parse_ssh_url(target, getpass.getuser())
    except TargetError as e:
        raise typer.BadParameter(str(e), param_hint="TARGET") from e

    from worldland_cli.transfer.engine import upload

    creds = _credentials(identity, known_hosts)
    opts = _options(overwrite, retries)
    paths = [Path(s) for s in sources]
    _run(as_json, "send", lambda bar: upload(paths, loc, creds, opts, bar))


def receive(
    ctx: typer.Context,
    source: str = typer.Argument(
        ..., metavar="SOURCE", help="ssh://USER@HOST:PORT/REMOTE_PATH (a file or a directory)."
    ),
    local_dir: Path = typer.Argument(
        Path("."), metavar="[LOCAL_DIR]", help="Where to put it (default: here)."
    ),
    identity: Path | None = _identity_option(),
    known_hosts: Path | None = _known_hosts_option(),
    overwrite: bool = _overwrite_option(),
    retries: int = _retries_option(),
    json_output: bool = json_option(),
) -> None:
    """Download a file or directory into LOCAL_DIR, verified by sha256, never outside it.

    Data lands in NAME.part and is renamed only when its sha256 matches the source's; an
    existing NAME.part resumes from its verified prefix. Existing files are kept unless
    --overwrite. Exit status: 0 received, 1 failed, 2 usage, 3 unreachable, 4 denied.
    """
    from worldland_cli.transfer.targets import TargetError, is_ssh_url, parse_ssh_url

    as_json = wants_json(ctx, json_output)
    if not is_ssh_url(source):
        raise typer.BadParameter(
            f"{source!r}: the source must be ssh://USER@HOST:PORT/REMOTE_PATH",
            param_hint="SOURCE",
        )
    try:
        loc = parse_ssh_url(source, getpass.getuser())
    except TargetError as e:
        raise typer.BadParameter(str(e), param_hint="SOURCE") from e

    from worldland_cli.transfer.engine import download

    creds = _credentials(identity, known_hosts)
    opts = _options(overwrite, retries)
    _run(as_json, "receive", lambda bar: download(loc, local_dir, creds, opts, bar))
