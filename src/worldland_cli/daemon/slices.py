"""The billing grid: how a pod's interval is cut into slices, and each slice's event id.

A pod's interval starts at ``start`` (from the pod's status) and is cut on a fixed grid:
slice k covers ``[start + L*k, start + L*(k+1))``, where L is the slice length recorded when
the interval opened (a later ``--slice`` never moves an open interval's grid). Only the last
slice is shorter: it ends at the pod's real finish. So the slices of one pod are contiguous
and never overlap (the hub refuses overlaps), and their lengths add up to exactly
``finish - start``.

The event id of slice k is ``<pod uid>:<start>:<k>``: the same slice always gets the same id,
whether it is cut before a crash or again after it, so the hub's idempotency by event id makes
a resend harmless. A slice is cut only once its end has passed by :func:`settle_seconds`,
time for the kubelet to have reported a container that ended just before the slice's end.
"""

from __future__ import annotations

DEFAULT_SLICE_SECONDS = 60
MIN_SETTLE_SECONDS = 2
MAX_SETTLE_SECONDS = 10


def event_id(pod_uid: str, start: int, index: int) -> str:
    return f"{pod_uid}:{start}:{index}"


def slice_start(start: int, length: int, index: int) -> int:
    return start + length * index


def whole_slices(start: int, length: int, until: int) -> int:
    """How many whole slices end at or before ``until``."""
    return max(0, (until - start) // length)


def settle_seconds(length: int) -> int:
    """How long after a slice's end it is cut: a sixth of a slice, 2 to 10 seconds (the
    kubelet's status updates take a second or two to reach the API server)."""
    return min(MAX_SETTLE_SECONDS, max(MIN_SETTLE_SECONDS, length // 6))
