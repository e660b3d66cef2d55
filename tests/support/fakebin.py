"""Fake executables for the tools that cannot run here (no GPU, no systemd, no kubeadm).

Each fake is a small /bin/sh script written into a directory the test owns and put on the
PATH of a ``Host`` (or a subprocess). It answers the exact argv the code under test sends
with what the real tool prints (formats copied from the real tools' output), and fails
loudly with exit 64 on anything else, so a changed command line breaks a test instead of
silently matching. Every call is appended to ``calls.log`` for assertions; a fake that
hangs records its pid so a test can prove the process was killed.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

NVIDIA_SMI_QUERY = "--query-gpu=index,name,memory.total,driver_version --format=csv,noheader"


def nvidia_smi_rows(gpus: tuple[tuple[str, int], ...], driver: str) -> str:
    """``nvidia-smi --query-gpu=... --format=csv,noheader``: "0, Tesla T4, 15360 MiB, 535.183.01"
    per GPU."""
    return "".join(f"{i}, {name}, {mib} MiB, {driver}\n" for i, (name, mib) in enumerate(gpus))


def nvidia_ctk_version(version: str) -> str:
    """``nvidia-ctk --version``."""
    return (
        f"NVIDIA Container Toolkit CLI version {version}\n"
        "commit: f202b80a9b9d0db00d9b1d73c0128c8962c55f4d\n"
    )


def kubectl_client_json(version: str) -> str:
    """``kubectl version --client -o json`` for ``version`` ("v1.29.3")."""
    major, minor = version.lstrip("v").split(".")[:2]
    doc = {
        "clientVersion": {
            "major": major,
            "minor": minor,
            "gitVersion": version,
            "gitCommit": "6813625b7cd706db5bc7388921be03071e1a492d",
            "gitTreeState": "clean",
            "buildDate": "2024-03-14T23:58:36Z",
            "goVersion": "go1.21.8",
            "compiler": "gc",
            "platform": "linux/amd64",
        },
        "kustomizeVersion": "v5.0.4-0.20230601165947-6ce0bf390ce3",
    }
    return json.dumps(doc, indent=2) + "\n"


@dataclass(frozen=True)
class Reply:
    """What a fake prints for one argv: stdout, stderr, exit status, or hang forever."""

    stdout: str = ""
    stderr: str = ""
    exit_code: int = 0
    hang: bool = False


class FakeBin:
    """A directory of fake tools; ``path`` goes first on the PATH under test."""

    def __init__(self, directory: Path) -> None:
        self.path = directory
        directory.mkdir(parents=True, exist_ok=True)
        self.log = directory / "calls.log"

    def add(self, name: str, replies: Mapping[str, Reply] | Reply) -> Path:
        """Install ``name``; ``replies`` maps the joined arguments ("is-active containerd")
        to a Reply, or is one Reply for any arguments."""
        table = {"*": replies} if isinstance(replies, Reply) else dict(replies)
        lines = [
            "#!/bin/sh",
            f"# fake {name} written by tests/support/fakebin.py",
            f'echo "{name} $*" >> {shlex.quote(str(self.log))}',
            'case "$*" in',
        ]
        for args, reply in table.items():
            pattern = "*" if args == "*" else shlex.quote(args)
            lines.append(f"  {pattern})")
            if reply.hang:
                pid_file = shlex.quote(str(self.path / f"{name}.pid"))
                lines.append(f"    echo $$ > {pid_file}")
                # Absolute: the PATH under test may hold nothing but fakes.
                sleep = shutil.which("sleep") or "/bin/sleep"
                lines.append(f"    exec {sleep} 3600")
            if reply.stdout:
                lines.append(f"    printf '%s' {shlex.quote(reply.stdout)}")
            if reply.stderr:
                lines.append(f"    printf '%s' {shlex.quote(reply.stderr)} >&2")
            lines.append(f"    exit {reply.exit_code};;")
        if "*" not in table:
            lines.append(f'  *) echo "fake {name}: unexpected arguments: $*" >&2; exit 64;;')
        lines.append("esac")
        exe = self.path / name
        exe.write_text("\n".join(lines) + "\n")
        exe.chmod(0o755)
        return exe

    def remove(self, name: str) -> None:
        (self.path / name).unlink(missing_ok=True)

    def calls(self) -> list[str]:
        return self.log.read_text().splitlines() if self.log.exists() else []

    def env_path(self, *extra: str) -> str:
        """A PATH with the fakes first, then ``extra`` directories (e.g. /usr/bin for wg)."""
        return os.pathsep.join([str(self.path), *extra])

    # --------------------------------------------------------------- realistic presets

    def nvidia_smi(
        self,
        gpus: tuple[tuple[str, int], ...] = (("Tesla T4", 15360),),
        driver: str = "535.183.01",
        hang: bool = False,
    ) -> Path:
        """``nvidia-smi --query-gpu=... --format=csv,noheader`` prints "0, Tesla T4, 15360 MiB,
        535.183.01" per GPU; a wedged driver makes it hang."""
        rows = nvidia_smi_rows(gpus, driver)
        return self.add("nvidia-smi", {NVIDIA_SMI_QUERY: Reply(rows, hang=hang)})

    def nvidia_ctk(self, version: str = "1.17.8") -> Path:
        return self.add("nvidia-ctk", {"--version": Reply(nvidia_ctk_version(version))})

    def kube_tools(
        self, kubeadm: str = "v1.29.3", kubelet: str = "v1.29.3", kubectl: str = "v1.29.3"
    ) -> None:
        """kubeadm ``version -o short``, kubelet ``--version``, kubectl ``version --client
        -o json``, each in the real tool's format."""
        self.add("kubeadm", {"version -o short": Reply(kubeadm + "\n")})
        self.add("kubelet", {"--version": Reply(f"Kubernetes {kubelet}\n")})
        self.add("kubectl", {"version --client -o json": Reply(kubectl_client_json(kubectl))})

    def systemctl(self, containerd: str = "active", kubelet: str | None = "enabled") -> Path:
        """``is-active containerd`` prints the state (exit 0 only for active; 3 otherwise);
        ``is-enabled kubelet`` prints enabled/disabled, or systemd's error for a missing unit.
        """
        active = Reply(containerd + "\n", exit_code=0 if containerd == "active" else 3)
        if kubelet is None:
            enabled = Reply(
                stderr="Failed to get unit file state for kubelet.service: "
                "No such file or directory\n",
                exit_code=1,
            )
        else:
            enabled = Reply(kubelet + "\n", exit_code=0 if kubelet == "enabled" else 1)
        return self.add(
            "systemctl", {"is-active containerd": active, "is-enabled kubelet": enabled}
        )

    def provider_ready(self) -> None:
        """Every fake tool answering like a healthy, fully set-up provider host."""
        self.nvidia_smi()
        self.nvidia_ctk()
        self.kube_tools()
        self.systemctl()
