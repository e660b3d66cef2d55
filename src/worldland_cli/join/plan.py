"""The plan: every step join would take on this host, in the seed's order, with its diffs.

``join --dry-run`` prints it and changes nothing. Each requirement that is not met plans
against a :class:`PlanView` of the host: reads pass through, except that files an earlier
step of the plan writes read as that step leaves them (so two steps editing containerd's
config show two diffs that compose), and every write is refused (restic's dry-run backend).
A real join plans each step again just before running it, against the host as the earlier
steps left it. A step whose every action an earlier step already plans (gpu.nvidia-smi and
gpu.driver both install the driver) is shown as met by that step, not as a second install.
A plan that does not stop for a reboot ends by retiring the resume unit if one is enabled
(:mod:`.resume`): that is the last thing a join that completes does. Given the journal, the
plan also shows a step met by its check that a join cut short inside (its file written, its
service not restarted yet): what that join left undone is what the next join runs.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from worldland_cli.host import Host, HostError
from worldland_cli.join import resume
from worldland_cli.join.actions import Action, Reboot, WriteFile
from worldland_cli.join.journal import Journal
from worldland_cli.requirements.base import Finding, JoinSettings, Requirement, Status

# What a step met by its check, but cut short inside by an earlier join, has left to do.
FINISHING = "finishing what a join cut short did only in part"


class PlanView(Host):
    """A read-only view of ``host`` in which planned file writes are already made."""

    def __init__(self, host: Host) -> None:
        super().__init__(
            host.root,
            search_path=host.search_path,
            env=host.env,
            default_timeout=host.default_timeout,
        )
        self.pending: dict[str, str] = {}

    def read_text(self, system_path: str) -> str | None:
        if system_path in self.pending:
            return self.pending[system_path]
        return super().read_text(system_path)

    def read_bytes(self, system_path: str) -> bytes | None:
        if system_path in self.pending:
            return self.pending[system_path].encode()
        return super().read_bytes(system_path)

    def exists(self, system_path: str) -> bool:
        return system_path in self.pending or super().exists(system_path)

    def write_atomic(self, system_path: str, data: bytes | str, mode: int = 0o644) -> None:
        raise HostError(f"a plan changes nothing: refused to write {system_path}")

    def record(self, actions: Sequence[Action]) -> None:
        for action in actions:
            if isinstance(action, WriteFile):
                self.pending[action.path] = action.content


@dataclass(frozen=True)
class Step:
    """One requirement that is not met, and what join would do about it."""

    id: str
    title: str
    finding: Finding
    actions: tuple[Action, ...]
    diffs: tuple[str, ...] = field(default=())
    same_as: str | None = None  # an earlier step whose actions meet this one too

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "title": self.title,
            "status": self.finding.status.value,
            "observed": self.finding.observed,
            "same_as": self.same_as,
            "actions": [
                {"kind": a.kind, "describe": a.describe(), "shell": a.as_shell(), "diff": d}
                for a, d in zip(self.actions, self.diffs, strict=True)
            ],
        }


@dataclass(frozen=True)
class Plan:
    steps: tuple[Step, ...]
    met: tuple[str, ...]  # requirement ids already met: nothing to do
    skipped: tuple[str, ...]  # --skip

    @property
    def empty(self) -> bool:
        return not self.steps

    def to_dict(self) -> dict[str, Any]:
        return {
            "steps": [s.to_dict() for s in self.steps],
            "met": list(self.met),
            "skipped": list(self.skipped),
        }


def needs_work(finding: Finding) -> bool:
    """Only a failure is join's business; a warning is advice, a skip does not apply."""
    return finding.status is Status.FAIL


def plan_join(
    host: Host,
    requirements: Sequence[Requirement],
    settings: JoinSettings,
    skip: Sequence[str] = (),
    *,
    journal: Journal | None = None,
) -> Plan:
    """Check every requirement in order and plan the ones that are not met, and the rest of
    those ``journal`` shows cut short."""
    view = PlanView(host)
    unfinished = journal.unfinished() if journal is not None else {}
    steps: list[Step] = []
    met: list[str] = []
    skipped: list[str] = []
    for requirement in requirements:
        if requirement.id in skip:
            skipped.append(requirement.id)
            continue
        finding = requirement.check(view)
        rest = unfinished.get(requirement.id, ())
        if not needs_work(finding) and rest:
            finishing = replace(finding, observed=f"{FINISHING} ({finding.observed})")
            diffs = tuple(a.diff(view) for a in rest)
            view.record(rest)
            steps.append(Step(requirement.id, requirement.title, finishing, rest, diffs))
            continue
        if not needs_work(finding):
            met.append(requirement.id)
            continue
        actions = tuple(requirement.plan(view, finding, settings))
        same = next((s.id for s in steps if actions and all(a in s.actions for a in actions)), None)
        if same is not None:
            steps.append(Step(requirement.id, requirement.title, finding, (), (), same))
            continue
        diffs = tuple(a.diff(view) for a in actions)
        view.record(actions)
        steps.append(Step(requirement.id, requirement.title, finding, actions, diffs))
    stops = any(isinstance(a, Reboot) for step in steps for a in step.actions)
    retiring = None if stops else resume.retire(view)
    if retiring is not None:
        steps.append(Step(resume.STEP, resume.TITLE, resume.still_enabled(), (retiring,), ("",)))
    return Plan(tuple(steps), tuple(met), tuple(skipped))
