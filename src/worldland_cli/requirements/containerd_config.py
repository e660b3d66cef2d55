"""containerd's effective configuration: the main file plus every drop-in it imports.

Grepping /etc/containerd/config.toml for "nvidia" (the seed README's check) is wrong twice
over: nvidia-ctk writes a drop-in under /etc/containerd/conf.d/ on containerd 2.x, and a
drop-in can silently undo the main file. So this module loads the files the way containerd
does and merges them with containerd's own rules:

* imports are resolved breadth-first from the main file; a relative import is relative to
  the importing file's directory, a pattern with ``*`` is globbed (sorted), a file is read
  once even when imported twice; containerd 1.x globs a *relative pattern* against its
  working directory instead (``/`` under systemd), so there ``conf.d/*.toml`` imports
  nothing, while containerd 2.x joins it to the importing file's directory first;
* top-level lists (imports, required_plugins, ...) are appended, other top-level keys are
  overridden by a later file when it sets a non-empty value;
* containerd 1.x (config version 2) replaces a whole ``[plugins."ID"]`` section when a later
  file names that plugin at all, so a drop-in that only sets the nvidia runtime drops runc
  and SystemdCgroup from the CRI section. containerd 2.x (version 3) merges plugin tables
  key by key instead, and migrates version 2 drop-ins to the version 3 plugin ids first.
"""

from __future__ import annotations

import posixpath
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from worldland_cli.host import Host

MAIN_CONFIG = "/etc/containerd/config.toml"
CRI_V2 = "io.containerd.grpc.v1.cri"
CRI_V3 = "io.containerd.cri.v1.runtime"
# Version 1 configs named plugins by their short id.
_V1_ALIASES = {"cri": CRI_V2}


_VERSION = re.compile(r"\bv?(\d+)\.(\d+)(?:\.\d+)?[^\s]*")


def containerd_version(host: Host) -> tuple[str, int, int] | None:
    """``containerd --version`` -> (text, major, minor); None when it does not answer.

    The output is "containerd <package> <version> <revision>", e.g.
    "containerd github.com/containerd/containerd 1.6.20~ds1 1.6.20~ds1-1+deb12u3".
    """
    res = host.run(["containerd", "--version"])
    if not res.ok:
        return None
    fields = res.stdout.split()
    for token in fields[2:3] + fields[1:]:
        match = _VERSION.fullmatch(token)
        if match:
            return token, int(match.group(1)), int(match.group(2))
    return None


class ContainerdConfigError(Exception):
    """A config file containerd itself would refuse (bad TOML, missing import, bad version)."""


def cri_plugin_id(version: int) -> str:
    """The plugin id a file of this config version keeps its CRI runtime settings under."""
    if version >= 3:
        return CRI_V3
    return CRI_V2 if version == 2 else "cri"


@dataclass(frozen=True)
class Layer:
    """One file as it was read (before any migration): what an edit of that file starts from."""

    path: str
    version: int
    data: dict[str, Any]

    @property
    def cri_plugin(self) -> str:
        return cri_plugin_id(self.version)

    def cri_section(self) -> dict[str, Any] | None:
        """This file's own CRI plugin table, None when the file does not name the plugin."""
        plugins = self.data.get("plugins")
        section = plugins.get(self.cri_plugin) if isinstance(plugins, dict) else None
        return section if isinstance(section, dict) else None


@dataclass
class EffectiveConfig:
    """The merged configuration and how it was assembled."""

    data: dict[str, Any]
    version: int
    files: list[str]
    deep_merge: bool
    layers: list[Layer] = field(default_factory=list)  # in load order, the main file first

    @property
    def cri_plugin(self) -> str:
        """The plugin id that holds the CRI runtime settings for this layout."""
        return CRI_V3 if self.version >= 3 else CRI_V2

    def cri_containerd(self) -> dict[str, Any]:
        """``plugins.<cri>.containerd``: default_runtime_name and the runtimes table."""
        plugins = self.data.get("plugins", {})
        section = plugins.get(self.cri_plugin, {}) if isinstance(plugins, dict) else {}
        table = section.get("containerd", {}) if isinstance(section, dict) else {}
        return table if isinstance(table, dict) else {}

    def runtimes(self) -> dict[str, dict[str, Any]]:
        table = self.cri_containerd().get("runtimes", {})
        if not isinstance(table, dict):
            return {}
        return {k: v for k, v in table.items() if isinstance(v, dict)}

    def default_runtime_name(self) -> str:
        """containerd's own default when nothing sets it is runc."""
        name = self.cri_containerd().get("default_runtime_name")
        return name if isinstance(name, str) and name else "runc"

    def describe_files(self) -> str:
        main, *drop_ins = self.files
        if not drop_ins:
            return main
        return f"{main} + {', '.join(drop_ins)}"


def _deep_merge(into: dict[str, Any], update: dict[str, Any]) -> None:
    """containerd 2.x (mergo with override): tables merge key by key, other values replace."""
    for key, value in update.items():
        current = into.get(key)
        if isinstance(current, dict) and isinstance(value, dict):
            _deep_merge(current, value)
        else:
            into[key] = _copy(value)


