"""containerd: installed, running, nvidia as the default runtime, systemd cgroups.

Kubernetes starts every pod through containerd's default runtime, so a GPU pod only gets
its devices when that default is the nvidia runtime; the seed README calls this step
"important" because a missing default makes GPU rental fail silently.
"""

from __future__ import annotations

import shlex

from worldland_cli.host import Host
from worldland_cli.join.actions import Action, Deferred, EnableUnit, InstallPackages, Manual
from worldland_cli.requirements import containerd_plan as cplan
from worldland_cli.requirements.base import Finding, JoinSettings, Requirement
from worldland_cli.requirements.containerd_config import (
    MAIN_CONFIG,
    ContainerdConfigError,
    EffectiveConfig,
    containerd_version,
)

CONTAINERD_DOC = "provider-guide#containerd"
SOCKET = "/run/containerd/containerd.sock"
INSTALL_REMEDY = "sudo apt-get install -y containerd && sudo systemctl enable --now containerd"
START_REMEDY = "sudo systemctl enable --now containerd"
CONFIGURE_NVIDIA = (
    "sudo nvidia-ctk runtime configure --runtime=containerd --set-as-default && "
    "sudo systemctl restart containerd"
)
# The seed README's step 4, for a host that has no config file at all.
NEW_CONFIG_REMEDY = (
    "sudo mkdir -p /etc/containerd && "
    "containerd config default | sudo tee /etc/containerd/config.toml >/dev/null && "
    "sudo sed -i 's/SystemdCgroup = false/SystemdCgroup = true/' /etc/containerd/config.toml && "
    + CONFIGURE_NVIDIA
)
# containerd's own loader names the file and line it cannot use.
DUMP_REMEDY = cplan.DUMP_CHECK
# A key that is missing (not merely false) has no one-line sed; join adds it in place.
EDIT_REMEDY = (
    "sudo worldland join --yes --only {step}   # edits {files} in place "
    "(the diff first: worldland join --dry-run --only {step})"
)
# CRI v1, which Kubernetes 1.26+ requires, arrived in containerd 1.6.
MIN_VERSION = (1, 6)


class Installed(Requirement):
    id = "containerd.installed"
    title = "containerd installed"

    def check(self, host: Host) -> Finding:
        res = host.run(["containerd", "--version"])
        if res.not_found:
            return self.fail("containerd not found", INSTALL_REMEDY, CONTAINERD_DOC)
        if not res.ok:
            return self.fail(res.describe_failure(), INSTALL_REMEDY, CONTAINERD_DOC)
        version = containerd_version(host)
        if version is None:
            return self.warn(f"unrecognised version output: {res.stdout.strip()!r}")
        text, major, minor = version
        if (major, minor) < MIN_VERSION:
            return self.fail(
                f"containerd {text} is older than 1.6 (Kubernetes needs CRI v1)",
                "sudo apt-get update && sudo apt-get install -y --only-upgrade containerd",
                CONTAINERD_DOC,
                version=text,
            )
        return self.ok(f"containerd {text}", version=text)

    def plan(self, host: Host, finding: Finding, settings: JoinSettings) -> list[Action]:
        return [InstallPackages(("containerd",), update=True)]


class Running(Requirement):
    id = "containerd.running"
    title = "containerd running"

    def check(self, host: Host) -> Finding:
        res = host.run(["systemctl", "is-active", "containerd"])
        state = res.stdout.strip()
        if res.ok and state == "active":
            return self.ok("systemd: containerd.service is active")
        if not res.not_found and not res.timed_out and state:
            return self.fail(
                f"systemd: containerd.service is {state}", START_REMEDY, CONTAINERD_DOC
            )
        # No systemd (a container, a chroot being prepared): ask the socket itself.
        if host.unix_socket_answers(SOCKET):
            return self.ok(f"{SOCKET} accepts connections")
        why = res.describe_failure() if not res.ok else "no state from systemctl"
        return self.fail(
            f"{why}; nothing listens on {SOCKET}",
            START_REMEDY,
            CONTAINERD_DOC,
        )

    def plan(self, host: Host, finding: Finding, settings: JoinSettings) -> list[Action]:
        return [EnableUnit("containerd")]


def _load(req: Requirement, host: Host) -> EffectiveConfig | Finding:
    """The effective config, or the failed finding that says why there is none."""
    if not host.exists(MAIN_CONFIG):
        return req.fail(
            f"no {MAIN_CONFIG}: containerd runs its built-in defaults (runtime runc)",
            NEW_CONFIG_REMEDY,
            CONTAINERD_DOC,
        )
    try:
        return cplan.load(host)
    except ContainerdConfigError as e:
        return req.fail(str(e), DUMP_REMEDY, CONTAINERD_DOC)


