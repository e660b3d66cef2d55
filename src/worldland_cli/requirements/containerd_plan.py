"""What join changes in containerd's config, and in which file, so the effective config is right.

Editing /etc/containerd/config.toml is not enough when drop-ins decide (see
:mod:`containerd_config`). So each change is written to the file that decides that value:

* containerd 1.x replaces a whole CRI plugin section with the last file that names it, so
  every change goes to that file (the main file when none names it);
* containerd 2.x merges key by key, so a value goes to the last file that sets it; a new key
  goes to the file holding its deepest existing table (the main file first on a tie).

The nvidia runtime entry is what nvidia-ctk writes: a copy of the low-level runtime's table
(the default, else runc, else crun), runtime_type io.containerd.runc.v2 when it has none, and
options.BinaryName nvidia-container-runtime. When nvidia-ctk is installed and the main file
decides, join runs NVIDIA's own tool instead (the seed README's step); it knows only the main
file, so with a drop-in deciding, join edits that drop-in itself.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from worldland_cli.host import Host
from worldland_cli.join.actions import (
    Action,
    Deferred,
    Manual,
    RestartUnit,
    RunCommand,
    WriteFile,
    sha256_text,
)
from worldland_cli.requirements.containerd_config import (
    MAIN_CONFIG,
    ContainerdConfigError,
    EffectiveConfig,
    Layer,
    containerd_version,
    load_effective,
)

if TYPE_CHECKING:
    from worldland_cli.requirements.containerd_edit import Patch

NVIDIA = "nvidia"
NVIDIA_BINARY = "/usr/bin/nvidia-container-runtime"
RUNC_TYPE = "io.containerd.runc.v2"
# Where nvidia-ctk 1.18+ writes its drop-in (the main file then imports conf.d/*.toml).
NVIDIA_CTK_DROP_IN = "/etc/containerd/conf.d/99-nvidia.toml"
NVIDIA_CTK = (
    "nvidia-ctk", "runtime", "configure", "--runtime=containerd", "--set-as-default",
    "--config", MAIN_CONFIG,
)  # fmt: skip
# containerd's own loader judges a candidate file before it takes the real name.
VALIDATE = ("containerd", "--config", "%s", "config", "dump")
DUMP_CHECK = f"sudo containerd --config {MAIN_CONFIG} config dump >/dev/null"
# Paths below the CRI plugin's table, the same in every config version.
DEFAULT_RUNTIME = ("containerd", "default_runtime_name")
RUNTIMES = ("containerd", "runtimes")
_V3 = re.compile(r"(?m)^\s*version\s*=\s*3\b")

Change = tuple[tuple[str, ...], Any]


def load(host: Host, pending: dict[str, str] | None = None) -> EffectiveConfig:
    """The effective config as the installed containerd reads it (``pending``: planned files).

    A version 2 main file is merged as containerd 1.x does unless containerd says it is 2.x.
    """

    text = (pending or {}).get(MAIN_CONFIG) or host.read_text(MAIN_CONFIG) or ""
    major = None
    if not _V3.search(text):
        version = containerd_version(host)
        major = version[1] if version else None
    return load_effective(host, MAIN_CONFIG, containerd_major=major, pending=pending)


def _depth(layer: Layer, path: tuple[str, ...]) -> int:
    """How much of ``path`` this file sets: 0 (no CRI section) up to len(path) + 1 (the key)."""
    node: Any = layer.cri_section()
    if node is None:
        return 0
    depth = 1
    for part in path:
        if not isinstance(node, dict) or part not in node:
            break
        node, depth = node[part], depth + 1
    return depth


def deciding_file(cfg: EffectiveConfig, path: tuple[str, ...]) -> Layer:
    """The file whose edit decides ``path`` in the effective config (see the module doc)."""
    if not cfg.deep_merge:
        named = [layer for layer in cfg.layers if layer.cri_section() is not None]
        return named[-1] if named else cfg.layers[0]
    best, best_depth = cfg.layers[0], -1
    for layer in cfg.layers:
        depth = _depth(layer, path)
        if depth == len(path) + 1 or depth > best_depth:
            best, best_depth = layer, depth
    return best


def nvidia_changes(cfg: EffectiveConfig, host: Host) -> list[Change]:
    """What makes nvidia the default runtime, as nvidia-ctk would (nothing when it is)."""
    runtimes = cfg.runtimes()
    changes: list[Change] = []
    nvidia = runtimes.get(NVIDIA)
    if nvidia is None:
        default = cfg.default_runtime_name()
        names = ([] if default.startswith(NVIDIA) else [default]) + ["runc", "crun"]
        base = next((runtimes[n] for n in names if n in runtimes), {})
        table = copy.deepcopy(base)
        if not table.get("runtime_type"):
            table["runtime_type"] = RUNC_TYPE
        options = table.get("options")
        table["options"] = {**(options if isinstance(options, dict) else {})}
        table["options"]["BinaryName"] = NVIDIA_BINARY
        changes.append(((*RUNTIMES, NVIDIA), table))
    else:
        if not nvidia.get("runtime_type"):
            changes.append(((*RUNTIMES, NVIDIA, "runtime_type"), RUNC_TYPE))
        options = nvidia.get("options")
        binary = options.get("BinaryName") if isinstance(options, dict) else None
        if not (isinstance(binary, str) and binary and host.exists(binary)):
            changes.append(((*RUNTIMES, NVIDIA, "options", "BinaryName"), NVIDIA_BINARY))
    if cfg.default_runtime_name() != NVIDIA:
        changes.append((DEFAULT_RUNTIME, NVIDIA))
    return changes


def systemd_cgroup_changes(cfg: EffectiveConfig) -> list[Change] | None:
    """SystemdCgroup = true for the default runtime and every other runc runtime.

    kubelet puts every pod in a systemd slice whatever its RuntimeClass, so a runc runtime
    left on cgroupfs breaks the pods that pick it. None: the default runtime is not defined
    at all (only nvidia-ctk or a person can say what it should be).
    """
    default = cfg.default_runtime_name()
    runtimes = cfg.runtimes()
    if default not in runtimes:
        if default != "runc":
            return None
        # containerd's built-in runc: define it, with the option it lacks.
        return [
            ((*RUNTIMES, "runc"), {"runtime_type": RUNC_TYPE, "options": {"SystemdCgroup": True}})
        ]
    names = [default] + [
        n for n, t in runtimes.items() if n != default and t.get("runtime_type") == RUNC_TYPE
    ]
    changes: list[Change] = []
    for name in names:
        options = runtimes[name].get("options")
        if not (isinstance(options, dict) and options.get("SystemdCgroup") is True):
            changes.append(((*RUNTIMES, name, "options", "SystemdCgroup"), True))
    return changes


def _patch(layer: Layer, changes: list[Change]) -> Patch:
    root: Patch = {}
    for path, value in changes:
        node = root.setdefault("plugins", {}).setdefault(layer.cri_plugin, {})
        for part in path[:-1]:
            node = node.setdefault(part, {})
        node[path[-1]] = value
    return root


@dataclass(frozen=True)
class ConfigPlan:
    """The effective config a step plans against, and the files as join would find them."""

    cfg: EffectiveConfig
    texts: dict[str, str]  # path -> text the plan starts from (a default config: not on disk)
    new_main: bool  # the main file is written from ``containerd config default``


def start(host: Host) -> ConfigPlan | Manual:
    """Load the config to plan on: the files, or containerd's own default when there are none."""
    texts: dict[str, str] = {}
    new_main = not host.exists(MAIN_CONFIG)
    if new_main:
        res = host.run(["containerd", "config", "default"])
        if res.not_found:
            # A dry run on a fresh host: join plans this again once containerd is installed.
            return Deferred(f"install containerd first; then join writes {MAIN_CONFIG} from "
                            "`containerd config default` and edits it in place")  # fmt: skip
        if not res.ok:
            return Manual(f"write {MAIN_CONFIG}: `containerd config default` failed: "
                          f"{res.describe_failure()}")  # fmt: skip
        texts[MAIN_CONFIG] = res.stdout
    try:
        cfg = load(host, texts)
    except ContainerdConfigError as e:
        return Manual(f"fix {e} (containerd names the line: {DUMP_CHECK})")
    for layer in cfg.layers:
        texts.setdefault(layer.path, host.read_text(layer.path) or "")
    return ConfigPlan(cfg, texts, new_main)


