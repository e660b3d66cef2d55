"""Exponential backoff with jitter and a cap, shared by the heartbeat, sender and watch.

Jitter spreads out a thousand nodes that lost the hub at the same moment, so that they do not
come back at the same moment either ("equal jitter": between half and all of the step).
"""

from __future__ import annotations

import random

BACKOFF_BASE = 1.0
BACKOFF_CAP = 60.0


def backoff(
    failures: int, rng: random.Random, base: float = BACKOFF_BASE, cap: float = BACKOFF_CAP
) -> float:
    """Seconds to wait after ``failures`` failures in a row (1, 2, 4, ... up to ``cap``)."""
    step = min(cap, base * 2.0 ** max(0, failures - 1))
    return step / 2 + rng.uniform(0, step / 2)


def jittered(interval: float, rng: random.Random) -> float:
    """``interval`` give or take a tenth."""
    return interval * rng.uniform(0.9, 1.1)
