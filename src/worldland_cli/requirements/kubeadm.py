"""The host is a node of the hub's Kubernetes cluster (the seed's ``kubeadm join`` step).

Met when /etc/kubernetes/kubelet.conf exists and names the cluster's API server: kubeadm's
TLS bootstrap writes it only once the control plane has accepted the node. Join meets it
with ``kubeadm join --config`` and a JoinConfiguration rendered from the hub's parameters
(:mod:`worldland_cli.join.kubeadm`), with node labels for the GPU model and count so the
scheduler can place pods by GPU.
"""

from __future__ import annotations

import re
from collections import Counter
from typing import Any

from worldland_cli.host import Host
from worldland_cli.join.actions import Action, Manual
from worldland_cli.requirements.base import Finding, JoinSettings, Requirement
from worldland_cli.requirements.kube import KUBE_DOC, KUBELET_CONF

JOIN_REMEDY = "sudo worldland join --yes --only kube.joined   # kubeadm join, the hub's parameters"
REJOIN_REMEDY = "sudo kubeadm reset -f && sudo worldland join --yes --only kube.joined"
LABEL_PREFIX = "worldland.io"
_LABEL_VALUE_BAD = re.compile(r"[^A-Za-z0-9_.-]+")


def label_value(text: str) -> str:
    """A Kubernetes label value: at most 63 of [A-Za-z0-9_.-], alphanumeric at both ends.

    "Tesla T4" becomes "Tesla-T4", as NVIDIA's GPU feature discovery spells its product
    label; kubelet refuses to start with an invalid label.
    """
    value = _LABEL_VALUE_BAD.sub("-", text.strip())[:63]
    return value.strip("-_.")


def gpu_labels(models: list[str]) -> tuple[str, ...]:
    """``worldland.io/gpu-model`` (the most common model) and ``worldland.io/gpu-count``."""
    model = Counter(models).most_common(1)[0][0]
    return (
        f"{LABEL_PREFIX}/gpu-model={label_value(model)}",
        f"{LABEL_PREFIX}/gpu-count={len(models)}",
    )


def api_server(kubeconfig: Any) -> str | None:
    """The server of the current context's cluster (else of the only cluster), or None."""
    if not isinstance(kubeconfig, dict):
        return None
    clusters = {
        c.get("name"): c.get("cluster") or {}
        for c in kubeconfig.get("clusters") or []
        if isinstance(c, dict)
    }
    contexts = {
        c.get("name"): c.get("context") or {}
        for c in kubeconfig.get("contexts") or []
        if isinstance(c, dict)
    }
    current = contexts.get(kubeconfig.get("current-context"), {})
    cluster = clusters.get(current.get("cluster")) if isinstance(current, dict) else None
    if cluster is None and len(clusters) == 1:
        cluster = next(iter(clusters.values()))
    server = cluster.get("server") if isinstance(cluster, dict) else None
    return str(server) if server else None


class Joined(Requirement):
    id = "kube.joined"
    title = "joined to the hub's Kubernetes cluster (kubelet.conf)"

    def __init__(self, *, joining: bool = False) -> None:
        """``joining``: not joined yet is join's to fix (a failure), not doctor's skip."""
        self.joining = joining

    def check(self, host: Host) -> Finding:
        import yaml

        text = host.read_text(KUBELET_CONF)
        if text is None:
            if not self.joining:
                return self.skip(f"not joined yet: no {KUBELET_CONF} (worldland join runs kubeadm)")
            return self.fail(f"not joined: no {KUBELET_CONF}", JOIN_REMEDY, KUBE_DOC)
        try:
            server = api_server(yaml.safe_load(text))
        except yaml.YAMLError:
            server = None
        if server is None:
            return self.fail(
                f"{KUBELET_CONF} names no API server (not a kubeconfig?)", REJOIN_REMEDY, KUBE_DOC
            )
        return self.ok(f"{KUBELET_CONF} names the API server {server}", api_server=server)

    def plan(self, host: Host, finding: Finding, settings: JoinSettings) -> list[Action]:
        from worldland_cli import config
        from worldland_cli.auth.node import RegisterError, detect_gpus
        from worldland_cli.join.kubeadm import KubeadmJoin, WriteJoinConfig

        if host.exists(KUBELET_CONF):  # there, but broken: kubeadm's preflight would refuse
            return [Manual(finding.remedy or REJOIN_REMEDY, command=True)]
        cfg = config.load()
        name = host.hostname().lower()  # what kubeadm registers by default
        try:
            gpus = detect_gpus(host, name, cfg.get("gpu_type"), cfg.get_int("memory_gb"))
        except RegisterError as e:
            return [Manual(f"{e.message}: {e.hint}")]
        return [
            WriteJoinConfig(
                hub=settings.hub,
                node_name=name,
                labels=gpu_labels([g.name for g in gpus]),
                hub_ca=settings.hub_ca,
                private_key_file=settings.private_key_file,
                siwe_domain=settings.siwe_domain,
            ),
            KubeadmJoin(),
        ]
