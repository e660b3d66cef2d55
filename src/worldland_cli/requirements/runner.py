"""Runs checks concurrently, bounded by one deadline (:mod:`worldland_cli.deadline`).

A probe stuck inside a wedged driver call (NVML has no timeout of its own) is abandoned at
the deadline and reported as a failure, without keeping the process alive at exit.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from functools import partial
from typing import Any

from worldland_cli import __version__
from worldland_cli.deadline import run_all
from worldland_cli.host import Host, HostError
from worldland_cli.requirements.base import Finding, Requirement, Status

# Commands inside a check already stop at the host timeout; the grace lets them report
# their own "timed out" finding before the runner gives up on the whole check.
DEADLINE_GRACE = 0.5
SCHEMA = "worldland.doctor/v1"


class UnknownCheckError(ValueError):
    """--only/--ignore named something that is neither a check id nor an area."""


@dataclass
class Report:
    findings: list[Finding]
    duration_ms: int
    timeout_s: float
    root: str = "/"
    hostname: str = ""

    def counts(self) -> dict[str, int]:
        counts = {s.value: 0 for s in Status}
        for f in self.findings:
            counts[f.status.value] += 1
        return counts

    @property
    def failed(self) -> bool:
        return any(f.status is Status.FAIL for f in self.findings)

    def to_dict(self) -> dict[str, Any]:
        """The `doctor --json` document; its schema is docs/doctor-json.md (a public contract)."""
        return {
            "schema": SCHEMA,
            "version": __version__,
            "hostname": self.hostname,
            "root": self.root,
            "ok": not self.failed,  # what every --json document says; the same as "ready"
            "ready": not self.failed,
            "summary": self.counts(),
            "duration_ms": self.duration_ms,
            "timeout_s": self.timeout_s,
            "checks": [f.to_dict() for f in self.findings],
        }

    def summary(self) -> str:
        c = self.counts()
        verdict = "NOT READY" if self.failed else "ready"
        return (
            f"{verdict}: {c['ok']} ok, {c['warn']} warning(s), {c['fail']} failed, "
            f"{c['skip']} skipped in {self.duration_ms} ms"
        )


def _matches(req_id: str, selector: str) -> bool:
    return selector == "all" or req_id == selector or req_id.startswith(selector + ".")


def resolve(requirements: Sequence[Requirement], selectors: Iterable[str]) -> set[str]:
    """Check ids named by selectors (an exact id, an area such as ``gpu``, or ``all``)."""
    ids: set[str] = set()
    for sel in (s.strip() for s in selectors):
        if not sel:
            continue
        hit = {r.id for r in requirements if _matches(r.id, sel)}
        if not hit:
            known = ", ".join(sorted(r.id for r in requirements))
            raise UnknownCheckError(f"unknown check {sel!r}; known checks: {known}")
        ids |= hit
    return ids


def _run_one(req: Requirement, host: Host) -> Finding:
    start = time.monotonic()
    try:
        finding = req.check(host)
    except HostError as e:
        finding = req.fail(f"could not check: {e}", None)
    except Exception as e:  # a bug in one check must not hide the others
        finding = req.fail(f"check crashed: {type(e).__name__}: {e}", None)
    ms = int((time.monotonic() - start) * 1000)
    return replace(finding, duration_ms=ms)


def run_checks(
    host: Host,
    requirements: Sequence[Requirement],
    *,
    only: Iterable[str] = (),
    ignore: Iterable[str] = (),
    timeout: float | None = None,
) -> Report:
    only_ids = resolve(requirements, only)
    ignore_ids = resolve(requirements, ignore)
    selected = [r for r in requirements if not only_ids or r.id in only_ids]
    limit = host.default_timeout if timeout is None else timeout

    start = time.monotonic()
    calls = {r.id: partial(_run_one, r, host) for r in selected}
    outcomes = run_all(calls, limit + DEADLINE_GRACE, name="check")

    findings: list[Finding] = []
    for req in selected:
        f = outcomes[req.id].value
        if f is None:
            f = replace(
                req.fail(f"no answer within {limit:g}s; the probe was abandoned", None),
                duration_ms=int(limit * 1000),
                timed_out=True,
            )
        if req.id in ignore_ids:
            f = f.as_ignored()
        findings.append(f)
    duration_ms = int((time.monotonic() - start) * 1000)
    return Report(findings, duration_ms, limit, str(host.root), host.hostname())
