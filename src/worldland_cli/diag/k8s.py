"""`diag k8s`: why pods do not land on, or do not start on, this node.

Two sources, because each sees what the other cannot: the kubelet's own journal (it keeps
logging while the node is NotReady or the API is unreachable) and the API server as the
kubelet sees it, through the kubelet's own kubeconfig (node conditions, allocatable
``nvidia.com/gpu``, the device plugin pod and its logs, events).  The seed's two classic
failures are recognised by their words: ``cni0 already has an IP address`` (pods stuck in
ContainerCreating) and ``Insufficient nvidia.com/gpu`` (pods Pending).
"""

from __future__ import annotations

import re
import time
from typing import Any

from worldland_cli.diag.base import DiagReport, Finding, bounded, fail, ok, skip, warn
from worldland_cli.host import Host
from worldland_cli.requirements.kube import kubelet_unit

KUBELET_CONF = "/etc/kubernetes/kubelet.conf"
GPU_RESOURCE = "nvidia.com/gpu"
# The NVIDIA device plugin DaemonSet's own label, as the seed's `kubectl delete pod -l` uses it.
PLUGIN_NAMESPACE = "kube-system"
PLUGIN_SELECTOR = "name=nvidia-device-plugin-ds"
# Journal lines quote it as \"cni0\", events as "cni0".
CNI_RE = re.compile(r"cni0[\\\"']* already has an IP address")
INSUFFICIENT_GPU_RE = re.compile(r"Insufficient nvidia\.com/gpu")
KLOG_ERROR_RE = re.compile(r"(?:^|\s)E\d{4} \d\d:\d\d:\d\d|level=error|\berror\b", re.IGNORECASE)
CNI_REMEDY = (
    "sudo ip link delete cni0; sudo rm -rf /etc/cni/net.d/*; "
    "sudo systemctl restart containerd kubelet   # or: worldland diag fix cni"
)
GPU_REMEDY = (
    "nvidia-ctk --version && "
    "sudo nvidia-ctk runtime configure --runtime=containerd --set-as-default && "
    "sudo systemctl restart containerd && "
    "kubectl delete pod -n kube-system -l name=nvidia-device-plugin-ds"
)
KUBELET_REMEDY = "sudo systemctl restart kubelet && journalctl -u kubelet -n 50 --no-pager"
# What doctor prints for the same fact, in the order to run it.
INSTALL_REMEDY = "worldland doctor --only kube   # the install, in order (or: sudo worldland join)"
JOURNAL_LINES = 400
# journalctl's own lines, not the unit's: "-- No entries --", "-- Boot 1a2b... --",
# "-- Logs begin at ... --", "-- Reboot --".
_JOURNAL_META = re.compile(r"^-- .* --$")


def journal(host: Host, unit: str, timeout: float, lines: int = JOURNAL_LINES) -> list[str]:
    """The unit's last ``lines`` journal lines; journalctl's markers are not among them, so
    an empty journal is empty ("-- No entries --" is not a line the kubelet wrote)."""
    res = host.run(
        ["journalctl", "-u", unit, "--no-pager", "-o", "short-iso", "-n", str(lines)],
        timeout=timeout,
    )
    if not res.ok:
        return []
    return [line for line in res.stdout.splitlines() if not _JOURNAL_META.match(line.strip())]


def kubelet_state_check(host: Host, timeout: float) -> Finding:
    """Whether kubelet runs; first whether it is there at all, by doctor's own probe."""
    unit = kubelet_unit(host, timeout)
    if unit.state == "no-systemd":
        return skip("k8s.kubelet", f"{unit.observed}: nothing runs kubelet as a service")
    if unit.state == "not-installed":
        return fail("k8s.kubelet", unit.observed, INSTALL_REMEDY, installed=False)
    res = host.run(
        [
            "systemctl",
            "show",
            "kubelet",
            "--no-pager",
            "--property=ActiveState,SubState,NRestarts,Result",
        ],
        timeout=timeout,
    )
    if res.not_found:
        return skip("k8s.kubelet", "systemctl not found (not a systemd host)")
    if not res.ok:
        return fail("k8s.kubelet", res.describe_failure(), KUBELET_REMEDY, timed_out=res.timed_out)
    props = dict(ln.split("=", 1) for ln in res.stdout.splitlines() if "=" in ln)
    active, sub = props.get("ActiveState", "?"), props.get("SubState", "?")
    restarts = int(props.get("NRestarts", "0") or 0)
    seen = f"kubelet {active} ({sub}), {restarts} restart(s)"
    if active != "active":
        return fail("k8s.kubelet", seen, KUBELET_REMEDY, **props)
    if restarts > 3:
        return warn("k8s.kubelet", f"{seen}: it keeps crashing", KUBELET_REMEDY, **props)
    return ok("k8s.kubelet", seen, **props)