def edits(plan: ConfigPlan, changes: list[Change]) -> list[Action]:
    """One validated in-place WriteFile per file that decides one of ``changes``."""
    from worldland_cli.requirements.containerd_edit import EditError, apply_patch

    by_file: dict[str, tuple[Layer, list[Change]]] = {}
    for change in changes:
        layer = deciding_file(plan.cfg, change[0])
        by_file.setdefault(layer.path, (layer, []))[1].append(change)
    if plan.new_main:
        by_file.setdefault(MAIN_CONFIG, (plan.cfg.layers[0], []))
    actions: list[Action] = []
    for path, (layer, ours) in by_file.items():
        text = plan.texts[path]
        try:
            content = apply_patch(text, _patch(layer, ours), name=path)
        except EditError as e:
            return [Manual(f"{e}; edit it by hand, then check it with: {DUMP_CHECK}")]
        before = None if plan.new_main and path == MAIN_CONFIG else text
        actions.append(WriteFile(path, content, before=sha256_text(before), validate=VALIDATE))
    return actions


def plan_step(
    host: Host, changes_of: Callable[[ConfigPlan], list[Change] | Manual], *, ctk: bool = False
) -> list[Action]:
    """A step's actions: edit the deciding files (or run nvidia-ctk), then restart containerd."""
    plan = start(host)
    if isinstance(plan, Manual):
        return [plan]
    if ctk and deciding_file(plan.cfg, DEFAULT_RUNTIME).path == MAIN_CONFIG:
        actions = edits(plan, []) if plan.new_main else []
        summary = "make nvidia the default runtime with nvidia-ctk (NVIDIA's own tool)"
        files = (MAIN_CONFIG, NVIDIA_CTK_DROP_IN)
        return [*actions, RunCommand(NVIDIA_CTK, files=files, summary=summary),
                RestartUnit("containerd")]  # fmt: skip
    changes = changes_of(plan)
    if isinstance(changes, Manual):
        return [changes]
    actions = edits(plan, changes)
    if any(isinstance(a, Manual) for a in actions):
        return actions
    return [*actions, RestartUnit("containerd")]
