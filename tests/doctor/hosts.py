"""Fake provider roots and containerd configs for the doctor tests.

A root is a temporary directory laid out like ``/``; ``proc`` and ``sys`` are either
symlinks to this machine's real ones (for the read paths) or small synthetic trees that
make a host look fully set up, so a test can reach exit 0 on a machine without a GPU.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tomllib
from pathlib import Path
from typing import Any

import toml

from worldland_cli.requirements.containerd_config import CRI_V2

HOSTNAME = "gpu-node-1"
NVIDIA_BINARY = "/usr/bin/nvidia-container-runtime"
CONTAINERD = "/usr/bin/containerd"

# containerd 2.x `config default` layout (single-quoted keys, as go-toml v2 writes them).
V3_MAIN = """\
version = 3
root = '/var/lib/containerd'
state = '/run/containerd'
temp = ''
plugin_dir = ''
disabled_plugins = []
required_plugins = []
oom_score = 0
imports = ['/etc/containerd/conf.d/*.toml']

[grpc]
  address = '/run/containerd/containerd.sock'
  tcp_address = ''
  uid = 0
  gid = 0
  max_recv_message_size = 16777216
  max_send_message_size = 16777216

[plugins]
  [plugins.'io.containerd.cri.v1.images']
    snapshotter = 'overlayfs'
    disable_snapshot_annotations = true
    discard_unpacked_layers = false

    [plugins.'io.containerd.cri.v1.images'.pinned_images]
      sandbox = 'registry.k8s.io/pause:3.10'

  [plugins.'io.containerd.cri.v1.runtime']
    enable_selinux = false
    max_container_log_line_size = 16384
    enable_cdi = true

    [plugins.'io.containerd.cri.v1.runtime'.containerd]
      default_runtime_name = 'runc'
      ignore_blockio_not_enabled_errors = false
      ignore_rdt_not_enabled_errors = false

      [plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes]
        [plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runc]
          runtime_type = 'io.containerd.runc.v2'
          runtime_path = ''
          pod_annotations = []
          container_annotations = []
          privileged_without_host_devices = false
          base_runtime_spec = ''
          cni_conf_dir = ''
          cni_max_conf_num = 0
          snapshotter = ''
          sandboxer = 'podsandbox'
          io_type = ''

          [plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runc.options]
            BinaryName = ''
            CriuImagePath = ''
            CriuWorkPath = ''
            IoGid = 0
            IoUid = 0
            NoNewKeyring = false
            Root = ''
            ShimCgroup = ''
            SystemdCgroup = true
"""

# What `nvidia-ctk runtime configure --runtime=containerd --set-as-default` writes for
# containerd 2.x: a drop-in holding only its changes (runc's table copied to nvidia).
V3_NVIDIA_DROP_IN = """\
version = 3

[plugins]

  [plugins."io.containerd.cri.v1.runtime"]

    [plugins."io.containerd.cri.v1.runtime".containerd]
      default_runtime_name = "nvidia"

      [plugins."io.containerd.cri.v1.runtime".containerd.runtimes]

        [plugins."io.containerd.cri.v1.runtime".containerd.runtimes.nvidia]
          base_runtime_spec = ""
          cni_conf_dir = ""
          cni_max_conf_num = 0
          container_annotations = []
          io_type = ""
          pod_annotations = []
          privileged_without_host_devices = false
          runtime_path = ""
          runtime_type = "io.containerd.runc.v2"
          sandboxer = "podsandbox"
          snapshotter = ""

          [plugins."io.containerd.cri.v1.runtime".containerd.runtimes.nvidia.options]
            BinaryName = "/usr/bin/nvidia-container-runtime"
            CriuImagePath = ""
            CriuWorkPath = ""
            IoGid = 0
            IoUid = 0
            NoNewKeyring = false
            Root = ""
            ShimCgroup = ""
            SystemdCgroup = true
"""


def containerd_default_config() -> str | None:
    """This machine's real `containerd config default` (version 2), or None without it."""
    if not os.access(CONTAINERD, os.X_OK):
        return None
    out = subprocess.run(
        [CONTAINERD, "config", "default"], capture_output=True, text=True, timeout=30, check=True
    )
    return out.stdout


def set_systemd_cgroup(text: str) -> str:
    """The seed README's `sed -i 's/SystemdCgroup = false/SystemdCgroup = true/'`."""
    return text.replace("SystemdCgroup = false", "SystemdCgroup = true")


def nvidia_ctk_configure(text: str, plugin: str = CRI_V2) -> str:
    """What `nvidia-ctk runtime configure --runtime=containerd --set-as-default` does to a
    config file: copy runc's runtime table to ``nvidia``, point its BinaryName at
    nvidia-container-runtime and make it the default (pkg/config/engine/containerd)."""
    data: dict[str, Any] = tomllib.loads(text)
    section = data["plugins"][plugin]["containerd"]
    runtimes = section.setdefault("runtimes", {})
    nvidia = _deep_copy(runtimes.get("runc", {"runtime_type": "io.containerd.runc.v2"}))
    nvidia.setdefault("options", {})["BinaryName"] = NVIDIA_BINARY
    runtimes["nvidia"] = nvidia
    section["default_runtime_name"] = "nvidia"
    return toml.dumps(data)


def _deep_copy(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _deep_copy(v) for k, v in value.items()}
    return value


def write(root: Path, system_path: str, text: str, mode: int = 0o644) -> Path:
    target = root / system_path.lstrip("/")
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(text)
    target.chmod(mode)
    return target


def make_root(base: Path, *, real_proc: bool = True) -> Path:
    """A root with /etc/hostname and /proc, /sys linked to the real ones (or left empty)."""
    root = base / "root"
    root.mkdir(parents=True)
    write(root, "/etc/hostname", HOSTNAME + "\n")
    if real_proc:
        (root / "proc").symlink_to("/proc")
        (root / "sys").symlink_to("/sys")
    return root


def make_ready_root(base: Path) -> Path:
    """A root on which every file-based check passes (synthetic /proc and /sys)."""
    root = make_root(base, real_proc=False)
    write(
        root,
        "/proc/modules",
        "br_netfilter 32768 0 - Live 0x0000000000000000\n"
        "bridge 311296 1 br_netfilter, Live 0x0000000000000000\n"
        "overlay 151552 0 - Live 0x0000000000000000\n",
    )
    for key in ("net/bridge/bridge-nf-call-iptables", "net/bridge/bridge-nf-call-ip6tables"):
        write(root, f"/proc/sys/{key}", "1\n")
    write(root, "/proc/sys/net/ipv4/ip_forward", "1\n")
    write(root, "/proc/swaps", "Filename\t\t\t\tType\t\tSize\t\tUsed\t\tPriority\n")
    write(root, "/proc/cmdline", "BOOT_IMAGE=/vmlinuz-6.5.0-1020-gcp root=/dev/sda1 ro\n")
    write(root, "/etc/modules-load.d/k8s.conf", "overlay\nbr_netfilter\n")
    write(root, "/etc/containerd/config.toml", V3_MAIN)
    write(root, "/etc/containerd/conf.d/99-nvidia.toml", V3_NVIDIA_DROP_IN)
    write(root, NVIDIA_BINARY, "#!/bin/sh\n", 0o755)
    return root


def realbin(base: Path, *names: str) -> Path:
    """A directory holding links to the named real tools (those that exist here)."""
    directory = base / "realbin"
    directory.mkdir(exist_ok=True)
    for name in names:
        found = shutil.which(name, path="/usr/sbin:/usr/bin:/sbin:/bin")
        if found and not (directory / name).exists():
            (directory / name).symlink_to(found)
    return directory