class NvidiaRuntime(Requirement):
    id = "containerd.nvidia-runtime"
    title = "containerd: nvidia is the default runtime"

    def check(self, host: Host) -> Finding:
        cfg = _load(self, host)
        if isinstance(cfg, Finding):
            return cfg
        runtimes = cfg.runtimes()
        default = cfg.default_runtime_name()
        where = f"config v{cfg.version} ({cfg.describe_files()})"
        details = {
            "files": cfg.files,
            "config_version": cfg.version,
            "cri_plugin": cfg.cri_plugin,
            "default_runtime_name": default,
            "runtimes": sorted(runtimes),
        }
        seen = f"{where}: default runtime {default!r}, runtimes {', '.join(sorted(runtimes))}"
        if "nvidia" not in runtimes:
            return self.fail(
                f"{where}: no nvidia runtime (runtimes: {', '.join(sorted(runtimes)) or 'none'})",
                CONFIGURE_NVIDIA,
                CONTAINERD_DOC,
                **details,
            )
        if default != "nvidia":
            return self.fail(seen, CONFIGURE_NVIDIA, CONTAINERD_DOC, **details)
        options = runtimes["nvidia"].get("options", {})
        binary = options.get("BinaryName") if isinstance(options, dict) else None
        if isinstance(binary, str) and binary and not host.exists(binary):
            return self.fail(
                f"{seen}; but its BinaryName {binary} does not exist",
                "sudo apt-get install -y nvidia-container-toolkit && " + CONFIGURE_NVIDIA,
                CONTAINERD_DOC,
                **details,
            )
        return self.ok(seen, **details)

    def plan(self, host: Host, finding: Finding, settings: JoinSettings) -> list[Action]:
        """nvidia-ctk when it is installed and the main file decides, else an in-place edit."""

        def changes(plan: cplan.ConfigPlan) -> list[cplan.Change] | Manual:
            wanted = cplan.nvidia_changes(plan.cfg, host)
            sets_binary = any(path[-1] in ("BinaryName", cplan.NVIDIA) for path, _ in wanted)
            if sets_binary and not host.exists(cplan.NVIDIA_BINARY):
                return Deferred(
                    f"install the NVIDIA Container Toolkit first ({cplan.NVIDIA_BINARY} is "
                    "missing): sudo apt-get install -y nvidia-container-toolkit"
                )
            return wanted

        return cplan.plan_step(host, changes, ctk=host.which("nvidia-ctk") is not None)


class SystemdCgroup(Requirement):
    id = "containerd.systemd-cgroup"
    title = "containerd: SystemdCgroup = true"

    def check(self, host: Host) -> Finding:
        cfg = _load(self, host)
        if isinstance(cfg, Finding):
            return cfg
        default = cfg.default_runtime_name()
        runtime = cfg.runtimes().get(default)
        if runtime is None and default != "runc":
            return self.fail(
                f"default runtime {default!r} is not defined in {cfg.describe_files()}",
                CONFIGURE_NVIDIA,
                CONTAINERD_DOC,
            )
        path = (*cplan.RUNTIMES, default, "options", "SystemdCgroup")
        decides = shlex.quote(cplan.deciding_file(cfg, path).path)
        edit = EDIT_REMEDY.format(step=self.id, files=decides)
        if runtime is None:
            # containerd's built-in runc entry, which has SystemdCgroup = false.
            return self.fail(
                f"runtime 'runc' comes from containerd's built-in defaults "
                f"({cfg.describe_files()} does not define it): SystemdCgroup = false",
                edit,
                CONTAINERD_DOC,
                runtime=default,
            )
        options = runtime.get("options", {})
        value = options.get("SystemdCgroup") if isinstance(options, dict) else None
        if value is True:
            return self.ok(f"runtime {default!r}: SystemdCgroup = true", runtime=default)
        shown = "not set (defaults to false)" if value is None else f"= {str(value).lower()}"
        files = " ".join(shlex.quote(f) for f in cfg.files)
        sed = (
            f"sudo sed -i 's/SystemdCgroup = false/SystemdCgroup = true/' {files} && "
            "sudo systemctl restart containerd"
        )
        return self.fail(
            f"runtime {default!r}: SystemdCgroup {shown}; kubelet uses the systemd cgroup "
            "driver, so pods would be placed in the wrong cgroups",
            edit if value is None else sed,
            CONTAINERD_DOC,
            runtime=default,
        )

    def plan(self, host: Host, finding: Finding, settings: JoinSettings) -> list[Action]:
        def changes(plan: cplan.ConfigPlan) -> list[cplan.Change] | Manual:
            wanted = cplan.systemd_cgroup_changes(plan.cfg)
            if wanted is None:
                return Manual(finding.remedy or CONFIGURE_NVIDIA, command=True)
            return wanted

        return cplan.plan_step(host, changes)
