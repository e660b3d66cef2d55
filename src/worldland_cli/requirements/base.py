"""The requirement model that doctor and join share.

One class per requirement, with a stable dotted id (``containerd.nvidia-runtime``) that
``--json``, ``--only`` and ``--ignore`` use, the way kubeadm names its preflight checks.
A check only looks; it returns a Finding and never changes the host. ``plan`` says what
join would do about a finding that is not ok (:mod:`worldland_cli.join.actions`); a
requirement join cannot meet by itself plans one :class:`Manual` step with doctor's remedy.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import asdict, dataclass, field, replace
from enum import StrEnum
from typing import Any, ClassVar

from worldland_cli.config import DEFAULT_HUB
from worldland_cli.host import Host
from worldland_cli.join.actions import Action, Manual


class Status(StrEnum):
    OK = "ok"
    WARN = "warn"
    FAIL = "fail"
    SKIP = "skip"


@dataclass(frozen=True)
class Finding:
    """What one check saw, and the exact command that fixes it when it is not ok.

    Doctor's checks and diag's probe steps both report in this shape, so support reads one
    vocabulary and one renderer serves both.
    """

    id: str
    status: Status
    observed: str
    remedy: str | None = None
    doc: str | None = None
    details: dict[str, Any] = field(default_factory=dict)
    ignored: bool = False
    duration_ms: int = 0
    timed_out: bool = False

    @property
    def area(self) -> str:
        return self.id.split(".", 1)[0]

    def as_ignored(self) -> Finding:
        """kubeadm's --ignore-preflight-errors: an ignored failure is still shown, as a warning."""
        if self.status is Status.FAIL:
            return replace(self, status=Status.WARN, ignored=True)
        return replace(self, ignored=True)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["status"] = self.status.value
        d["area"] = self.area
        return d


@dataclass(frozen=True)
class JoinSettings:
    """What join's plans depend on beyond the host: versions a provider may choose."""

    kube_version: str = "1.29"
    driver: str = "535"
    # The hub the node joins, as `worldland join` resolved it (flag > env > config.toml):
    # recorded in the journal with the hub's steps, so reset deregisters at the same hub.
    hub: str = DEFAULT_HUB
    hub_ca: str | None = None
    private_key_file: str | None = None  # the wallet key for a silent login, if any
    siwe_domain: str | None = None
    # What the node daemon's unit runs: the absolute path of this `worldland`.
    worldland: str = "/usr/local/bin/worldland"
    # After a stop for a reboot, a unit runs resume_command at boot (join.resume); off with
    # --no-resume-unit. The environment carries WORLDLAND_* so the resumed join finds the
    # same journal and config.
    resume_unit: bool = True
    resume_command: tuple[str, ...] = ("/usr/local/bin/worldland", "join", "--yes")
    resume_environment: tuple[str, ...] = ()  # "NAME=value"


def by_hand(finding: Finding, words: str) -> Manual:
    """The step a person takes: doctor's remedy (a command to paste), else ``words``."""
    return Manual(finding.remedy, command=True) if finding.remedy else Manual(words)


class Requirement(ABC):
    """One thing a provider host must have; subclasses set ``id`` and ``title``."""

    id: ClassVar[str]
    title: ClassVar[str]

    @abstractmethod
    def check(self, host: Host) -> Finding:
        """Look at the host and say how it stands; must not change anything."""

    def plan(self, host: Host, finding: Finding, settings: JoinSettings) -> list[Action]:
        """What join does about ``finding`` (not ok); reads ``host``, changes nothing.

        Called just before the actions run, once the earlier steps are done, so a plan may
        depend on them (containerd's default config needs containerd installed).
        """
        return [by_hand(finding, f"meet {self.id} ({finding.observed})")]

    def finding(
        self,
        status: Status,
        observed: str,
        remedy: str | None = None,
        doc: str | None = None,
        **details: Any,
    ) -> Finding:
        return Finding(self.id, status, observed, remedy, doc, details)

    def ok(self, observed: str, **details: Any) -> Finding:
        return self.finding(Status.OK, observed, **details)

    def warn(self, observed: str, remedy: str | None = None, **details: Any) -> Finding:
        return self.finding(Status.WARN, observed, remedy, **details)

    def fail(
        self, observed: str, remedy: str | None, doc: str | None = None, **details: Any
    ) -> Finding:
        return self.finding(Status.FAIL, observed, remedy, doc, **details)

    def skip(self, reason: str, **details: Any) -> Finding:
        return self.finding(Status.SKIP, reason, **details)