def _api(host: Host) -> Any:
    """A CoreV1Api authenticated exactly as the kubelet is, from its own kubeconfig.

    kubelet.conf names its client certificate by an absolute path of the inspected system
    (/var/lib/kubelet/pki/...); the files are read through the host and inlined, so under
    ``--root`` the client never opens the live machine's files instead.
    """
    import yaml
    from kubernetes import client, config

    from worldland_cli.requirements.kube import inline_files

    raw = yaml.safe_load(host.read_text(KUBELET_CONF) or "")
    if not isinstance(raw, dict):
        raise ValueError(f"{KUBELET_CONF} is not a kubeconfig mapping")
    load: Any = config.new_client_from_config_dict  # the kubernetes package ships no type hints
    return client.CoreV1Api(load(config_dict=inline_files(host, raw)))


def _api_error(check_id: str, e: Exception, what: str) -> Finding:
    status = getattr(e, "status", None)
    if status in (401, 403):
        return skip(check_id, f"the kubelet's credentials may not {what} ({status})")
    reason = getattr(e, "reason", None) or str(e).splitlines()[0]
    return fail(
        check_id,
        f"API server error while trying to {what}: {reason}",
        "journalctl -u kubelet -n 50 --no-pager   # can the node reach the API server?",
    )


def probe_k8s(host: Host, timeout: float = 5.0, node_name: str | None = None) -> DiagReport:
    start = time.monotonic()
    report = DiagReport("k8s")
    node = (node_name or host.hostname()).lower()
    report.data["node"] = node

    state = report.add(
        bounded("k8s.kubelet", lambda: kubelet_state_check(host, timeout), timeout + 1)
    )
    logs: dict[str, list[str]] = {}

    def kubelet_log() -> Finding:
        for unit in ("kubelet", "containerd"):
            logs[unit] = journal(host, unit, timeout)
        errors = [ln for ln in logs["kubelet"] if KLOG_ERROR_RE.search(ln)]
        report.data["kubelet_errors"] = errors[-30:]
        if state.details.get("installed") is False:
            return skip("k8s.kubelet-log", "kubelet is not installed: no journal to read")
        if not logs["kubelet"]:
            return skip(
                "k8s.kubelet-log", "no kubelet journal entries (journalctl absent or empty)"
            )
        if errors:
            return warn(
                "k8s.kubelet-log",
                f"{len(errors)} error line(s) in the last "
                f"{len(logs['kubelet'])}; last: {errors[-1][-200:]}",
                "journalctl -u kubelet -n 200 --no-pager",
                errors=errors[-30:],
            )
        return ok("k8s.kubelet-log", f"no errors in the last {len(logs['kubelet'])} lines")

    report.add(bounded("k8s.kubelet-log", kubelet_log, 2 * timeout + 1))

    events: list[dict[str, str]] = []
    api_checks = _api_checks(host, node, timeout, report, events)
    report.checks.extend(api_checks)

    def cni() -> Finding:
        hits = [ln for unit in logs.values() for ln in unit if CNI_RE.search(ln)]
        hits += [e["message"] for e in events if CNI_RE.search(e["message"])]
        if hits:
            return fail(
                "k8s.cni",
                f"cni0 has a stale address ({len(hits)} occurrence(s)): pods "
                f"stay in ContainerCreating; last: {hits[-1][-200:]}",
                CNI_REMEDY,
                occurrences=hits[-10:],
            )
        return ok("k8s.cni", "no 'cni0 already has an IP address' in logs or events")

    report.add(bounded("k8s.cni", cni, timeout))
    report.duration_ms = int((time.monotonic() - start) * 1000)
    return report


