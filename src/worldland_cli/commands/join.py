"""`worldland join` and `worldland reset`: parsing and rendering; the work is in join/."""

from __future__ import annotations

import os
import re
import time
from collections.abc import Callable, Mapping
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
    from worldland_cli.join.run import JoinResult, StepEvent
    from worldland_cli.requirements.base import JoinSettings


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
        if step.same_as is not None:
            out.print(f"   - met by the actions of {step.same_as}", markup=False, highlight=False)
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
        elif event.kind == "reboot":
            self.out.print(f"⏻ {event.step}: stopped for a reboot", markup=False, highlight=False)


# Flags of this run rather than of the join to continue after a reboot: the resume unit adds
# --yes itself, runs on the host's own root, and its output goes to the journal as text.
_NOT_RESUMED = frozenset({"dry_run", "yes", "root", "json_output"})


def _resumed_flags(ctx: typer.Context, resolved: Mapping[str, str | None]) -> list[str]:
    """This join's other flags (those not at their defaults), for the join after the reboot;
    read from the command's own parameters, so a flag added later is carried too. A value in
    ``resolved`` replaces the one typed: a file named relative to where this join ran, made
    absolute, since the resumed join runs from /."""
    flags: list[str] = []
    for param in ctx.command.params:
        value = ctx.params.get(param.name or "")
        if param.param_type_name != "option" or param.name in _NOT_RESUMED:
            continue
        if value is None or value == param.default or (param.multiple and not value):
            continue
        value = resolved.get(param.name or "") or value
        if getattr(param, "is_flag", False):
            flags.append(param.opts[0] if value else param.secondary_opts[0])
            continue
        for item in value if param.multiple else [value]:
            flags += [param.opts[0], str(item)]
    return flags


def _resume_environment() -> tuple[str, ...]:
    """The WORLDLAND_* settings of this join (state, home, hub, ...) for the resumed one."""
    from worldland_cli import config
    from worldland_cli.join.actions import STATE_ENV

    names = {STATE_ENV, "WORLDLAND_HOME"} | {key.env for key in config.KEYS.values()}
    return tuple(f"{name}={os.environ[name]}" for name in sorted(names) if name in os.environ)


def _stopped(result: JoinResult, settings: JoinSettings, where: str) -> list[str]:
    """What a person reads when join stopped for a reboot: what to do, and what happens."""
    from worldland_cli.join.resume import UNIT

    if settings.resume_unit:
        lines = [
            f"Reboot now (sudo reboot): {result.reboot}; join continues after boot.",
            f"{UNIT} runs `{' '.join(settings.resume_command)}` once the host is up "
            f"(follow it: journalctl -u {UNIT} -f).",
        ]
    else:
        lines = [
            f"Reboot now (sudo reboot): {result.reboot}.",
            "After the reboot run `sudo worldland join` again: it continues with the next steps.",
        ]
    lines.append(f"{len(result.done)} step(s) done so far; journal in {where}")
    return lines


def _matching(pattern: str, what: str) -> Callable[[str], str]:
    """A flag callback: the value goes into package names and URLs, so it must be ``what``."""

    def check(value: str) -> str:
        if re.fullmatch(pattern, value) is None:
            raise typer.BadParameter(f"{value!r} is not {what}")
        return value

    return check


