"""``systemctl daemon-reload`` around a unit file join writes, and again after reset removes it.

systemd reads unit files when told to: after join writes worldland-node.service, and after
reset has taken it away (otherwise systemd keeps the removed unit loaded until the next
reload or boot).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from worldland_cli.host import Host
from worldland_cli.join.actions import Action, Output, run_checked


@dataclass(frozen=True)
class DaemonReload(Action):
    kind: ClassVar[str] = "daemon-reload"

    def describe(self) -> str:
        return "reload systemd's unit files (systemctl daemon-reload)"

    def as_shell(self) -> str:
        return "sudo systemctl daemon-reload"

    def apply(self, host: Host, out: Output) -> None:
        run_checked(host, out, ("systemctl", "daemon-reload"), timeout=120.0)

    def after_restore(self, host: Host, out: Output) -> None:
        run_checked(host, out, ("systemctl", "daemon-reload"), timeout=120.0)