def _copy(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _copy(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_copy(v) for v in value]
    return value


def _is_empty(value: Any) -> bool:
    return value in ("", 0, False, None) or value == [] or value == {}


def _merge_file(out: dict[str, Any], config: dict[str, Any], deep: bool) -> None:
    for key, value in config.items():
        if key == "plugins" and isinstance(value, dict):
            plugins = out.setdefault("plugins", {})
            for plugin_id, section in value.items():
                if deep and isinstance(plugins.get(plugin_id), dict) and isinstance(section, dict):
                    _deep_merge(plugins[plugin_id], section)
                else:
                    plugins[plugin_id] = _copy(section)
        elif isinstance(value, list):
            existing = out.setdefault(key, [])
            for item in value:
                if not deep or item not in existing:
                    existing.append(_copy(item))
        elif isinstance(value, dict) and isinstance(out.get(key), dict):
            for sub, sub_value in value.items():
                if not _is_empty(sub_value):
                    out[key][sub] = _copy(sub_value)
        elif not _is_empty(value) or key not in out:
            out[key] = _copy(value)


def _migrate(config: dict[str, Any], to_version: int) -> dict[str, Any]:
    """Bring an older file's plugin ids up to the layout being merged into.

    Only the parts doctor reads are moved: v1's short ``cri`` id, and v2's CRI runtime
    settings (``grpc.v1.cri`` -> ``cri.v1.runtime``) as containerd 2.x migrates them.
    """
    version = int(config.get("version", 1) or 1)
    plugins = config.get("plugins")
    if not isinstance(plugins, dict):
        return config
    migrated = dict(config)
    plugins = dict(plugins)
    if version < 2:
        for short, full in _V1_ALIASES.items():
            if short in plugins:
                plugins[full] = plugins.pop(short)
    if version < 3 <= to_version and isinstance(plugins.get(CRI_V2), dict):
        old = dict(plugins.pop(CRI_V2))
        runtime_part = {"containerd": old.pop("containerd")} if "containerd" in old else {}
        if runtime_part:
            target = plugins.setdefault(CRI_V3, {})
            _deep_merge(target, runtime_part)
        if old:
            plugins[CRI_V2] = old
    migrated["plugins"] = plugins
    migrated["version"] = max(version, to_version)
    return migrated


def _resolve_imports(host: Host, parent: str, imports: list[Any], deep: bool) -> list[str]:
    """The files ``imports`` names, resolved as the containerd generation ``deep`` stands for.

    containerd 1.x hands a pattern with ``*`` to filepath.Glob untouched, so a relative one
    is matched against the daemon's working directory, which systemd sets to ``/``; only a
    plain relative path is joined to the importing file's directory. containerd 2.x joins
    both first.
    """
    out: list[str] = []
    for raw in imports:
        if not isinstance(raw, str):
            continue
        path = posixpath.normpath(raw)
        if not path.startswith("/"):
            base = "/" if "*" in path and not deep else posixpath.dirname(parent)
            path = posixpath.join(base, path)
        if "*" in path:
            out.extend(host.glob(path))
        else:
            out.append(path)
    return out


def _read(host: Host, path: str, pending: Mapping[str, str]) -> dict[str, Any]:
    text = pending[path] if path in pending else host.read_text(path)
    if text is None:
        raise ContainerdConfigError(f"{path}: no such file (containerd will refuse to start)")
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise ContainerdConfigError(f"{path}: invalid TOML: {e}") from e


def load_effective(
    host: Host,
    path: str = MAIN_CONFIG,
    *,
    containerd_major: int | None = None,
    pending: Mapping[str, str] | None = None,
) -> EffectiveConfig:
    """Merge ``path`` and its imports as the installed containerd would.

    ``containerd_major`` picks the merge rules when the main file alone cannot: a version 2
    file is read by containerd 1.x as is, but containerd 2.x migrates it and deep-merges.
    ``pending`` holds files as a plan is about to write them (join's default config).
    """
    pending = pending or {}
    root = _read(host, path, pending)
    root_version = int(root.get("version", 1) or 1)
    deep = root_version >= 3 or (containerd_major is not None and containerd_major >= 2)
    target_version = 3 if deep else max(root_version, 2)

    out: dict[str, Any] = {}
    loaded: list[str] = []
    layers: list[Layer] = []
    queue: list[tuple[str, dict[str, Any] | None]] = [(path, root)]
    while queue:
        current, parsed = queue.pop(0)
        if current in loaded:
            continue
        config = parsed if parsed is not None else _read(host, current, pending)
        version = int(config.get("version", 1) or 1)
        layers.append(Layer(current, version, config))
        if deep and version > root_version:
            raise ContainerdConfigError(
                f"{current}: drop-in config version {version} higher than root config "
                f"version {root_version}"
            )
        if not deep and version > 2:
            raise ContainerdConfigError(
                f"{current}: config version {version} needs containerd 2.x, "
                f"but {path} is version {root_version}"
            )
        if version < target_version:
            config = _migrate(config, target_version)
        _merge_file(out, config, deep)
        loaded.append(current)
        imports = config.get("imports", [])
        if isinstance(imports, list):
            queue.extend((p, None) for p in _resolve_imports(host, current, imports, deep))
    out["version"] = target_version
    return EffectiveConfig(out, target_version, loaded, deep, layers)
