"""What the meter needs to know about a pod, read from the API's own JSON.

The watch hands over raw JSON: decoding every event into the kubernetes client's models would
cost more CPU and memory than the daemon's whole budget for an idle node, and the meter reads
a handful of fields.

Billing follows the GPUs, not the processes: the device plugin gives a pod its GPUs for the
pod's whole life, so the pod holds them from the moment its first GPU container runs
(``startedAt`` of that container, to the second, from the kubelet) until the pod ends (the
latest ``finishedAt`` once the pod is Succeeded or Failed, or is being deleted with every
container stopped). A container restart inside a running pod is no gap: the GPUs stay
allocated to the pod meanwhile.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from worldland_cli.times import parse_time

GPU_RESOURCE = "nvidia.com/gpu"
# The hub's id for the pod when it differs from the Kubernetes name (the operator's choice).
POD_ID_LABEL = "worldland.io/pod-id"
TERMINAL_PHASES = ("Succeeded", "Failed")


@dataclass(frozen=True)
class PodView:
    """A GPU pod as the meter sees it; times are whole seconds since the epoch."""

    uid: str
    namespace: str
    name: str
    pod_id: str
    gpus: int
    started: int | None  # when the first GPU container ran; None before it does
    finished: int | None  # when the pod ended; None while it runs (or when unknown)
    deletion: int | None  # metadata.deletionTimestamp: deletion asked for, due by then


def seconds(text: object) -> int | None:
    """An API timestamp (RFC 3339, to the second) as epoch seconds; None when absent."""
    if not isinstance(text, str) or not text:
        return None
    return int(parse_time(text).timestamp())


def _gpus_of(container: Mapping[str, Any]) -> int:
    resources = container.get("resources") or {}
    for kind in ("limits", "requests"):  # extended resources: requests equal limits
        value = (resources.get(kind) or {}).get(GPU_RESOURCE)
        if value is not None:
            try:
                return max(0, int(str(value)))
            except ValueError:
                return 0
    return 0


def _states(status: Mapping[str, Any]) -> Iterator[Mapping[str, Any]]:
    for key in ("state", "lastState"):
        for state in (status.get(key) or {}).values():
            if isinstance(state, Mapping):
                yield state


def view(pod: Mapping[str, Any]) -> PodView | None:
    """The meter's view of a pod, or None for a pod that requests no GPU."""
    meta = pod.get("metadata") or {}
    spec = pod.get("spec") or {}
    status = pod.get("status") or {}
    gpu_containers = {
        str(c.get("name")): n for c in spec.get("containers") or [] if (n := _gpus_of(c)) > 0
    }
    if not gpu_containers:
        return None
    statuses = status.get("containerStatuses") or []
    starts = [
        t
        for s in statuses
        if s.get("name") in gpu_containers
        for state in _states(s)
        if (t := seconds(state.get("startedAt"))) is not None
    ]
    deletion = seconds(meta.get("deletionTimestamp"))
    terminated = [(s.get("state") or {}).get("terminated") for s in statuses]
    all_stopped = bool(terminated) and all(isinstance(t, Mapping) for t in terminated)
    finished = None
    if status.get("phase") in TERMINAL_PHASES or (deletion is not None and all_stopped):
        ends = [
            t
            for s in terminated
            if isinstance(s, Mapping) and (t := seconds(s.get("finishedAt"))) is not None
        ]
        finished = max(ends) if ends else None
    labels = meta.get("labels") or {}
    name = str(meta.get("name", ""))
    return PodView(
        uid=str(meta.get("uid", "")),
        namespace=str(meta.get("namespace", "")),
        name=name,
        pod_id=str(labels.get(POD_ID_LABEL) or name),
        gpus=sum(gpu_containers.values()),
        started=min(starts) if starts else None,
        finished=finished,
        deletion=deletion,
    )
