"""Continuing join after a reboot it asked for: a oneshot unit that runs join at boot.

A step that needs a reboot (the NVIDIA driver's kernel module loads only at boot) plans
:func:`resume_actions` before its :class:`~worldland_cli.join.actions.Reboot` stop: the
unit file and ``systemctl enable``, both journaled, so ``worldland reset`` removes them.
The join that completes (the unit's own, or a person's) disables the unit with
:func:`retire`, so it runs once per reboot join asked for, not at every boot.
"""

from __future__ import annotations

import re

from worldland_cli.host import Host
from worldland_cli.join.actions import Action, EnableUnit, RunCommand, WriteFile, sha256_text
from worldland_cli.requirements.base import Finding, JoinSettings, Status

UNIT = "worldland-join-resume.service"
UNIT_PATH = f"/etc/systemd/system/{UNIT}"
STEP = "join.resume"  # the plan's and the journal's name for retiring the unit
TITLE = "the resume unit retired once join completes"
_PLAIN = re.compile(r"[A-Za-z0-9_@%+=:,./-]+")


def systemd_word(word: str, *, command: bool = True) -> str:
    """One ExecStart= word (or, ``command=False``, one Environment= assignment) as systemd
    reads it back (systemd.service(5), systemd.exec(5)): quoted when it has spaces or
    quotes, ``%`` doubled (specifiers), and in a command ``$`` doubled (variables)."""
    escaped = word.replace("%", "%%")
    if command:
        escaped = escaped.replace("$", "$$")
    if _PLAIN.fullmatch(escaped):
        return escaped
    return '"' + escaped.replace("\\", "\\\\").replace('"', '\\"') + '"'


def unit_text(settings: JoinSettings) -> str:
    from worldland_cli.templating import render

    return render(
        "worldland-join-resume.service",
        command=" ".join(systemd_word(w) for w in settings.resume_command),
        environment=[systemd_word(a, command=False) for a in settings.resume_environment],
    )


def _enabled(host: Host) -> bool:
    return host.run(("systemctl", "is-enabled", UNIT)).stdout.strip() == "enabled"


def resume_actions(host: Host, settings: JoinSettings) -> list[Action]:
    """The unit written and enabled (what is missing of it); none with --no-resume-unit."""
    if not settings.resume_unit:
        return []
    actions: list[Action] = []
    text, current = unit_text(settings), host.read_text(UNIT_PATH)
    if current != text:
        actions.append(WriteFile(UNIT_PATH, text, mode=0o644, before=sha256_text(current)))
    if not _enabled(host):
        actions.append(EnableUnit(UNIT, now=False))
    return actions


def still_enabled() -> Finding:
    """What the plan says about the unit while it waits to be retired."""
    return Finding(STEP, Status.FAIL, f"{UNIT} is enabled: it runs join at every boot")


def retire(host: Host) -> Action | None:
    """What a completed join does about the unit: disable it while it is enabled."""
    if not host.exists(UNIT_PATH) or not _enabled(host):
        return None
    return RunCommand(
        ("systemctl", "disable", UNIT),
        summary=f"join is complete: disable {UNIT} (it ran the join after the reboot)",
    )
