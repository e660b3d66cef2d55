"""`worldland send` and `worldland receive`: move files to and from pods, verified and resumable.

Parsing and rendering only; the engine lives in worldland_cli.transfer and is imported inside
the commands so that `worldland --help` never pays for asyncssh. Pod targets and codes are
resolved through the hub (worldland_cli.transfer.remote) as the logged-in person before the
engine starts, so a hub failure never leaves a half-made transfer behind.
"""

from __future__ import annotations

import getpass
import shlex
import sys
from collections.abc import Callable, Coroutine, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from worldland_cli.commands.common import noted
from worldland_cli.commands.options import (
    Exclude,
    HubCa,
    HubUrl,
    Identity,
    JsonFlag,
    KnownHosts,
    Lanes,
    NoOpenssh,
    Overwrite,
    Retries,
    TransferDryRun,
)
from worldland_cli.errors import ExitCode
from worldland_cli.output import Result

if TYPE_CHECKING:
    from worldland_cli.config import Config
    from worldland_cli.hubclient import HubClient
    from worldland_cli.transfer.model import Options, Registered, Summary
    from worldland_cli.transfer.progress import ProgressSink
    from worldland_cli.transfer.ssh import Credentials
    from worldland_cli.transfer.targets import PodLocation, SshLocation


def _credentials(identity: Path | None, known_hosts: Path | None) -> Credentials:
    from worldland_cli.transfer.ssh import Credentials

    default_key = Path.home() / ".ssh" / "id_ed25519"
    return Credentials(
        identity=identity or default_key,
        identity_explicit=identity is not None,
        known_hosts=known_hosts or Path.home() / ".ssh" / "known_hosts",
    )


@contextmanager
def _hub(cfg: Config, hub: str | None, hub_ca: str | None) -> Iterator[tuple[HubClient, str]]:
    """A hub client with a live login, and the wallet address it acts for."""
    from worldland_cli.auth.relogin import SignIn, authenticated_client

    client, session = authenticated_client(cfg, SignIn(hub=hub, hub_ca=hub_ca))
    with client:
        yield client, session.address


def _resolve_pod(pod: PodLocation, hub: str | None, hub_ca: str | None) -> SshLocation:
    from worldland_cli import config
    from worldland_cli.transfer.remote import pod_location

    with _hub(config.load(), hub, hub_ca) as (client, renter):
        return pod_location(client, pod, renter)


def _run(
    description: str,
    job: Callable[[ProgressSink], Coroutine[Any, Any, Summary]],
    extra: dict[str, Any] | None = None,
    note: str | None = None,
) -> Result:
    """Run one engine call with a progress bar on stderr; the outcome is the result.

    ``extra`` joins the --json document (the pod id, the code); ``note`` joins a failure's hint.
    """
    import asyncio

    from worldland_cli.transfer.display import shown
    from worldland_cli.transfer.failures import interruptible
    from worldland_cli.transfer.progress import NullProgress, RichProgress

    with noted(note):
        if sys.stderr.isatty():
            with RichProgress(description) as bar:
                summary = asyncio.run(interruptible(job(bar)))
        else:
            summary = asyncio.run(interruptible(job(NullProgress())))
    if summary.verdicts is not None:
        return _dry_run(summary, extra)
    doc = summary.to_dict()
    lines = [
        f"{summary.direction}: {len(summary.files)} file(s), {doc['bytes']} bytes in "
        f"{doc['seconds']} s ({doc['mb_per_s']} MB/s moved), sha256 verified -> "
        f"{shown(summary.destination)}"
    ]
    if summary.unchanged:
        lines.append(
            f"skipped {len(summary.unchanged)} file(s) already there (the same size and sha256)"
        )
    if summary.excluded:
        lines.append(f"excluded {summary.excluded} by --exclude")
    # The notes went by on stderr, if it is a terminal.
    lines += [f"skipped {shown(x.path)}: {shown(x.reason)}" for x in summary.skipped]
    return Result({**doc, **(extra or {})}, lines)


