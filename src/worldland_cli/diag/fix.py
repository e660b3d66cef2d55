"""`diag fix cni`: the seed's remedy for ``cni0 already has an IP address``, step by step.

When a node re-joins with a different pod CIDR, the old ``cni0`` bridge keeps its old
address and the bridge plugin refuses to reuse it, so every new pod sticks in
ContainerCreating.  The cure is to delete the bridge and the stale CNI configuration and let
containerd and kubelet recreate both.  Each step is reported as it runs so a person watching
knows exactly what was changed; a missing bridge is not an error (the fix is idempotent).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass

from worldland_cli.host import Host

CNI_CONF_DIR = "/etc/cni/net.d"


@dataclass(frozen=True)
class StepResult:
    step: str
    ok: bool
    detail: str

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


def cni_fix_plan(netns: str | None = None) -> list[str]:
    """The steps in the words a person would type, for the confirmation prompt."""
    ip = "ip -n " + netns if netns else "ip"
    return [
        f"{ip} link delete cni0",
        f"rm -rf {CNI_CONF_DIR}/*",
        "systemctl restart containerd kubelet",
    ]


def apply_cni_fix(
    host: Host,
    *,
    netns: str | None = None,
    timeout: float = 30.0,
    on_step: Callable[[StepResult], None] = lambda _r: None,
) -> list[StepResult]:
    """Run every step even if one fails, so the report says what state the host is left in.

    ``netns`` runs the ip step inside a network namespace (how tests exercise the real
    ``ip`` without touching the machine's own links).
    """
    plan = cni_fix_plan(netns)
    results: list[StepResult] = []

    def record(r: StepResult) -> None:
        results.append(r)
        on_step(r)

    ip = ["ip", "-n", netns] if netns else ["ip"]
    res = host.run([*ip, "link", "delete", "cni0"], timeout=timeout)
    if res.ok:
        record(StepResult(plan[0], True, "cni0 deleted"))
    elif "Cannot find device" in res.stderr or "does not exist" in res.stderr:
        record(StepResult(plan[0], True, "cni0 was already absent"))
    else:
        record(StepResult(plan[0], False, res.describe_failure()))

    removed, errors = [], []
    for name in host.listdir(CNI_CONF_DIR):
        path = f"{CNI_CONF_DIR}/{name}"
        if host.is_dir(path):
            rm = host.run(["rm", "-rf", "--", str(host.path(path))], timeout=timeout)
            if not rm.ok:
                errors.append(rm.describe_failure())
                continue
        else:
            try:
                host.remove(path)
            except OSError as e:
                errors.append(f"{path}: {e.strerror}")
                continue
        removed.append(name)
    detail = f"removed {', '.join(removed)}" if removed else "nothing to remove"
    record(StepResult(plan[1], not errors, "; ".join([detail, *errors])))

    res = host.run(["systemctl", "restart", "containerd", "kubelet"], timeout=timeout)
    record(StepResult(plan[2], res.ok, "restarted" if res.ok else res.describe_failure()))
    return results
