"""Kubernetes node parts: kubeadm/kubelet/kubectl, kubelet enabled, GPU seen by the scheduler.

``kube.gpu-allocatable`` is the end-to-end proof of the whole chain (driver -> toolkit ->
containerd default runtime -> device plugin): when it fails, pods stay Pending with
"Insufficient nvidia.com/gpu". The kubernetes client is imported only inside that check
and only once the host has joined, because importing it costs most of doctor's budget.
"""

from __future__ import annotations

import base64
import json
import re
from dataclasses import dataclass
from typing import Any, ClassVar

from worldland_cli.host import Host
from worldland_cli.join.actions import (
    Action,
    EnableUnit,
    InstallPackages,
    Manual,
    RunCommand,
    dpkg_installed,
)
from worldland_cli.requirements.apt_repo import AptRepository, repository_actions
from worldland_cli.requirements.base import Finding, JoinSettings, Requirement

KUBE_DOC = "provider-guide#kubernetes"
GPU_DOC = "provider-guide#gpu-in-kubernetes"
KUBELET_CONF = "/etc/kubernetes/kubelet.conf"
GPU_RESOURCE = "nvidia.com/gpu"
K8S_MINOR = "1.29"
PACKAGES = ("kubelet", "kubeadm", "kubectl")
KEYRING = "/etc/apt/keyrings/kubernetes-apt-keyring.gpg"
LIST = "/etc/apt/sources.list.d/kubernetes.list"
MASK = "/etc/systemd/system/kubelet.service"  # a masked unit: a link to /dev/null here


def repository_url(minor: str) -> str:
    """pkgs.k8s.io has one repository per Kubernetes minor ("1.29")."""
    return f"https://pkgs.k8s.io/core:/stable:/v{minor}/deb/"


INSTALL_REMEDY = (
    f"curl -fsSL {repository_url(K8S_MINOR)}Release.key | "
    f"sudo gpg --dearmor -o {KEYRING} && "
    f"echo 'deb [signed-by={KEYRING}] {repository_url(K8S_MINOR)} /' | "
    f"sudo tee {LIST} && "
    "sudo apt-get update && sudo apt-get install -y kubelet kubeadm kubectl && "
    "sudo apt-mark hold kubelet kubeadm kubectl"
)
ALIGN_REMEDY = (
    "sudo apt-mark unhold kubelet kubeadm kubectl && sudo apt-get update && "
    "sudo apt-get install -y kubelet kubeadm kubectl && sudo apt-mark hold kubelet kubeadm kubectl"
)
# The seed README's "Insufficient nvidia.com/gpu" steps, in order.
GPU_REMEDY = (
    "nvidia-ctk --version && "
    "sudo nvidia-ctk runtime configure --runtime=containerd --set-as-default && "
    "sudo systemctl restart containerd && "
    "kubectl delete pod -n kube-system -l name=nvidia-device-plugin-ds && "
    "kubectl describe node $(hostname) | grep nvidia.com/gpu"
)
REJOIN_REMEDY = "sudo worldland join   # rewrites kubelet.conf and the certificates it names"
_SEMVER = re.compile(r"v(\d+)\.(\d+)\.(\d+)\S*")


def _version_of(text: str) -> tuple[str, int, int] | None:
    match = _SEMVER.search(text)
    if match is None:
        return None
    return match.group(0), int(match.group(1)), int(match.group(2))


def _kubectl_version(stdout: str) -> str:
    """``kubectl version --client -o json`` -> clientVersion.gitVersion ("" when absent)."""
    try:
        doc = json.loads(stdout)
    except ValueError:
        return stdout
    client = doc.get("clientVersion", {}) if isinstance(doc, dict) else {}
    return str(client.get("gitVersion", "")) if isinstance(client, dict) else ""