def _dry_run(summary: Summary, extra: dict[str, Any] | None) -> Result:
    """What a run would do: each entry that would move or be refused, and why.

    Exit 1 when a real run would refuse something (other content without --overwrite, a
    .part someone else wrote, a directory in the way), so a script can check first.
    """
    from worldland_cli.transfer.display import shown
    from worldland_cli.transfer.model import SAME

    verdicts = summary.verdicts or []
    doc = summary.to_dict()
    lines: list[str] = []
    moving = refused = 0
    for v in verdicts:
        if v.action == SAME or (v.entry.kind == "dir" and v.action != "blocked"):
            continue
        moves = v.moves(summary.overwrite)
        moving += moves
        refused += not moves
        verb = "would move" if moves else "would refuse"
        lines.append(f"{verb} {shown(v.entry.rel)}: {v.action}, {shown(v.why)}")
    unchanged = sum(1 for v in verdicts if v.action == SAME and v.entry.kind != "dir")
    lines.append(
        f"dry run ({summary.direction} -> {shown(summary.destination)}): {moving} to move, "
        f"{unchanged} the same (skipped), {refused} refused"
        + (f", {summary.excluded} excluded" if summary.excluded else "")
        + "; nothing was moved"
    )
    code = ExitCode.FAILED if refused else ExitCode.OK
    return Result({**doc, **(extra or {})}, lines, exit_code=code)


def _options(
    overwrite: bool,
    retries: int,
    no_openssh: bool,
    exclude: list[str] | None,
    dry_run: bool,
    registered: Registered | None = None,
    follow_links: bool = False,
    lanes: int | None = None,
) -> Options:
    from worldland_cli.transfer.model import Options

    return Options(
        overwrite=overwrite,
        retries=retries,
        openssh=not no_openssh,
        registered=registered,
        follow_links=follow_links,
        exclude=tuple(exclude or ()),
        dry_run=dry_run,
        lanes=lanes,
    )


def _send_code(
    source: Path,
    pod: str | None,
    hub: str | None,
    hub_ca: str | None,
) -> Result:
    """Code mode: register ``source`` (inside this pod) with the hub and print its code."""
    from worldland_cli.transfer.targets import is_pod_id

    if not pod:
        raise typer.BadParameter(
            "code mode (one PATH, no TARGET) needs the pod this runs in: pass --pod POD_ID "
            "or set WORLDLAND_POD_ID; to send to a pod instead, end with POD_ID[:DIR]",
            param_hint="--pod",
        )
    if not is_pod_id(pod):
        raise typer.BadParameter(f"{pod!r} is not a pod id", param_hint="--pod")
    from worldland_cli import config
    from worldland_cli.transfer.remote import offer_file

    cfg = config.load()
    with _hub(cfg, hub, hub_ca) as (client, renter):
        offer = offer_file(client, pod, source, renter)
    # The receiver needs the same hub; say so when it is not everyone's default.
    hub_setting = cfg.resolve("hub", hub)
    command = f"worldland receive {offer.code}"
    if hub_setting.source != "default" and hub_setting.value:
        command += f" --hub {shlex.quote(hub_setting.value)}"
    doc = offer.to_dict()
    return Result(
        {**doc, "receive_command": command},
        [
            f"{offer.path}: {offer.size} bytes, sha256 {offer.sha256}",
            f"Code is: {offer.code}",
            f"On the other computer run (the code works once, until {doc['expires_at']}):",
            "",
            command,
        ],
    )


