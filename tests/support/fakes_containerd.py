"""Fakes for join's containerd steps: ``nvidia-ctk runtime configure`` and a containerd 2.x.

``nvidia-ctk runtime configure --runtime=containerd --set-as-default [--config F]`` does to
the fake root what NVIDIA's tool does (cmd/nvidia-ctk/runtime/configure and
pkg/config/engine/containerd of nvidia-container-toolkit), by the version of the installed
nvidia-container-toolkit package in the fake dpkg status:

* before 1.18 it rewrites F itself: the nvidia runtime is a copy of the low-level runtime's
  table (the default unless it is nvidia*, else runc, else crun; else a stub), with
  options.BinaryName /usr/bin/nvidia-container-runtime, and it becomes the default;
* from 1.18 on (and with no package recorded) it writes /etc/containerd/conf.d/99-nvidia.toml
  instead: F's whole CRI section plus the same runtime and default (containerd 1.x replaces
  a plugin section per file, so the copy keeps the rest), and adds the conf.d import to F.

Either way F is re-serialised as go-toml v1 writes a tree (:func:`gotoml_v1`): keys sorted,
values before tables, two spaces a level, and every comment gone. Config version 1 files
are not modelled (exit 64).

It is the ``runtime`` subcommand of the one nvidia-ctk fake (tests.support.fakes_gpu, which
hands it nvidia-ctk's whole argument list); :func:`install_toolkit` puts the toolkit package
of a chosen version on a fake root, as a host that had it before join, for the containerd
tests.

``containerd-2`` stands in for containerd 2.x, which cannot run here (Debian has 1.6): the
package ``containerd.io`` (Docker's name for it) installs it as ``containerd``. It answers
``--version``, ``config default`` (containerd 2.1.5's own output, a fixture) and
``--config F config dump``, which loads F and its imports as 2.x does (relative imports
against F's directory, globs sorted, a version above 3 refused) and fails with containerd's
words on a file it cannot parse. Its dump is the merged data in go-toml v1 layout, not
2.x's; join only reads its exit status.
"""

from __future__ import annotations

import copy
import glob
import os
import posixpath
import re
import sys
import tomllib
from pathlib import Path
from typing import Any

from tests.support import fakesystem
from tests.support.fakes_gpu import CTK_SUBCOMMANDS, toolkit_package
from tests.support.fakesystem import CONTAINERD_UNIT, Package, Unexpected, add_package

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "containerd"
NVIDIA_BINARY = "/usr/bin/nvidia-container-runtime"
DROP_IN = "/etc/containerd/conf.d/99-nvidia.toml"
MAIN = "/etc/containerd/config.toml"
CRI_IDS = {1: "cri", 2: "io.containerd.grpc.v1.cri"}
CRI_V3 = "io.containerd.cri.v1.runtime"
CONTAINERD_2_VERSION = (
    "containerd github.com/containerd/containerd/v2 v2.1.5 fcd43222d6b07379a4be9786bda52438f0dd16a1"
)
_BARE = re.compile(r"[A-Za-z0-9_-]+")


# ------------------------------------------------------------------------ go-toml v1 output


def _go_string(value: str) -> str:
    """go-toml's encodeTomlString: named escapes, other controls below 0x1F as \\uXXXX."""
    named = {"\b": "\\b", "\t": "\\t", "\n": "\\n", "\f": "\\f", "\r": "\\r", '"': '\\"'}
    out = []
    for char in value:
        if char == "\\":
            out.append("\\\\")
        elif char in named:
            out.append(named[char])
        elif ord(char) < 0x1F:
            out.append(f"\\u{ord(char):04X}")
        else:
            out.append(char)
    return '"' + "".join(out) + '"'


def _go_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return f"{value:.1f}" if value == int(value) else repr(value)
    if isinstance(value, str):
        return _go_string(value)
    if isinstance(value, list):
        return "[" + ", ".join(_go_value(v) for v in value) + "]"
    raise ValueError(f"go-toml v1 fake: unsupported value {value!r}")


def _go_key(key: str) -> str:
    return key if _BARE.fullmatch(key) else _go_string(key)


