"""kubeadm join from a JoinConfiguration file with the hub's parameters; reset undoes it.

The bootstrap token is a credential for the cluster: it goes into one file, mode 0600, that
``kubeadm join --config`` reads, never onto a command line (where ``ps`` and the step's log
would show it), and it is never an action's field, so neither the journal nor the plan
holds it (the plan's diff shows a placeholder). The file is rendered when the step runs,
from ``POST /v1/nodes/{id}/join``: a hub that mints tokens is asked only then.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

from worldland_cli.host import CommandResult, Host
from worldland_cli.join.actions import LONG, Action, ActionFailed, Output, file_diff
from worldland_cli.join.hubcall import HubCaller, hub_step, registered_node, session_file

if TYPE_CHECKING:
    from worldland_cli.hubclient import JoinParams

JOIN_CONFIG = "/etc/worldland/kubeadm-join.yaml"
CRI_SOCKET = "unix:///run/containerd/containerd.sock"
KUBELET_CONF = "/etc/kubernetes/kubelet.conf"
# What `kubeadm join` (and the kubelet's TLS bootstrap it waits for) writes on a worker.
# bootstrap-kubelet.conf is removed again at the end; it stays after a join cut short.
JOIN_WRITES = (
    KUBELET_CONF,
    "/etc/kubernetes/bootstrap-kubelet.conf",
    "/etc/kubernetes/pki/ca.crt",
    "/var/lib/kubelet/config.yaml",
    "/var/lib/kubelet/kubeadm-flags.env",
    "/var/lib/kubelet/pki",
)
# kubeadm reset's own closing words, as one line for the step's log.
RESET_LEAVES = (
    "kubeadm reset leaves, by design: the CNI configuration in /etc/cni/net.d, iptables and "
    "IPVS rules, and kubeconfig files such as $HOME/.kube/config. If this host is done with "
    "Kubernetes: sudo rm -rf /etc/cni/net.d && sudo iptables -F && sudo iptables -t nat -F "
    "&& sudo iptables -t mangle -F && sudo iptables -X && sudo ipvsadm --clear"
)
TOKEN_RE = re.compile(r"^[a-z0-9]{6}\.[a-z0-9]{16}$")
PIN_RE = re.compile(r"^sha256:[0-9a-f]{64}$")
ENDPOINT_RE = re.compile(r"^(?:[A-Za-z0-9.-]+|\[[0-9A-Fa-f:.]+\]):\d{1,5}$")
_TOKEN_LINE = re.compile(r"(?m)^(\s*token:\s*).*$")
HIDDEN = "(from the hub when join runs; never shown)"


def render_join_config(node_id: str, node_name: str, labels: tuple[str, ...], p: JoinParams) -> str:
    """The JoinConfiguration, refusing join parameters that are not what they claim to be."""
    from worldland_cli.templating import render

    if not ENDPOINT_RE.match(p.api_server):
        raise ActionFailed(f"the hub's API server endpoint {p.api_server!r} is not HOST:PORT")
    if not TOKEN_RE.match(p.token):
        raise ActionFailed("the hub's bootstrap token is not [a-z0-9]{6}.[a-z0-9]{16}")
    if not p.ca_cert_hashes or not all(PIN_RE.match(h) for h in p.ca_cert_hashes):
        raise ActionFailed("the hub sent no CA pin, or one that is not sha256:<64 hex>")
    return render(
        "kubeadm-join.yaml",
        node_id=node_id,
        path=JOIN_CONFIG,
        api_server=p.api_server,
        token=p.token,
        ca_cert_hashes=list(p.ca_cert_hashes),
        node_name=node_name,
        cri_socket=CRI_SOCKET,
        labels=list(labels),
    )


@dataclass(frozen=True)
class WriteJoinConfig(HubCaller, Action):
    """Ask the hub for the node's join parameters; write the JoinConfiguration, mode 0600."""

    kind: ClassVar[str] = "kubeadm-join-config"
    join_only: ClassVar[bool] = True
    hub: str
    node_name: str
    labels: tuple[str, ...] = ()
    path: str = JOIN_CONFIG
    hub_ca: str | None = None
    private_key_file: str | None = None
    siwe_domain: str | None = None

    def describe(self) -> str:
        return f"write {self.path} (mode 600): kubeadm's JoinConfiguration from the hub"

    def as_shell(self) -> str:
        return (
            f"sudo worldland join --only kube.joined {self.hub_flags()}   # {self.path} "
            "(mode 600) from "
            "POST /v1/nodes/{id}/join"
        )

    def diff(self, host: Host) -> str:
        from worldland_cli.templating import render

        old = _TOKEN_LINE.sub(r"\1(hidden)", host.read_text(self.path) or "")
        new = render(
            "kubeadm-join.yaml",
            node_id="(node.json's)",
            path=self.path,
            api_server="(from the hub)",
            token=HIDDEN,
            ca_cert_hashes=["(from the hub)"],
            node_name=self.node_name,
            cri_socket=CRI_SOCKET,
            labels=list(self.labels),
        )
        return file_diff(self.path, old, new)

    def touches(self) -> tuple[str, ...]:
        return (self.path, session_file())

    def apply(self, host: Host, out: Output) -> None:
        node_id = registered_node(host)
        asking = f"asking the hub at {self.hub} for the kubeadm join parameters"
        with hub_step(asking), self.hub_client(host) as client:
            params = client.join(node_id)
        text = render_join_config(node_id, self.node_name, self.labels, params)
        if host.read_text(self.path) != text:
            host.write_atomic(self.path, text, 0o600)
        host.chmod(self.path, 0o600)
        out.note(
            f"join parameters for node {node_id}: API server {params.api_server}, "
            f"{len(params.ca_cert_hashes)} CA pin(s); {self.path} written, mode 600"
        )