def send(
    args: list[str] = typer.Argument(
        ...,
        metavar="PATH... TARGET",
        help="Files or directories, then POD_ID[:REMOTE_DIR] (default /workspace) or "
        "ssh://USER@HOST:PORT/REMOTE_DIR. One PATH and no TARGET: code mode.",
    ),
    pod: Annotated[
        str | None,
        typer.Option(
            "--pod",
            envvar="WORLDLAND_POD_ID",
            metavar="POD_ID",
            help="Code mode: the pod this runs in (default: WORLDLAND_POD_ID).",
        ),
    ] = None,
    hub: HubUrl = None,
    hub_ca: HubCa = None,
    identity: Identity = None,
    known_hosts: KnownHosts = None,
    overwrite: Overwrite = False,
    follow_links: Annotated[
        bool,
        typer.Option(
            "--follow-links",
            "-L",
            help="Send what symlinks inside a sent directory point to (rsync's --copy-links). "
            "Without it such a symlink is recreated as a symlink when it stays inside the "
            "directory, and skipped with a note when it leads outside. A symlink given as a "
            "PATH is always followed.",
        ),
    ] = False,
    retries: Retries = 5,
    no_openssh: NoOpenssh = False,
    lanes: Lanes = None,
    exclude: Exclude = None,
    dry_run: TransferDryRun = False,
    json_output: JsonFlag = False,
) -> Result:
    """Upload files and directories; each is verified by sha256 before it gets its name.

    Data lands in NAME.part (small files: a hidden staging name) on the far side and is
    renamed only when the far side's sha256 matches. Run the same command again after a
    failure or Ctrl-C: files already there with the same size and sha256 are skipped, a
    NAME.part resumes from its verified prefix, and other content at a name is refused
    (listed) unless --overwrite. A pod is looked up at the hub and only the host key the
    hub pinned for it is accepted.

    Code mode (run inside a pod): `worldland send FILE` registers FILE with the hub and
    prints a one-time code for `worldland receive CODE`.

    \b
    Examples:
      worldland pods                                   # find the pod id
      worldland send ./dataset ./config.yaml pod-7f3a:/workspace/data
      worldland send ./weights.bin pod-7f3a            # into /workspace
      worldland send -n ./dataset pod-7f3a:data        # what would move, and why
      worldland send --exclude '*.pyc' --exclude .git ./src pod-7f3a:src
      worldland send ./ckpt ssh://root@10.100.1.7:30022/workspace
      worldland send --lanes 4 ./weights.bin pod-7f3a  # 4 SSH channels at once
      worldland send results.tar                       # inside a pod: prints a code

    Exit status: 0 sent, 1 failed (checksum, other content at a name, permission denied or
    no space left on either side: one line naming the path), 2 usage, 3 unreachable (a dead
    pod fails at once; a link that drops mid-transfer is retried), 4 denied (login, key,
    host key).
    """
    from worldland_cli.transfer.targets import (
        DEFAULT_POD_DIR,
        PodLocation,
        TargetError,
        is_ssh_url,
        parse_pod,
        parse_ssh_url,
        split_send_args,
    )

    try:
        sources, target = split_send_args(args)
    except TargetError as e:
        raise typer.BadParameter(str(e), param_hint="PATH... [TARGET]") from e
    if target is None:
        if dry_run:
            raise typer.BadParameter(
                "code mode registers the file with the hub, which is no dry run; name a TARGET "
                "to see what would be sent there",
                param_hint="--dry-run",
            )
        return _send_code(Path(sources[0]), pod, hub, hub_ca)
    try:
        where: SshLocation | PodLocation = (
            parse_ssh_url(target, getpass.getuser())
            if is_ssh_url(target)
            else parse_pod(target, default_path=DEFAULT_POD_DIR)
        )
    except TargetError as e:
        raise typer.BadParameter(str(e), param_hint="TARGET") from e
    extra: dict[str, Any] = {}
    if isinstance(where, PodLocation):
        extra["pod_id"] = where.pod_id
        where = _resolve_pod(where, hub, hub_ca)
    loc: SshLocation = where

    from worldland_cli.transfer.upload import upload

    creds = _credentials(identity, known_hosts)
    opts = _options(
        overwrite, retries, no_openssh, exclude, dry_run, follow_links=follow_links, lanes=lanes
    )
    paths = [Path(s) for s in sources]
    return _run("send", lambda bar: upload(paths, loc, creds, opts, bar), extra)