class Binaries(Requirement):
    id = "kube.binaries"
    title = "kubeadm, kubelet and kubectl installed, versions consistent"

    # Each tool's version command; kubectl's JSON is the only stable form across releases.
    COMMANDS: ClassVar[dict[str, tuple[str, ...]]] = {
        "kubeadm": ("kubeadm", "version", "-o", "short"),
        "kubelet": ("kubelet", "--version"),
        "kubectl": ("kubectl", "version", "--client", "-o", "json"),
    }

    def check(self, host: Host) -> Finding:
        versions: dict[str, tuple[str, int, int]] = {}
        problems: list[str] = []
        for tool, argv in self.COMMANDS.items():
            res = host.run(argv)
            if not res.ok:
                problems.append(res.describe_failure())
                continue
            text = _kubectl_version(res.stdout) if tool == "kubectl" else res.stdout
            parsed = _version_of(text)
            if parsed is None:
                problems.append(f"{tool}: no version in {res.stdout.strip()[:80]!r}")
            else:
                versions[tool] = parsed
        details = {tool: v[0] for tool, v in versions.items()}
        if problems:
            return self.fail("; ".join(problems), INSTALL_REMEDY, KUBE_DOC, versions=details)
        seen = ", ".join(f"{tool} {v[0]}" for tool, v in versions.items())
        kubeadm, kubelet, kubectl = (versions[t][1:] for t in ("kubeadm", "kubelet", "kubectl"))
        skew = _kubelet_skew(kubeadm, kubelet)
        if skew is not None:
            return self.fail(f"{seen}: {skew}", ALIGN_REMEDY, KUBE_DOC, versions=details)
        if kubelet != kubeadm:
            return self.warn(
                f"{seen}: kubelet is older than kubeadm, within the supported skew; "
                "finish the upgrade so both are on one minor",
                ALIGN_REMEDY,
                versions=details,
            )
        # kubectl is supported within one minor version of the control plane (kubeadm's).
        if kubectl[0] != kubeadm[0] or abs(kubectl[1] - kubeadm[1]) > 1:
            return self.warn(
                f"{seen}: kubectl is more than one minor version from kubeadm",
                ALIGN_REMEDY,
                versions=details,
            )
        return self.ok(seen, versions=details)

    def plan(self, host: Host, finding: Finding, settings: JoinSettings) -> list[Action]:
        """pkgs.k8s.io for ``--kube-version``, then the three installed and held. Installed
        already but not answering, or skewed: which version to move to is a person's call."""
        from worldland_cli.templating import render

        if all(dpkg_installed(host, p) for p in PACKAGES):
            return [Manual(finding.remedy or ALIGN_REMEDY, command=True)]
        url = repository_url(settings.kube_version)
        text = render("kubernetes.list", minor=settings.kube_version, keyring=KEYRING, url=url)
        repository = AptRepository(f"{url}Release.key", KEYRING, LIST, text)
        return [
            *repository_actions(host, repository),
            InstallPackages(PACKAGES, hold=True, update=True),
        ]


def _kubelet_skew(kubeadm: tuple[int, int], kubelet: tuple[int, int]) -> str | None:
    """Why this kubelet cannot serve under this kubeadm, or None when the skew is supported.

    Kubernetes' version skew policy (which kubeadm follows): kubelet must not be newer than
    the control plane and may be up to three minor versions older (two for kubelet < 1.25).
    """
    if kubelet[0] != kubeadm[0]:
        return "kubeadm and kubelet major versions differ"
    behind = kubeadm[1] - kubelet[1]
    if behind < 0:
        return "kubelet is newer than kubeadm (a kubelet must not be newer than its control plane)"
    allowed = 3 if kubelet[1] >= 25 else 2
    if behind > allowed:
        return f"kubelet is {behind} minor versions older than kubeadm (at most {allowed})"
    return None


@dataclass(frozen=True)
class KubeletUnit:
    """What systemd says about kubelet.service: the one probe doctor and ``diag k8s`` share,
    so they never disagree about whether kubelet is installed (diag once said "restart
    kubelet" where doctor said it was not installed).

    ``state`` is systemctl's (``enabled``, ``disabled``, ``masked``, ...), or one of
    ``not-installed`` (no unit file), ``no-systemd`` (no systemctl, or no systemd running:
    a container), ``timed-out``, ``unknown``.
    """

    state: str
    observed: str

    @property
    def installed(self) -> bool:
        return self.state not in ("not-installed", "no-systemd", "timed-out", "unknown")

    @property
    def enabled(self) -> bool:
        return self.state in ("enabled", "enabled-runtime", "static", "alias")


# systemctl's words where no systemd runs (a container, a chroot): nothing can start a unit.
_NO_SYSTEMD = ("Failed to connect to bus", "System has not been booted with systemd")


def kubelet_unit(host: Host, timeout: float | None = None) -> KubeletUnit:
    """``systemctl is-enabled kubelet``, read the way doctor and diag both report it."""
    res = host.run(["systemctl", "is-enabled", "kubelet"], timeout=timeout)
    state = res.stdout.strip()
    if res.not_found:
        return KubeletUnit("no-systemd", "systemctl not found: no systemd to start kubelet")
    if any(words in res.stderr for words in _NO_SYSTEMD):
        first = res.stderr.strip().splitlines()[0]
        return KubeletUnit("no-systemd", f"no systemd running here ({first})")
    if "No such file" in res.stderr or state == "not-found":
        return KubeletUnit("not-installed", "kubelet.service is not installed")
    if res.timed_out:
        return KubeletUnit("timed-out", res.describe_failure())
    if not state:
        return KubeletUnit("unknown", f"kubelet.service: {res.describe_failure()}")
    return KubeletUnit(state, f"kubelet.service is {state}")