def gotoml_v1(tree: dict[str, Any], indent: str = "", keyspace: str = "") -> str:
    """What go-toml v1's Tree.Marshal writes (tomltree_write.go, OrderAlphabetical)."""
    simple = sorted(k for k, v in tree.items() if not isinstance(v, dict))
    tables = sorted(k for k, v in tree.items() if isinstance(v, dict))
    out = "".join(f"{indent}{_go_key(k)} = {_go_value(tree[k])}\n" for k in simple)
    for key in tables:
        name = f"{keyspace}.{_go_key(key)}" if keyspace else _go_key(key)
        out += f"\n{indent}[{name}]\n" + gotoml_v1(tree[key], indent + "  ", name)
    return out


# ----------------------------------------------------------------- nvidia-ctk runtime configure


def _toolkit_version(root: Path) -> tuple[int, int]:
    status = (
        (root / fakesystem.DPKG_STATUS).read_text()
        if (root / fakesystem.DPKG_STATUS).exists()
        else ""
    )
    found = re.search(r"Package: nvidia-container-toolkit\n(?:.+\n)*?Version: (\d+)\.(\d+)", status)
    return (int(found.group(1)), int(found.group(2))) if found else (1, 18)


def _config_args(args: list[str]) -> str:
    """The --config path from ``runtime configure`` arguments; anything unmodelled fails."""
    if args[:2] != ["runtime", "configure"]:
        raise Unexpected
    rest, config, runtime, default = args[2:], MAIN, None, False
    while rest:
        arg = rest.pop(0)
        name, _, value = arg.partition("=")
        if name in ("--runtime", "--config") and not value:
            if not rest:
                raise Unexpected
            value = rest.pop(0)
        if name == "--runtime":
            runtime = value
        elif name == "--config":
            config = value
        elif arg in ("--set-as-default", "--nvidia-set-as-default"):
            default = True
        else:
            raise Unexpected
    if runtime != "containerd" or not default:
        raise Unexpected
    return config


def _load(path: Path) -> dict[str, Any]:
    return tomllib.loads(path.read_text()) if path.exists() else {}


