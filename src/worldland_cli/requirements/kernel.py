"""Kernel modules and sysctls that Kubernetes networking needs (the seed README's step 5).

Without br_netfilter, bridged pod traffic bypasses iptables and Services do not work;
without overlay, containerd's default snapshotter cannot mount images.
"""

from __future__ import annotations

from worldland_cli.host import Host
from worldland_cli.join.actions import Action, RunCommand, WriteFile, sha256_text
from worldland_cli.requirements.base import Finding, JoinSettings, Requirement

KERNEL_DOC = "provider-guide#kernel"
MODULES = ("overlay", "br_netfilter")
MODULES_FILE = "/etc/modules-load.d/k8s.conf"
SYSCTL_FILE = "/etc/sysctl.d/99-kubernetes.conf"
# systemd-modules-load's search path, highest precedence first (modules-load.d(5)).
MODULES_LOAD_DIRS = (
    "/etc/modules-load.d",
    "/run/modules-load.d",
    "/usr/local/lib/modules-load.d",
    "/usr/lib/modules-load.d",
    "/lib/modules-load.d",
)
PERSIST_MODULES = "printf 'overlay\\nbr_netfilter\\n' | sudo tee /etc/modules-load.d/k8s.conf"
SYSCTLS = {
    "net.bridge.bridge-nf-call-iptables": "1",
    "net.bridge.bridge-nf-call-ip6tables": "1",
    "net.ipv4.ip_forward": "1",
}
SYSCTL_REMEDY = (
    "printf 'net.bridge.bridge-nf-call-iptables  = 1\\n"
    "net.bridge.bridge-nf-call-ip6tables = 1\\nnet.ipv4.ip_forward                 = 1\\n' | "
    "sudo tee /etc/sysctl.d/k8s.conf && sudo sysctl --system"
)


def loaded_modules(host: Host) -> set[str]:
    """Names in /proc/modules ("overlay 151552 0 - Live 0x0...") plus built-ins in /sys/module.

    A module compiled into the kernel never appears in /proc/modules, but it does have a
    /sys/module/<name> directory, so both are needed to avoid a false failure.
    """
    text = host.read_text("/proc/modules") or ""
    names = {line.split()[0] for line in text.splitlines() if line.strip()}
    for name in MODULES:
        if host.is_dir(f"/sys/module/{name}"):
            names.add(name)
    return names


def persisted_modules(host: Host) -> dict[str, str]:
    """Module name (``-`` spelled ``_``) -> the modules-load.d file that loads it at boot.

    Read the way systemd-modules-load reads them: a file name in a directory earlier on the
    search path masks the same name further down (``/etc/modules-load.d/x.conf`` linked to
    /dev/null disables the packaged one); a line is a comment only when it *starts* with
    ``#`` or ``;`` ("overlay  # k8s" names a module that does not exist); and modprobe
    treats ``-`` and ``_`` alike, so ``br-netfilter`` loads br_netfilter.
    """
    files: dict[str, str] = {}
    for directory in MODULES_LOAD_DIRS:
        for entry in host.listdir(directory):
            if entry.endswith(".conf"):
                files.setdefault(entry, f"{directory}/{entry}")
    found: dict[str, str] = {}
    for _entry, path in sorted(files.items()):
        for line in (host.read_text(path) or "").splitlines():
            name = line.strip()
            if name and name[0] not in "#;":
                found.setdefault(name.replace("-", "_"), path)
    return found


class Modules(Requirement):
    id = "kernel.modules"
    title = "overlay and br_netfilter loaded and persisted"

    def check(self, host: Host) -> Finding:
        loaded = loaded_modules(host)
        persisted = persisted_modules(host)
        missing = [m for m in MODULES if m not in loaded]
        unpersisted = [m for m in MODULES if m not in persisted]
        details: dict[str, object] = {
            "loaded": [m for m in MODULES if m in loaded],
            "persisted": {m: persisted[m] for m in MODULES if m in persisted},
        }
        if missing:
            # Some sandboxes (gVisor) have no /proc/modules; say so rather than guess.
            if host.read_text("/proc/modules") is None:
                details["proc_modules"] = "absent"
            remedy = f"sudo modprobe -a {' '.join(missing)}"
            if unpersisted:
                remedy = f"{PERSIST_MODULES} && {remedy}"
            where = " (no /proc/modules here)" if "proc_modules" in details else ""
            return self.fail(
                f"not loaded: {', '.join(missing)}{where}", remedy, KERNEL_DOC, **details
            )
        if unpersisted:
            return self.warn(
                f"loaded, but not in modules-load.d (lost at reboot): {', '.join(unpersisted)}",
                PERSIST_MODULES,
                **details,
            )
        where = ", ".join(sorted({persisted[m] for m in MODULES}))
        return self.ok(f"{', '.join(MODULES)} loaded; persisted in {where}", **details)

    def plan(self, host: Host, finding: Finding, settings: JoinSettings) -> list[Action]:
        from worldland_cli.templating import render

        actions: list[Action] = []
        persisted = persisted_modules(host)
        if any(m not in persisted for m in MODULES):
            text = render("modules-load-k8s.conf")
            before = sha256_text(host.read_text(MODULES_FILE))
            actions.append(WriteFile(MODULES_FILE, text, before=before))
        missing = [m for m in MODULES if m not in loaded_modules(host)]
        if missing:
            actions.append(RunCommand(("modprobe", "-a", *missing)))
        return actions


class Sysctl(Requirement):
    id = "kernel.sysctl"
    title = "bridge netfilter and IP forwarding sysctls"

    def check(self, host: Host) -> Finding:
        values: dict[str, str | None] = {}
        for key in SYSCTLS:
            text = host.read_text("/proc/sys/" + key.replace(".", "/"))
            values[key] = text.strip() if text is not None else None
        wrong = [f"{k} = {v}" for k, v in values.items() if v is not None and v != SYSCTLS[k]]
        absent = [k for k, v in values.items() if v is None]
        if absent:
            return self.fail(
                f"absent (br_netfilter not loaded?): {', '.join(absent)}"
                + (f"; wrong: {', '.join(wrong)}" if wrong else ""),
                f"sudo modprobe br_netfilter && {SYSCTL_REMEDY}",
                KERNEL_DOC,
                values=values,
            )
        if wrong:
            return self.fail(f"wrong: {', '.join(wrong)}", SYSCTL_REMEDY, KERNEL_DOC, values=values)
        return self.ok(", ".join(f"{k} = {v}" for k, v in values.items()), values=values)

    def plan(self, host: Host, finding: Finding, settings: JoinSettings) -> list[Action]:
        from worldland_cli.templating import render

        current = host.read_text(SYSCTL_FILE)
        return [
            WriteFile(
                SYSCTL_FILE, render("sysctl-kubernetes.conf", sysctls=SYSCTLS),
                before=sha256_text(current),
            ),
            RunCommand(("sysctl", "--system"), summary="apply the sysctls (sysctl --system)"),
        ]  # fmt: skip