def this_worldland() -> str:
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
    only: list[str] = typer.Option(
        None,
        "--only",
        metavar="ID,...",
        help="Only these requirements (ids, or areas like 'containerd'); leave the rest.",
    ),
    skip: list[str] = typer.Option(
        None, "--skip", metavar="ID,...", help="Leave these requirements to a person."
    ),
    kube_version: str = typer.Option(
        "1.29",
        "--kube-version",
        metavar="MINOR",
        help="Kubernetes minor for kubeadm/kubelet (its pkgs.k8s.io repository).",
        callback=_matching(r"\d+\.\d+", "a Kubernetes minor such as 1.29"),
    ),
    driver: str = typer.Option(
        "535",
        "--driver",
        metavar="BRANCH",
        help="NVIDIA driver branch (ubuntu-drivers install nvidia:BRANCH).",
        callback=_matching(r"\d+(-server)?(-open)?", "a driver branch such as 535 or 535-server"),
    ),
    no_resume_unit: bool = typer.Option(
        False,
        "--no-resume-unit",
        help="At a reboot, only say so: install no unit that continues join after boot.",
    ),
    hub: HubUrl = None,
    hub_ca: HubCa = None,
    private_key_file: KeyFile = None,
    json_output: JsonFlag = False,
) -> Result:
    """Make this host a Worldland node: everything doctor finds missing, in the seed's order.

    Every change is journaled first (/var/lib/worldland, WORLDLAND_STATE moves it), so a join
    that stops continues where it stopped when run again, and `worldland reset` undoes it.
    The NVIDIA driver needs a reboot: join stops there (exit status 0, "reboot_required" in
    --json) and, unless --no-resume-unit, a oneshot unit continues it after boot.

    \b
    Examples:
      worldland join --dry-run          # the plan, with diffs; changes nothing
      sudo worldland join               # asks once, then does it
      sudo worldland join --yes --skip gpu.driver
      sudo worldland join --only containerd.systemd-cgroup   # one step, as doctor suggests
      sudo worldland join --hub https://hub.example.org --private-key-file /root/wallet.key

    The hub steps log in as the wallet (silently with its key file, else with the session
    of `worldland login`), register the node, get its VPN address and kubeadm join
    parameters; reset deregisters it at the same hub.

    Exit status: 0 joined (or nothing to do, or stopped for a reboot), 1 a step failed,
    2 usage.
    """
    from worldland_cli import config
    from worldland_cli.auth.relogin import key_file_for_relogin
    from worldland_cli.host import Host
    from worldland_cli.hubclient import HubEndpoint
    from worldland_cli.join.actions import state_dir
    from worldland_cli.join.journal import Journal
    from worldland_cli.join.plan import plan_join
    from worldland_cli.join.run import join_host
    from worldland_cli.requirements import all_requirements
    from worldland_cli.requirements.base import JoinSettings
    from worldland_cli.requirements.runner import UnknownCheckError, resolve

    as_json = wants_json(ctx)
    host = Host(root, default_timeout=30.0)
    cfg = config.load()
    requirements = all_requirements(cert_dir=cfg.cert_dir(), joining=True)
    endpoint = HubEndpoint.from_config(cfg, hub, hub_ca)
    try:
        chosen = resolve(requirements, split_ids(only))
    except UnknownCheckError as e:
        raise typer.BadParameter(str(e), param_hint="--only") from e
    requirements = [r for r in requirements if not chosen or r.id in chosen]
    skipped = split_ids(skip)
    worldland = this_worldland()
    ca_file = str(Path(endpoint.ca_file).absolute()) if endpoint.ca_file else None
    settings = JoinSettings(
        kube_version=kube_version,
        driver=driver,
        hub=endpoint.url,
        hub_ca=ca_file,
        private_key_file=key_file_for_relogin(cfg, private_key_file, host),
        siwe_domain=cfg.get("siwe_domain"),
        worldland=worldland,
        resume_unit=not no_resume_unit,
        resume_command=(worldland, "join", "--yes", *_resumed_flags(ctx, {"hub_ca": ca_file})),
        resume_environment=_resume_environment(),
    )
    journal = Journal(host, state_dir())
    plan = plan_join(host, requirements, settings, skipped, journal=journal)
    document: dict[str, Any] = {"dry_run": dry_run, "plan": plan.to_dict()}
    if dry_run or plan.empty:
        if plan.empty:
            return Result(document, lines=["Nothing to do: every requirement is met."])
        return Result(document, render=lambda: _render_plan(plan))
    if not yes:
        _confirm(as_json, f"Apply these {len(plan.steps)} step(s)?", lambda: _render_plan(plan))
    listen = (lambda _event: None) if as_json else _Progress()
    result = join_host(host, journal, requirements, settings, skip=skipped, listen=listen)
    document.update(
        done=result.done,
        met=result.met,
        skipped=result.skipped,
        warnings=result.warnings,
        reboot_required=result.reboot is not None,
        reboot_reason=result.reboot,
    )
    where = host.path(journal.directory)
    notes = [f"note: {w}" for w in result.warnings]
    if result.reboot is not None:
        return Result(document, lines=_stopped(result, settings, str(where)) + notes)
    lines = [f"Joined: {len(result.done)} step(s) done, journal in {where}"]
    return Result(document, lines=lines + notes)


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
    from worldland_cli.join.actions import state_dir
    from worldland_cli.join.journal import Journal
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