def receive(
    source: str = typer.Argument(
        ...,
        metavar="SOURCE",
        help="POD_ID:REMOTE_PATH, ssh://USER@HOST:PORT/REMOTE_PATH (a file or a directory), "
        "or a code from `worldland send` (NNNN-word-word-word-word-word).",
    ),
    local_dir: Path = typer.Argument(
        Path("."), metavar="[LOCAL_DIR]", help="Where to put it (default: here)."
    ),
    hub: HubUrl = None,
    hub_ca: HubCa = None,
    identity: Identity = None,
    known_hosts: KnownHosts = None,
    overwrite: Overwrite = False,
    retries: Retries = 5,
    no_openssh: NoOpenssh = False,
    lanes: Lanes = None,
    exclude: Exclude = None,
    dry_run: TransferDryRun = False,
    json_output: JsonFlag = False,
) -> Result:
    """Download a file or directory into LOCAL_DIR, verified by sha256, never outside it.

    Data lands in NAME.part (small files: a hidden staging name) and is renamed only when
    its sha256 matches the source's (and, for a code, the sha256 the sender registered).
    Run the same command again after a failure or Ctrl-C: files already here with the same
    size and sha256 are skipped, a NAME.part resumes from its verified prefix, one this tool
    did not write is refused, and other content at a name is refused (listed) unless
    --overwrite. Modes are masked by the umask. A code names one regular file of the
    registered size, saved under the registered name; it works once.

    \b
    Examples:
      worldland receive pod-7f3a:/workspace/checkpoints ./out
      worldland receive pod-7f3a:ckpt/model.pt         # a path inside /workspace
      worldland receive -n pod-7f3a:/workspace/out .   # what would move, and why
      worldland receive 4417-abbey-acid-acorn-acre-actor   # a code from `worldland send`
      worldland receive ssh://root@10.100.1.7:30022/workspace/out ./out
      worldland receive --lanes 2 pod-7f3a:ckpt/model.pt ./out

    Exit status: 0 received, 1 failed (checksum, other content at a name, permission denied
    or no space left on either side: one line naming the path), 2 usage, 3 unreachable (a
    dead pod fails at once), 4 denied.
    """
    from worldland_cli.transfer.targets import PodLocation, TargetError, parse_source

    try:
        parsed = parse_source(source, getpass.getuser())
    except TargetError as e:
        raise typer.BadParameter(str(e), param_hint="SOURCE") from e
    extra: dict[str, Any] = {}
    registered: Registered | None = None
    note: str | None = None
    if isinstance(parsed, str):
        if dry_run:
            raise typer.BadParameter(
                "a code works once, and claiming it to look would spend it", param_hint="--dry-run"
            )
        from worldland_cli import config
        from worldland_cli.transfer.remote import claim_code

        with _hub(config.load(), hub, hub_ca) as (client, _):
            claim = claim_code(client, parsed)
        loc, registered = claim.location, claim.registered
        extra = {"code": claim.code, "pod_id": claim.pod_id}
        note = (
            f"(code {claim.code} is now used: trying again needs a new code from the "
            "sender; a NAME.part kept in LOCAL_DIR resumes)"
        )
    elif isinstance(parsed, PodLocation):
        extra = {"pod_id": parsed.pod_id}
        loc = _resolve_pod(parsed, hub, hub_ca)
    else:
        loc = parsed

    from worldland_cli.transfer.download import download

    creds = _credentials(identity, known_hosts)
    opts = _options(overwrite, retries, no_openssh, exclude, dry_run, registered, lanes=lanes)
    return _run("receive", lambda bar: download(loc, local_dir, creds, opts, bar), extra, note)
