"""Applying a plan through the journal, and undoing it: ``join`` and ``reset``.

join takes the steps in order. For each requirement it checks the host as the earlier steps
left it, plans, and runs each action between a journal ``begin`` and ``done``; then it
checks again, and a step that is still not met stops join with its log file named. Nothing
is done twice on purpose: a second join finds the met requirements met and plans nothing,
and a join cut short continues where it stopped, finishing a step it stopped inside even
when that step's check passes already (the journal holds each step's plan: a config
written but its service not restarted reads as met). A step that needs a reboot ends in a
``Reboot`` action: join records it, stops cleanly (not a failure) and continues after boot
(:mod:`.resume`); the join that completes disables the resume unit.

reset undoes the journal newest first: what is not a file (units, packages with --purge,
commands with an undo), then every file back as it was before the first join, then the
services that read them. An undo that fails is reported and the others still run; the
journal is kept until a reset completes, so reset can be run again.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from worldland_cli.errors import ActionableError
from worldland_cli.host import Host, HostError
from worldland_cli.join import resume
from worldland_cli.join.actions import Action, ActionFailed, Output, RebootRequired
from worldland_cli.join.journal import Journal
from worldland_cli.join.plan import FINISHING, needs_work
from worldland_cli.requirements.base import Finding, JoinSettings, Requirement, Status


class JoinFailed(ActionableError):
    """A step could not be done; the message names it, the hint its log and what next."""


@dataclass(frozen=True)
class StepEvent:
    """What the renderer hears about: a step starting, done, met already, or skipped."""

    kind: str  # "met" | "skipped" | "start" | "action" | "done" | "reboot"
    step: str
    title: str
    detail: str = ""


@dataclass
class JoinResult:
    done: list[str] = field(default_factory=list)
    met: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    # Steps done that still warn ("id: what was seen"): join goes on, but says so.
    warnings: list[str] = field(default_factory=list)
    reboot: str | None = None  # why join stopped for a reboot; it continues after boot


Listener = Callable[[StepEvent], None]


def _quiet(_: StepEvent) -> None:
    return None


def join_host(
    host: Host,
    journal: Journal,
    requirements: Sequence[Requirement],
    settings: JoinSettings,
    *,
    skip: Sequence[str] = (),
    listen: Listener = _quiet,
) -> JoinResult:
    """Meet every requirement not skipped, in order; raise JoinFailed at the first that fails.

    Returns early, with ``reboot`` set, at a step that stops for a reboot.
    """
    result = JoinResult()
    with host.exclusive_lock(journal.lock_file):
        unfinished = journal.unfinished()
        for requirement in requirements:
            title = requirement.title
            if requirement.id in skip:
                result.skipped.append(requirement.id)
                listen(StepEvent("skipped", requirement.id, title))
                continue
            finding = requirement.check(host)
            rest = unfinished.get(requirement.id, ())
            if not needs_work(finding) and not rest:
                result.met.append(requirement.id)
                listen(StepEvent("met", requirement.id, title, finding.observed))
                continue
            finishing = not needs_work(finding)  # met, but a join stopped inside the step
            actions = list(rest) if finishing else requirement.plan(host, finding, settings)
            detail = FINISHING if finishing else finding.observed
            listen(StepEvent("start", requirement.id, title, detail))
            try:
                for index, action in enumerate(actions):
                    listen(StepEvent("action", requirement.id, title, action.describe()))
                    plan = actions if index == 0 and not finishing else ()
                    _apply(host, journal, requirement.id, action, plan=plan, finishing=finishing)
            except RebootRequired as stop:
                result.reboot = str(stop)
                listen(StepEvent("reboot", requirement.id, title, result.reboot))
                return result
            after = requirement.check(host)
            if needs_work(after):
                raise _still_failing(journal, requirement, after)
            result.done.append(requirement.id)
            if after.status is Status.WARN:
                hint = f"; {after.remedy}" if after.remedy else ""
                result.warnings.append(f"{requirement.id}: {after.observed}{hint}")
            listen(StepEvent("done", requirement.id, title, after.observed))
        retire = resume.retire(host)
        if retire is not None:
            listen(StepEvent("action", resume.STEP, "resume unit", retire.describe()))
            _apply(host, journal, resume.STEP, retire)
    return result


def _apply(
    host: Host,
    journal: Journal,
    step: str,
    action: Action,
    *,
    plan: Sequence[Action] = (),
    finishing: bool = False,
) -> None:
    """Run one action between its journal lines; ``plan`` with a step's first action (the
    journal keeps it), ``finishing`` for the rest of a step a join cut short."""
    before = action.prepare(host)
    entry = journal.begin(step, action, before, plan)
    log = journal.log_path(entry)
    out = Output(host, log, lambda facts: journal.remember(entry, facts))
    try:
        if finishing:
            action.finish(host, out)
        else:
            action.apply(host, out)
    except RebootRequired:
        journal.finish(entry)  # the stop is the action's work, done
        raise
    except (ActionFailed, HostError) as e:
        journal.finish(entry, str(e))
        raise JoinFailed(
            f"{step}: {e}",
            f"what it printed is in {host.path(log)}; fix that and run `worldland join` "
            "again (it continues here), or undo everything with `worldland reset`",
        ) from None
    journal.finish(entry)


def _still_failing(journal: Journal, requirement: Requirement, after: Finding) -> JoinFailed:
    return JoinFailed(
        f"{requirement.id}: still not met after join's steps: {after.observed}",
        (after.remedy + "; then " if after.remedy else "")
        + f"run `worldland join` again (logs under {journal.directory}/logs)",
    )


@dataclass
class ResetResult:
    undone: list[str] = field(default_factory=list)  # action descriptions, newest first
    restored: list[str] = field(default_factory=list)  # paths
    failures: list[str] = field(default_factory=list)
    journal_kept: str | None = None
    journal_moved_to: str | None = None


def reset_plan(journal: Journal) -> tuple[list[str], list[str]]:
    """What reset would undo (newest first) and which paths it would restore."""
    entries = journal.entries()
    return [e.action.describe() for e in reversed(entries)], sorted(journal.originals())


def reset_host(host: Host, journal: Journal, *, purge: bool = False) -> ResetResult:
    """Undo every journaled action, restore every file, and move the journal aside."""
    result = ResetResult()
    with host.exclusive_lock(journal.lock_file):
        entries = journal.entries()
        for entry in reversed(entries):
            out = Output(host, journal.log_path(entry))
            try:
                entry.action.undo(host, {**entry.before, **entry.extra}, purge, out)
                result.undone.append(entry.action.describe())
            except (ActionFailed, HostError) as e:
                result.failures.append(f"{entry.step}: undo {entry.action.describe()}: {e}")
        for path, backup in sorted(journal.originals().items()):
            try:
                journal.restore(backup)
                result.restored.append(path)
            except HostError as e:
                result.failures.append(f"restore {path}: {e}")
        for entry in reversed(entries):
            try:
                entry.action.after_restore(host, Output(host, journal.log_path(entry)))
            except (ActionFailed, HostError) as e:
                result.failures.append(f"{entry.step}: {e}")
        if result.failures:
            result.journal_kept = journal.directory
        elif entries:
            result.journal_moved_to = journal.close()
    return result