class KubeletEnabled(Requirement):
    id = "kube.kubelet-enabled"
    title = "kubelet service enabled"

    def check(self, host: Host) -> Finding:
        unit = kubelet_unit(host)
        if unit.enabled:
            return self.ok(unit.observed)
        if unit.state == "no-systemd":
            return self.skip(f"{unit.observed}: nothing starts kubelet at boot")
        if unit.state == "not-installed":
            return self.fail(unit.observed, INSTALL_REMEDY, KUBE_DOC)
        if unit.state in ("timed-out", "unknown"):
            return self.fail(unit.observed, None, KUBE_DOC)
        if unit.state.startswith("masked"):
            # `systemctl enable` refuses a masked unit ("Unit file ... is masked").
            return self.fail(
                unit.observed,
                "sudo systemctl unmask kubelet && sudo systemctl enable kubelet",
                KUBE_DOC,
                masked=True,
            )
        return self.fail(unit.observed, "sudo systemctl enable kubelet", KUBE_DOC)

    def plan(self, host: Host, finding: Finding, settings: JoinSettings) -> list[Action]:
        """``systemctl enable kubelet`` (not --now: it restarts in a loop until kubeadm join);
        a masked unit is unmasked first, its /dev/null link journaled so reset masks it again.
        Planned also before kube.binaries has installed the unit (a dry run)."""
        unmask: list[Action] = []
        if finding.details.get("masked"):
            unmask.append(RunCommand(("systemctl", "unmask", "kubelet"), files=(MASK,)))
        return [*unmask, EnableUnit("kubelet", now=False)]


def inline_files(host: Host, kubeconfig: dict[str, Any]) -> dict[str, Any]:
    """Replace file references (client-certificate: /var/lib/kubelet/pki/...) by *-data.

    kubelet.conf points at PEM files; reading them through the host keeps ``--root``
    honest and keeps the kubernetes client from opening system paths itself.
    """
    pairs = {
        "clusters": ("cluster", ("certificate-authority",)),
        "users": ("user", ("client-certificate", "client-key")),
    }
    for section, (inner, keys) in pairs.items():
        for entry in kubeconfig.get(section) or []:
            body = entry.get(inner) if isinstance(entry, dict) else None
            if not isinstance(body, dict):
                continue
            for key in keys:
                path = body.get(key)
                if not isinstance(path, str):
                    continue
                data = host.read_bytes(path)
                if data is None:
                    raise FileNotFoundError(f"{path} (named by {KUBELET_CONF})")
                body[f"{key}-data"] = base64.b64encode(data).decode()
                del body[key]
    return kubeconfig


class GpuAllocatable(Requirement):
    id = "kube.gpu-allocatable"
    title = "Kubernetes sees nvidia.com/gpu on this node"

    def __init__(self, node_name: str | None = None) -> None:
        """``node_name`` defaults to the host name, which is what kubeadm registers."""
        self.node_name = node_name

    def check(self, host: Host) -> Finding:
        text = host.read_text(KUBELET_CONF)
        if text is None:
            return self.skip(f"not joined yet: no {KUBELET_CONF} (worldland join creates it)")
        import yaml
        from kubernetes import client, config
        from kubernetes.client.exceptions import ApiException

        node = (self.node_name or host.hostname()).lower()
        try:
            raw = yaml.safe_load(text)
            if not isinstance(raw, dict):
                raise ValueError("not a kubeconfig mapping")
            kubeconfig = inline_files(host, raw)
        except (ValueError, yaml.YAMLError, FileNotFoundError) as e:
            return self.fail(f"cannot use {KUBELET_CONF}: {e}", REJOIN_REMEDY, GPU_DOC)
        configuration = client.Configuration()
        config.load_kube_config_from_dict(  # type: ignore[no-untyped-call]
            kubeconfig, client_configuration=configuration
        )
        configuration.retries = 0
        api = client.CoreV1Api(client.ApiClient(configuration))
        try:
            obj = api.read_node(node, _request_timeout=host.default_timeout)
        except ApiException as e:
            if e.status == 404:
                return self.fail(
                    f"node {node!r} is not registered with the API server",
                    "sudo systemctl restart kubelet && journalctl -u kubelet -n 50",
                    GPU_DOC,
                )
            return self.fail(f"API server answered {e.status} {e.reason}", None, GPU_DOC)
        except Exception as e:  # urllib3 raises many types for an unreachable server
            return self.fail(
                f"API server {configuration.host} unreachable: {type(e).__name__}",
                "sudo systemctl status kubelet   # and check the VPN: sudo wg show",
                GPU_DOC,
            )
        allocatable = (obj.status.allocatable or {}) if obj.status else {}
        count = allocatable.get(GPU_RESOURCE, "0")
        if str(count).isdigit() and int(count) > 0:
            return self.ok(f"node {node}: {GPU_RESOURCE} allocatable = {count}", gpus=int(count))
        return self.fail(
            f"node {node}: {GPU_RESOURCE} allocatable = {count} "
            "(pods requesting a GPU stay Pending: Insufficient nvidia.com/gpu)",
            GPU_REMEDY,
            GPU_DOC,
        )
