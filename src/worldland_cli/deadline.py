"""Run calls at once, each in its own daemon thread, and stop waiting for them at a deadline.

Doctor's checks, every diag step and the support bundle's probes call code that may never
return: NVML has no timeout of its own, nor do some socket paths. A daemon thread (not a pool
worker) is the one thing that can be abandoned: the caller reports "no answer" at the
deadline and the process still exits, since nothing waits for that thread at shutdown.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Hashable, Mapping
from dataclasses import dataclass
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)
T = TypeVar("T")


@dataclass(frozen=True)
class Outcome(Generic[T]):
    """How one call ended: a value, an exception, or not at all before the deadline."""

    finished: bool
    value: T | None = None
    error: Exception | None = None
    duration_ms: int = 0


def run_all(
    calls: Mapping[K, Callable[[], T]], limit: float, *, name: str = "worldland"
) -> dict[K, Outcome[T]]:
    """Start every call at once; return when all have ended or ``limit`` seconds have passed.

    The result has one Outcome per key, in the order of ``calls``; a call still running at
    the deadline is ``finished=False`` with the time waited. Exceptions are caught (one
    broken call must not hide the others) and handed back for the caller to describe.
    """
    ended: dict[K, Outcome[T]] = {}
    lock = threading.Lock()

    def run(key: K, call: Callable[[], T]) -> None:
        began = time.monotonic()
        try:
            value = call()
        except Exception as e:
            outcome: Outcome[T] = Outcome(True, error=e, duration_ms=_ms(began))
        else:
            outcome = Outcome(True, value=value, duration_ms=_ms(began))
        with lock:
            ended[key] = outcome

    start = time.monotonic()
    threads = [
        threading.Thread(target=run, args=(key, call), name=f"{name}:{key}", daemon=True)
        for key, call in calls.items()
    ]
    for thread in threads:
        thread.start()
    deadline = start + limit
    for thread in threads:
        thread.join(max(0.0, deadline - time.monotonic()))
    with lock:
        return {key: ended.get(key) or Outcome(False, duration_ms=_ms(start)) for key in calls}


def run_one(call: Callable[[], T], limit: float, *, name: str) -> Outcome[T]:
    """:func:`run_all` for a single call, its thread named after ``name``."""
    return run_all({name: call}, limit)[name]


def _ms(since: float) -> int:
    return int((time.monotonic() - since) * 1000)
