"""The shape every diag probe reports in, and the timeout guard every step runs under.

Diag steps reuse doctor's statuses (ok, warn, fail, skip) so support reads one vocabulary;
a step that does not answer in time is a failure flagged ``timed_out`` rather than a hang.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any, cast

from worldland_cli import __version__
from worldland_cli.deadline import run_one
from worldland_cli.host import HostError
from worldland_cli.requirements.base import Finding, Status

__all__ = ["DiagReport", "Finding", "Status", "bounded"]


def ok(id: str, observed: str, **details: Any) -> Finding:
    return Finding(id, Status.OK, observed, details=details)


def warn(id: str, observed: str, remedy: str | None = None, **details: Any) -> Finding:
    return Finding(id, Status.WARN, observed, remedy, details=details)


def fail(id: str, observed: str, remedy: str | None = None, **details: Any) -> Finding:
    return Finding(id, Status.FAIL, observed, remedy, details=details)


def skip(id: str, observed: str, **details: Any) -> Finding:
    return Finding(id, Status.SKIP, observed, details=details)


@dataclass
class DiagReport:
    """The result of one `worldland diag KIND`: its checks plus raw data for the bundle."""

    kind: str
    checks: list[Finding] = field(default_factory=list)
    data: dict[str, Any] = field(default_factory=dict)
    duration_ms: int = 0

    @property
    def failed(self) -> bool:
        return any(c.status is Status.FAIL for c in self.checks)

    def add(self, check: Finding) -> Finding:
        self.checks.append(check)
        return check

    def to_dict(self) -> dict[str, Any]:
        """The `diag KIND --json` document (schema ``worldland.diag.KIND/v1``)."""
        return {
            "schema": f"worldland.diag.{self.kind}/v1",
            "version": __version__,
            "ok": not self.failed,
            "duration_ms": self.duration_ms,
            "checks": [c.to_dict() for c in self.checks],
            "data": self.data,
        }


def bounded(check_id: str, fn: Callable[[], Finding], timeout: float) -> Finding:
    """Run one step under :func:`worldland_cli.deadline.run_one`; give up after ``timeout``.

    Exceptions become a failed check so one broken step never hides the others.
    """
    outcome = run_one(fn, timeout, name=f"diag:{check_id}")
    e = outcome.error
    if not outcome.finished:
        result = Finding(
            check_id,
            Status.FAIL,
            f"no answer within {timeout:g}s (timed out); the step was abandoned",
            timed_out=True,
        )
    elif isinstance(e, HostError):
        result = fail(check_id, f"could not check: {e}")
    elif e is not None:  # a bug or surprise in one step must not hide the rest
        result = fail(check_id, f"step crashed: {type(e).__name__}: {e}")
    else:
        result = cast(Finding, outcome.value)
    return replace(result, duration_ms=result.duration_ms or outcome.duration_ms)