def _save(path: Path, tree: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(gotoml_v1(tree))  # os.Create: truncates in place, the mode stays


def _table(tree: dict[str, Any], *keys: str) -> dict[str, Any]:
    for key in keys:
        tree = tree.setdefault(key, {})
    return tree


def _runtime_options(source: dict[str, Any], plugin: str) -> dict[str, Any]:
    """GetDefaultRuntimeOptions: the low-level runtime's whole table, copied."""
    section = source.get("plugins", {}).get(plugin, {}).get("containerd", {})
    runtimes = section.get("runtimes", {})
    default = section.get("default_runtime_name", "")
    names = ([default] if default and not default.startswith("nvidia") else []) + ["runc", "crun"]
    for name in names:
        if name in runtimes:
            return copy.deepcopy(runtimes[name])
    return {"runtime_type": "io.containerd.runc.v2", "runtime_root": "", "runtime_engine": "",
            "privileged_without_host_devices": False}  # fmt: skip


def _add_runtime(tree: dict[str, Any], plugin: str, options: dict[str, Any]) -> None:
    """AddRuntimeWithOptions("nvidia", path, setAsDefault=true, options)."""
    containerd = _table(tree, "plugins", plugin, "containerd")
    nvidia = _table(containerd, "runtimes")["nvidia"] = options
    if not nvidia.get("runtime_type"):
        nvidia["runtime_type"] = "io.containerd.runc.v2"
    _table(nvidia, "options")["BinaryName"] = NVIDIA_BINARY
    containerd["default_runtime_name"] = "nvidia"


def nvidia_ctk_runtime_configure(root: Path, args: list[str]) -> int:
    config = _config_args(args)
    path = root / config.lstrip("/")
    source = _load(path)
    version = int(source.get("version", 1)) if source else 2
    if version < 2:
        print("fake nvidia-ctk: version 1 configs are not modelled", file=sys.stderr)
        return 64
    plugin = CRI_IDS.get(version, CRI_V3)
    log = [f"Using config version {version}", f'Using CRI runtime plugin name "{plugin}"']
    options = _runtime_options(source, plugin)
    if _toolkit_version(root) < (1, 18):
        tree = {**source, "version": version}
        _add_runtime(tree, plugin, options)
        _save(path, tree)
        log.append(f"Wrote updated config to {config}")
    else:
        drop_in: dict[str, Any] = {"version": version}
        cri = source.get("plugins", {}).get(plugin)
        if isinstance(cri, dict):
            drop_in["plugins"] = {plugin: copy.deepcopy(cri)}
        _add_runtime(drop_in, plugin, options)
        _save(root / DROP_IN.lstrip("/"), drop_in)
        top = _load(path)
        pattern = posixpath.dirname(DROP_IN) + "/*.toml"
        imports = list(top.get("imports", []))
        if pattern not in imports:
            if not top:
                top["version"] = version
            top["imports"] = [*imports, pattern]
        _save(path, top)
        log.append(f"Wrote updated config to {DROP_IN}")
    log.append("It is recommended that containerd daemon be restarted.")
    for line in log:
        print(f"INFO[0000] {line}", file=sys.stderr)
    return 0


def install_toolkit(root: Path, fakes: Path, version: str = "1.18.0-1") -> None:
    """nvidia-container-toolkit ``version`` on the fake root, as apt-get leaves it (its
    behaviour follows the version: before 1.18 nvidia-ctk rewrites the main file)."""
    fakesystem._install(root, fakes, "nvidia-container-toolkit", toolkit_package(version))


# ------------------------------------------------------------------------------ containerd 2.x


def _host_path(root: Path, path: str) -> Path:
    """A path join hands over (already under the root) or one a config names (a system path)."""
    real = Path(path)
    return real if real.is_relative_to(root) else root / path.lstrip("/")


def _dump(root: Path, main: Path) -> int:
    pending, loaded, merged = [main], [], {}
    while pending:
        current = pending.pop(0)
        if current in loaded:
            continue
        try:
            data = tomllib.loads(current.read_text())
        except FileNotFoundError:
            print(f"containerd: open {current}: no such file or directory", file=sys.stderr)
            return 1
        except tomllib.TOMLDecodeError as e:
            where = re.search(r"line (\d+), column (\d+)", str(e))
            row, column = where.groups() if where else ("?", "?")
            print(f"containerd: failed to unmarshal TOML at row {row} column {column}: {e}",
                  file=sys.stderr)  # fmt: skip
            return 1
        if int(data.get("version", 1)) > 3:
            print(f"containerd: failed to load TOML from {main}: expected containerd config "
                  f"version equal to or less than `3`, got `{data['version']}`",
                  file=sys.stderr)  # fmt: skip
            return 1
        merged.update(data)
        loaded.append(current)
        for item in data.get("imports", []):
            path = os.path.normpath(item)
            if not path.startswith("/"):
                path = os.path.join(os.path.dirname(current), path)
            target = str(_host_path(root, path))
            found = sorted(glob.glob(target)) if "*" in target else [target]
            pending.extend(Path(p) for p in found)
    print(gotoml_v1(merged), end="")
    return 0


def containerd_2(root: Path, args: list[str]) -> int:
    if args == ["--version"]:
        print(CONTAINERD_2_VERSION)
        return 0
    if args == ["config", "default"]:
        print((FIXTURES / "containerd-2.1.5-config-default.toml").read_text(), end="")
        return 0
    if len(args) == 4 and args[0] == "--config" and args[2:] == ["config", "dump"]:
        return _dump(root, _host_path(root, args[1]))
    raise Unexpected


CTK_SUBCOMMANDS["runtime"] = nvidia_ctk_runtime_configure
fakesystem.TOOLS["containerd-2"] = containerd_2
add_package(
    "containerd.io",
    Package(
        "2.1.5-1~debian.12~bookworm",
        binaries={"containerd": "fake:containerd-2"},
        units={"containerd.service": CONTAINERD_UNIT},
    ),
)
