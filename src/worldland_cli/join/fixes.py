"""Doctor's fixes: what to paste, in the order to paste it, each fix once.

A finding's remedy is one line written for that check alone, so a list of them sorted any
other way than the seed's (containerd's fixes before the toolkit whose ``nvidia-ctk`` they
run) or pasted twice (the driver's install under ``gpu.driver`` and ``gpu.nvidia-smi``)
fails half way. The commands here come from the one source that already knows the order
and what each step needs: join's plan. Each requirement that is not ok is planned in
``all_requirements`` order against a :class:`~worldland_cli.join.plan.PlanView` (so a file
an earlier fix writes reads as written), and every action's ``as_shell`` is a command a
person can paste, which is what join itself would run.

Two kinds of step have no such command: one that asks the hub for its parameters (the
WireGuard peer, kubeadm's JoinConfiguration) and one join can only plan once the steps
before it have run (containerd's config needs containerd and the toolkit installed). Their
fix is join's own run of that step, ``sudo worldland join --only STEP``; two such fixes in a
row are one run. A step whose every action an earlier fix already takes is met by that fix
and named in its title instead of repeated.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

from worldland_cli.host import Host
from worldland_cli.join.actions import Action, Reboot
from worldland_cli.join.hubcall import HubCaller
from worldland_cli.join.plan import PlanView
from worldland_cli.requirements.base import (
    Finding,
    JoinSettings,
    Requirement,
    Status,
    by_hand,
)


@dataclass(frozen=True)
class Fix:
    """One numbered block of doctor's fixes: the checks it meets and the commands, in order."""

    checks: tuple[str, ...]
    observed: str
    commands: tuple[str, ...]
    doc: str | None = None
    actions: tuple[Action, ...] = ()
    joined: str | None = None  # the hub flags of a `worldland join --only` fix ("" for none)

    @property
    def reboots(self) -> bool:
        return any(isinstance(a, Reboot) for a in self.actions)

    def to_dict(self) -> dict[str, Any]:
        return {
            "checks": list(self.checks),
            "observed": self.observed,
            "commands": list(self.commands),
            "doc": self.doc,
        }


def needs_fix(finding: Finding) -> bool:
    """A failure or a warning that says what to do (an ignored failure is a warning)."""
    return finding.status in (Status.FAIL, Status.WARN) and bool(finding.remedy)


def join_only(checks: Sequence[str], flags: str) -> str:
    """``sudo worldland join --yes --only A,B`` with the hub flags the steps' hub calls need
    (``--yes``: a pasted line after it would otherwise be read as the answer to its question)."""
    command = f"sudo worldland join --yes --only {','.join(checks)}"
    return f"{command} {flags}" if flags else command


def _plan(
    requirement: Requirement, view: Host, finding: Finding, settings: JoinSettings
) -> list[Action]:
    """The requirement's plan; its remedy as a step by hand when planning itself fails.

    Doctor must print every fix it can even when one plan cannot be made (a broken config
    file, a hub setting join would need): the remedy was written for exactly that check.
    """
    try:
        return requirement.plan(view, finding, settings)
    except Exception:
        return [by_hand(finding, finding.observed)]


def _with(fix: Fix, check: str, actions: tuple[Action, ...] = ()) -> Fix:
    """``fix`` meeting ``check`` too; a join run names every step it runs."""
    checks = (*fix.checks, check)
    commands = fix.commands if fix.joined is None else (join_only(checks, fix.joined),)
    return replace(fix, checks=checks, commands=commands, actions=(*fix.actions, *actions))


def plan_fixes(
    host: Host,
    requirements: Sequence[Requirement],
    findings: Sequence[Finding],
    settings: JoinSettings,
) -> list[Fix]:
    """The fixes for ``findings`` (doctor's, one per requirement), in the requirements' order."""
    by_id = {f.id: f for f in findings}
    view = PlanView(host)
    fixes: list[Fix] = []
    for requirement in requirements:
        finding = by_id.get(requirement.id)
        if finding is None or not needs_fix(finding):
            continue
        actions = tuple(_plan(requirement, view, finding, settings))
        met_by = next(
            (
                i
                for i, fix in enumerate(fixes)
                if actions and all(a in fix.actions for a in actions)
            ),
            None,
        )
        if met_by is not None:
            fixes[met_by] = _with(fixes[met_by], finding.id)
            continue
        view.record(actions)
        if not any(a.join_only for a in actions):
            commands = tuple(a.as_shell() for a in actions) or (finding.remedy or "",)
            fixes.append(Fix((finding.id,), finding.observed, commands, finding.doc, actions))
            continue
        flags = next((a.hub_flags() for a in actions if isinstance(a, HubCaller)), "")
        if fixes and fixes[-1].joined == flags:
            fixes[-1] = _with(fixes[-1], finding.id, actions)
            continue
        command = join_only([finding.id], flags)
        fixes.append(Fix((finding.id,), finding.observed, (command,), finding.doc, actions, flags))
    return fixes
