"""`worldland join` and `worldland reset`: parsing and rendering; the work is in join/."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from worldland_cli.commands.common import split_ids, wants_json
from worldland_cli.commands.options import (
    AssumeYes,
    DryRun,
    HubCa,
    HubUrl,
    JsonFlag,
    KeyFile,
    Root,
)
from worldland_cli.output import Result

if TYPE_CHECKING:
    from worldland_cli.join.plan import Plan
    from worldland_cli.join.run import StepEvent


def _confirm(as_json: bool, question: str, show: Callable[[], None]) -> None:
    """Show what will change and ask once; --json cannot ask (add --yes)."""
    if as_json:
        raise typer.BadParameter(
            "--json cannot ask for confirmation: add --yes", param_hint="--yes"
        )
    show()
    if not typer.confirm(question, default=False):
        raise typer.Exit(1)


def _render_plan(plan: Plan) -> None:
    from worldland_cli.output import console

    out = console()
    for number, step in enumerate(plan.steps, 1):
        out.print(f"{number}. {step.id}: {step.title}", markup=False, highlight=False)
        out.print(f"   now: {step.finding.observed}", markup=False, highlight=False)
        for action, diff in zip(step.actions, step.diffs, strict=True):
            out.print(f"   - {action.describe()}", markup=False, highlight=False, soft_wrap=True)
            for line in diff.splitlines():
                out.print(f"       {line}", markup=False, highlight=False, soft_wrap=True)
    met = ", ".join(plan.met) or "none"
    out.print(f"already met: {met}", markup=False, highlight=False, soft_wrap=True)
    if plan.skipped:
        out.print(f"skipped: {', '.join(plan.skipped)}", markup=False, highlight=False)


class _Progress:
    """One line per step on stderr with its time; what each action runs goes to its log."""

    def __init__(self) -> None:
        from worldland_cli.output import err_console

        self.out = err_console()
        self.started = time.monotonic()

    def __call__(self, event: StepEvent) -> None:
        if event.kind == "start":
            self.started = time.monotonic()
            self.out.print(f"▸ {event.step}: {event.detail}", markup=False, highlight=False)
        elif event.kind == "action":
            self.out.print(f"    {event.detail}", markup=False, highlight=False)
        elif event.kind == "done":
            took = time.monotonic() - self.started
            self.out.print(f"✓ {event.step} ({took:.1f} s)", markup=False, highlight=False)


def _this_worldland() -> str:
    """The absolute path of this ``worldland``, for the node daemon's unit to run.

    The console script sits beside the interpreter of its virtual environment (the
    installer's /opt/worldland/bin, pipx's, a checkout's .venv); a bare ``python -m`` run
    falls back to the one on the PATH.
    """
    import sys

    from worldland_cli.host import Host

    beside = Path(sys.executable).with_name("worldland")
    if beside.is_file():
        return str(beside.absolute())
    found = Host().which("worldland")
    return str(Path(found).absolute()) if found else str(beside.absolute())


def join(
    ctx: typer.Context,
    dry_run: DryRun = False,
    yes: AssumeYes = False,
    root: Root = Path("/"),
    skip: list[str] = typer.Option(
        None, "--skip", metavar="ID,...", help="Leave these requirements to a person."
    ),
    kube_version: str = typer.Option(
        "1.29", "--kube-version", metavar="MINOR", help="Kubernetes minor for kubeadm/kubelet."
    ),
    driver: str = typer.Option(
        "535", "--driver", metavar="BRANCH", help="NVIDIA driver branch (ubuntu-drivers)."
    ),
    hub: HubUrl = None,
    hub_ca: HubCa = None,
    private_key_file: KeyFile = None,
    json_output: JsonFlag = False,
) -> Result:
    """Make this host a Worldland node: everything doctor finds missing, in the seed's order.

    Every change is journaled first (/var/lib/worldland, WORLDLAND_STATE moves it), so a join
    that stops continues where it stopped when run again, and `worldland reset` undoes it.

    \b
    Examples:
      worldland join --dry-run          # the plan, with diffs; changes nothing
      sudo worldland join               # asks once, then does it
      sudo worldland join --yes --skip gpu.driver
      sudo worldland join --hub https://hub.example.org --private-key-file /root/wallet.key

    The hub steps log in as the wallet (silently with its key file, else with the session
    of `worldland login`), register the node, get its VPN address and kubeadm join
    parameters; reset deregisters it at the same hub.

    Exit status: 0 joined (or nothing to do), 1 a step failed, 2 usage.
    """
    from worldland_cli import config
    from worldland_cli.auth.relogin import key_file_for_relogin
    from worldland_cli.host import Host
    from worldland_cli.hubclient import HubEndpoint
    from worldland_cli.join.journal import Journal, state_dir
    from worldland_cli.join.plan import plan_join
    from worldland_cli.join.run import join_host
    from worldland_cli.requirements import all_requirements
    from worldland_cli.requirements.base import JoinSettings

    as_json = wants_json(ctx)
    host = Host(root, default_timeout=30.0)
    cfg = config.load()
    requirements = all_requirements(cert_dir=cfg.cert_dir(), joining=True)
    endpoint = HubEndpoint.from_config(cfg, hub, hub_ca)
    settings = JoinSettings(
        kube_version=kube_version,
        driver=driver,
        hub=endpoint.url,
        hub_ca=str(Path(endpoint.ca_file).absolute()) if endpoint.ca_file else None,
        private_key_file=key_file_for_relogin(cfg, private_key_file, host),
        siwe_domain=cfg.get("siwe_domain"),
        worldland=_this_worldland(),
    )
    skipped = split_ids(skip)
    plan = plan_join(host, requirements, settings, skipped)
    document: dict[str, Any] = {"dry_run": dry_run, "plan": plan.to_dict()}
    if dry_run or plan.empty:
        if plan.empty:
            return Result(document, lines=["Nothing to do: every requirement is met."])
        return Result(document, render=lambda: _render_plan(plan))
    if not yes:
        _confirm(as_json, f"Apply these {len(plan.steps)} step(s)?", lambda: _render_plan(plan))
    journal = Journal(host, state_dir())
    listen = (lambda _event: None) if as_json else _Progress()
    result = join_host(host, journal, requirements, settings, skip=skipped, listen=listen)
    document.update(
        done=result.done, met=result.met, skipped=result.skipped, warnings=result.warnings
    )
    where = host.path(journal.directory)
    lines = [f"Joined: {len(result.done)} step(s) done, journal in {where}"]
    return Result(document, lines=lines + [f"note: {w}" for w in result.warnings])


def reset(
    ctx: typer.Context,
    purge: bool = typer.Option(
        False, "--purge", help="Also remove the packages join installed (listed otherwise)."
    ),
    dry_run: DryRun = False,
    yes: AssumeYes = False,
    root: Root = Path("/"),
    json_output: JsonFlag = False,
) -> Result:
    """Undo what join did, newest first: files back byte for byte, units, packages (--purge).

    \b
    Examples:
      worldland reset --dry-run
      sudo worldland reset --yes --purge

    Exit status: 0 undone (or nothing to undo), 1 something could not be undone (run it
    again), 2 usage.
    """
    from worldland_cli.errors import ExitCode
    from worldland_cli.host import Host
    from worldland_cli.join.journal import Journal, state_dir
    from worldland_cli.join.run import reset_host, reset_plan

    as_json = wants_json(ctx)
    host = Host(root, default_timeout=30.0)
    journal = Journal(host, state_dir())
    undo, restore = reset_plan(journal)
    document: dict[str, Any] = {"dry_run": dry_run, "undo": undo, "restore": restore}
    if not undo:
        return Result(document, lines=["Nothing to undo: no join is recorded on this host."])
    if dry_run:
        lines = [f"undo: {line}" for line in undo] + [f"restore: {path}" for path in restore]
        return Result(document, lines=lines)
    if not yes:

        def show() -> None:
            for line in undo:
                typer.echo(f"undo: {line}", err=True)

        question = f"Undo {len(undo)} action(s) and restore {len(restore)} file(s)?"
        _confirm(as_json, question, show)
    result = reset_host(host, journal, purge=purge)
    document.update(
        undone=result.undone,
        restored=result.restored,
        failures=result.failures,
        journal=result.journal_moved_to or result.journal_kept,
    )
    lines = [f"failed: {f}" for f in result.failures] or [
        f"Reset: {len(result.undone)} action(s) undone, {len(result.restored)} file(s) restored"
    ]
    return Result(
        document, lines=lines, exit_code=ExitCode.FAILED if result.failures else ExitCode.OK
    )
