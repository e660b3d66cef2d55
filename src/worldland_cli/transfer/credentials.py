"""How a transfer logs in: the identity, the known_hosts file and the agent, and the time-outs
both SSH clients use (asyncssh's connection and the OpenSSH lane's ``ssh``).

Apart from :mod:`.ssh` (which imports asyncssh, ~0.1 s) so that the lane's ``ssh`` can start
before the rest of the transfer is imported (:mod:`.lanestart`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

CONNECT_TIMEOUT = 15.0
KEEPALIVE_INTERVAL = 10.0  # a silently dead link is noticed in ~30 s instead of hanging


@dataclass(frozen=True)
class Credentials:
    """How we prove who we are, and which host keys we trust when there is no pinned key."""

    identity: Path | None = None
    identity_explicit: bool = False
    known_hosts: Path = field(default_factory=lambda: Path.home() / ".ssh" / "known_hosts")
    use_agent: bool = True