def _kubeadm_failure(result: CommandResult) -> str:
    """kubeadm's own error line; its last line only says how to see a stack trace."""
    lines = [line.strip() for line in (result.stderr + result.stdout).splitlines()]
    for start in ("[ERROR", "error execution phase"):  # a preflight error names the check
        found = [line for line in lines if line.startswith(start)]
        if found:
            return "; ".join(found)
    useful = [line for line in lines if line and not line.startswith("To see the stack trace")]
    return useful[-1] if useful else result.describe_failure()


def _kubeadm(host: Host, out: Output, argv: tuple[str, ...]) -> None:
    result = host.run(argv, timeout=LONG)
    out.command(result)
    if not result.ok:
        why = result.describe_failure() if result.returncode is None else _kubeadm_failure(result)
        raise ActionFailed(f"`{' '.join(argv)}` failed: {why}")


@dataclass(frozen=True)
class KubeadmJoin(Action):
    """``kubeadm join --config FILE``; reset runs ``kubeadm reset -f``."""

    kind: ClassVar[str] = "kubeadm-join"
    config: str = JOIN_CONFIG

    def describe(self) -> str:
        return f"join the cluster: kubeadm join --config {self.config}"

    def as_shell(self) -> str:
        return f"sudo kubeadm join --config {self.config}"

    def touches(self) -> tuple[str, ...]:
        return JOIN_WRITES

    def apply(self, host: Host, out: Output) -> None:
        if host.exists(KUBELET_CONF):  # a join cut short after kubeadm finished
            out.note(f"{KUBELET_CONF} exists: this host has joined already")
            return
        left = [p for p in JOIN_WRITES if host.exists(p)]
        if left:
            # kubeadm's preflight refuses these; the journal holds copies of them.
            out.note(f"a join cut short left {', '.join(left)}: kubeadm reset -f first")
            _kubeadm(host, out, ("kubeadm", "reset", "-f"))
        _kubeadm(host, out, ("kubeadm", "join", "--config", self.config))

    def undo(self, host: Host, before: dict[str, Any], purge: bool, out: Output) -> None:
        _kubeadm(host, out, ("kubeadm", "reset", "-f"))
        out.note(RESET_LEAVES)