def _api_checks(
    host: Host, node: str, timeout: float, report: DiagReport, events: list[dict[str, str]]
) -> list[Finding]:
    """Node conditions, allocatable GPUs, the device plugin, and events, via the API server."""
    if not host.exists(KUBELET_CONF):
        return [skip("k8s.api", f"{KUBELET_CONF} not found: this node has not joined")]
    box: dict[str, Any] = {}

    def connect() -> Finding:
        box["api"] = _api(host)
        return ok("k8s.api", f"kubelet credentials loaded from {KUBELET_CONF}")

    out = [bounded("k8s.api", connect, timeout)]
    if "api" not in box:
        return out
    api = box["api"]

    def node_check() -> Finding:
        try:
            obj = api.read_node(node, _request_timeout=timeout)
        except Exception as e:
            return _api_error("k8s.node", e, f"read node {node}")
        box["node"] = obj
        conds = {c.type: c for c in (obj.status.conditions or [])}
        summary = {t: c.status for t, c in conds.items()}
        ready = conds.get("Ready")
        if ready is None or ready.status != "True":
            why = f"{ready.reason}: {ready.message}" if ready else "no Ready condition"
            return fail(
                "k8s.node", f"node {node} is NotReady ({why})", KUBELET_REMEDY, conditions=summary
            )
        pressure = [t for t, s in summary.items() if t != "Ready" and s == "True"]
        if pressure:
            return warn(
                "k8s.node",
                f"node {node} Ready but under {', '.join(pressure)}",
                "df -h; free -m",
                conditions=summary,
            )
        return ok("k8s.node", f"node {node} Ready", conditions=summary)

    out.append(bounded("k8s.node", node_check, timeout + 1))

    def gpu_check() -> Finding:
        obj = box.get("node")
        if obj is None:
            return skip("k8s.gpu-allocatable", "node not readable")
        alloc = (obj.status.allocatable or {}).get(GPU_RESOURCE)
        cap = (obj.status.capacity or {}).get(GPU_RESOURCE)
        if not alloc or str(alloc) == "0":
            return fail(
                "k8s.gpu-allocatable",
                f"node advertises no {GPU_RESOURCE} "
                f"(allocatable {alloc or 'absent'}): GPU pods stay Pending with "
                f"'Insufficient {GPU_RESOURCE}'",
                GPU_REMEDY,
            )
        return ok("k8s.gpu-allocatable", f"{GPU_RESOURCE}: {alloc} allocatable of {cap}")

    out.append(gpu_check())

    def plugin_check() -> Finding:
        try:
            pods = api.list_namespaced_pod(
                PLUGIN_NAMESPACE, label_selector=PLUGIN_SELECTOR, _request_timeout=timeout
            ).items
        except Exception as e:
            return _api_error("k8s.device-plugin", e, "list the device plugin pods")
        plugins = [p for p in pods if (p.spec.node_name or "").lower() == node]
        if not plugins:
            return fail(
                "k8s.device-plugin",
                f"no NVIDIA device plugin pod on {node} ({len(pods)} on other nodes)",
                "kubectl -n kube-system get ds -l name=nvidia-device-plugin-ds   "
                "# is the DaemonSet installed, and does it tolerate this node?",
            )
        plugin_logs: dict[str, str] = {}
        for p in plugins:
            try:
                plugin_logs[p.metadata.name] = api.read_namespaced_pod_log(
                    p.metadata.name, p.metadata.namespace, tail_lines=50, _request_timeout=timeout
                )
            except Exception as e:
                plugin_logs[p.metadata.name] = f"(logs not readable: {getattr(e, 'status', e)})"
        report.data["device_plugin_logs"] = plugin_logs
        states = {p.metadata.name: p.status.phase for p in plugins}
        bad = {n: s for n, s in states.items() if s != "Running"}
        if bad:
            return fail(
                "k8s.device-plugin", f"device plugin not running: {bad}", GPU_REMEDY, pods=states
            )
        return ok("k8s.device-plugin", f"running: {', '.join(states)}", pods=states)

    out.append(bounded("k8s.device-plugin", plugin_check, 2 * timeout + 1))

    def events_check() -> Finding:
        try:
            items = api.list_event_for_all_namespaces(_request_timeout=timeout).items
        except Exception as e:
            return _api_error("k8s.events", e, "list events")
        for ev in items:
            obj = ev.involved_object
            events.append(
                {
                    "object": f"{obj.kind}/{obj.namespace}/{obj.name}" if obj else "",
                    "reason": ev.reason or "",
                    "message": ev.message or "",
                }
            )
        report.data["events"] = events[-100:]
        starved = [e for e in events if INSUFFICIENT_GPU_RE.search(e["message"])]
        if starved:
            return warn(
                "k8s.events",
                f"{len(starved)} pod(s) unschedulable: Insufficient "
                f"{GPU_RESOURCE} (last: {starved[-1]['object']})",
                GPU_REMEDY,
            )
        return ok("k8s.events", f"{len(items)} event(s), none about missing GPUs")

    out.append(bounded("k8s.events", events_check, timeout + 1))
    return out
