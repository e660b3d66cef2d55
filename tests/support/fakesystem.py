"""Stateful fakes of the system tools join drives, for a fake root (``WORLDLAND_FAKE_ROOT``).

Unlike the answer-table fakes of :mod:`tests.support.fakebin`, these change the fake root
the way the real tools change a machine: ``modprobe`` adds its module to /proc/modules,
``sysctl --system`` copies /etc/sysctl.d values into /proc/sys, ``swapoff -a`` empties
/proc/swaps, ``apt-get install`` writes a package's files, its dpkg status entry and file
list and puts its commands on the PATH (``purge`` takes them all away again), ``apt-mark``
and ``dpkg-query`` read and write that status, and ``systemctl`` keeps unit state the way
systemd does (enable = a link in ``TARGET.wants``, activity under /run). A join run
against them ends with doctor's file-based checks green, and a reset can be judged by
hashing the root. Each call is appended to ``calls.log`` beside the fakes; an unknown
argument list fails with exit 64, so a changed command line breaks a test.

Install with :func:`install` (one small ``/bin/sh`` wrapper per tool that runs this module
with the test's own Python), then put the directory first on the PATH under test.
"""

from __future__ import annotations

import os
import re
import shlex
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
ROOT_ENV = "WORLDLAND_FAKE_ROOT"
# "overlay 151552 0 - Live 0x0000000000000000": /proc/modules' format.
MODULE_LINE = "{name} 151552 0 - Live 0x0000000000000000\n"
SWAPS_HEADER = "Filename\t\t\t\tType\t\tSize\t\tUsed\t\tPriority\n"

Tool = Callable[[Path, list[str]], int]


class Unexpected(Exception):
    """Arguments the real tool would take but this fake does not model."""


def _modprobe(root: Path, args: list[str]) -> int:
    names = args[1:] if args[:1] == ["-a"] else args
    if not names or any(n.startswith("-") for n in names):
        raise Unexpected
    modules = root / "proc" / "modules"
    modules.parent.mkdir(parents=True, exist_ok=True)
    loaded = modules.read_text() if modules.exists() else ""
    present = {line.split()[0] for line in loaded.splitlines() if line.strip()}
    with modules.open("a") as f:
        for name in names:
            if name.replace("-", "_") not in present:
                f.write(MODULE_LINE.format(name=name.replace("-", "_")))
    return 0


def _sysctl(root: Path, args: list[str]) -> int:
    if args != ["--system"]:
        raise Unexpected
    loaded = {line.split()[0] for line in _read(root / "proc/modules").splitlines() if line}
    for conf in sorted((root / "etc" / "sysctl.d").glob("*.conf")):
        print(f"* Applying {conf.relative_to(root).as_posix()} ...")
        for line in conf.read_text().splitlines():
            if not line.strip() or line.lstrip()[0] in "#;" or "=" not in line:
                continue
            key, value = (part.strip() for part in line.split("=", 1))
            if key.startswith("net.bridge.") and "br_netfilter" not in loaded:
                print(f"sysctl: cannot stat /proc/sys/{key.replace('.', '/')}: No such file or "
                      "directory", file=sys.stderr)  # fmt: skip
                continue
            target = root / "proc" / "sys" / key.replace(".", "/")
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(value + "\n")
            print(f"{key} = {value}")
    return 0


def _swapoff(root: Path, args: list[str]) -> int:
    if args != ["-a"]:
        raise Unexpected
    (root / "proc").mkdir(parents=True, exist_ok=True)
    (root / "proc" / "swaps").write_text(SWAPS_HEADER)
    return 0


def _read(path: Path) -> str:
    return path.read_text() if path.exists() else ""


# ------------------------------------------------------------------------------ packages

DPKG_STATUS = "var/lib/dpkg/status"


@dataclass(frozen=True)
class Package:
    """What installing a package puts on the fake host.

    ``binaries`` become commands on the PATH under test (the fakes directory): the value is
    a real executable to run (``/usr/bin/containerd``) or ``fake:TOOL`` for a tool of this
    module. ``files`` are written under the root, ``units`` are systemd unit files (their
    text) under /lib/systemd/system. All of it is listed in /var/lib/dpkg/info/NAME.list, as
    dpkg does, and removed again by ``apt-get purge``.
    """

    version: str
    binaries: Mapping[str, str] = field(default_factory=dict)
    files: Mapping[str, str] = field(default_factory=dict)
    units: Mapping[str, str] = field(default_factory=dict)


CONTAINERD_UNIT = """[Unit]
Description=containerd container runtime
After=network.target local-fs.target

[Service]
ExecStart=/usr/bin/containerd
Restart=always

[Install]
WantedBy=multi-user.target
"""

# Packages tests can install; other fakes add theirs with :func:`add_package`.
PACKAGES: dict[str, Package] = {
    "containerd": Package(
        "1.6.20~ds1-1+b1",
        binaries={"containerd": "/usr/bin/containerd"},
        units={"containerd.service": CONTAINERD_UNIT},
    ),
}


def add_package(name: str, package: Package) -> None:
    PACKAGES[name] = package


def _status_entries(root: Path) -> list[str]:
    text = _read(root / DPKG_STATUS).strip("\n")
    return [block for block in text.split("\n\n") if block.strip()]


def _write_status(root: Path, entries: list[str]) -> None:
    (root / DPKG_STATUS).write_text("".join(entry + "\n\n" for entry in entries))


def _entry_of(entries: list[str], name: str) -> int | None:
    for index, entry in enumerate(entries):
        if entry.startswith(f"Package: {name}\n"):
            return index
    return None


def _install(root: Path, fakes: Path, name: str, package: Package) -> None:
    listed: list[str] = []
    for path, text in package.files.items():
        target = root / path.lstrip("/")
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text)
        listed.append(path)
    for unit, text in package.units.items():
        target = root / "lib/systemd/system" / unit
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text)
        listed.append(f"/lib/systemd/system/{unit}")
    for command, runs in package.binaries.items():
        _wrapper(fakes, command, runs)
    info = root / "var/lib/dpkg/info" / f"{name}.list"
    info.parent.mkdir(parents=True, exist_ok=True)
    info.write_text("".join(p + "\n" for p in listed))
    entries = _status_entries(root)
    if _entry_of(entries, name) is None:
        entries.append(
            f"Package: {name}\nStatus: install ok installed\nArchitecture: amd64\n"
            f"Version: {package.version}"
        )
        _write_status(root, entries)


def _purge(root: Path, fakes: Path, name: str) -> None:
    info = root / "var/lib/dpkg/info" / f"{name}.list"
    for path in _read(info).splitlines():
        (root / path.lstrip("/")).unlink(missing_ok=True)
    info.unlink(missing_ok=True)
    for command in PACKAGES[name].binaries:
        (fakes / command).unlink(missing_ok=True)
    entries = _status_entries(root)
    index = _entry_of(entries, name)
    if index is not None:
        del entries[index]
        _write_status(root, entries)


def _wrapper(fakes: Path, command: str, runs: str) -> None:
    if runs.startswith("fake:"):
        body = (
            f"WORLDLAND_FAKE_LOG={shlex.quote(str(fakes))} PYTHONPATH={shlex.quote(str(REPO))} "
            f"exec {shlex.quote(sys.executable)} -m tests.support.fakesystem "
            f'{runs.removeprefix("fake:")} "$@"'
        )
    else:
        body = f'exec {shlex.quote(runs)} "$@"'
    wrapper = fakes / command
    wrapper.write_text(f"#!/bin/sh\n{body}\n")
    wrapper.chmod(0o755)


def _apt_get(root: Path, args: list[str]) -> int:
    fakes = Path(os.environ["WORLDLAND_FAKE_LOG"])
    if args == ["update"] or args == ["update", "-qq"]:
        for listing in sorted((root / "etc/apt/sources.list.d").glob("*.list")):
            print(f"Hit:1 {_read(listing).split()[-2] if _read(listing).split() else '?'}")
        print("Reading package lists... Done")
        return 0
    flags = [a for a in args[1:] if a.startswith("-")]
    names = [a for a in args[1:] if not a.startswith("-")]
    if args[:1] == ["install"] and "-y" in flags:
        unknown = [n for n in names if n not in PACKAGES]
        if unknown:
            print(f"E: Unable to locate package {unknown[0]}", file=sys.stderr)
            return 100
        for name in names:
            _install(root, fakes, name, PACKAGES[name])
            print(f"Setting up {name} ({PACKAGES[name].version}) ...")
        return 0
    if args[:1] == ["purge"] and "-y" in flags:
        for name in names:
            if name in PACKAGES:
                _purge(root, fakes, name)
                print(f"Purging configuration files for {name} ...")
        return 0
    raise Unexpected


def _apt_mark(root: Path, args: list[str]) -> int:
    if args[:1] not in (["hold"], ["unhold"]) or len(args) < 2:
        raise Unexpected
    entries = _status_entries(root)
    want = "hold" if args[0] == "hold" else "install"
    for name in args[1:]:
        index = _entry_of(entries, name)
        if index is None:
            print(f"E: Unable to locate package {name}", file=sys.stderr)
            return 100
        entries[index] = re.sub(r"Status: \w+ ", f"Status: {want} ", entries[index], count=1)
        print(f"{name} set on hold." if want == "hold" else f"Canceled hold on {name}.")
    _write_status(root, entries)
    return 0


def _dpkg_query(root: Path, args: list[str]) -> int:
    if len(args) != 3 or args[:2] != ["-W", "-f=${Status}"]:
        raise Unexpected
    entries = _status_entries(root)
    index = _entry_of(entries, args[2])
    if index is None:
        print(f"dpkg-query: no packages found matching {args[2]}", file=sys.stderr)
        return 1
    status = re.search(r"Status: (.*)", entries[index])
    print(status.group(1) if status else "", end="")
    return 0


# ------------------------------------------------------------------------------ systemd

ACTIVE = "run/fake-systemd/active"


def _unit_name(name: str) -> str:
    return name if "." in name else f"{name}.service"


def _unit_file(root: Path, unit: str) -> Path | None:
    template = re.sub(r"@[^.]*\.", "@.", unit)
    for directory in ("etc/systemd/system", "lib/systemd/system"):
        for candidate in (unit, template):
            path = root / directory / candidate
            if path.exists():
                return path
    return None


def _active(root: Path) -> set[str]:
    return set(_read(root / ACTIVE).split())


def _set_active(root: Path, units: set[str]) -> None:
    (root / ACTIVE).parent.mkdir(parents=True, exist_ok=True)
    (root / ACTIVE).write_text("".join(u + "\n" for u in sorted(units)))


def _wants_link(root: Path, unit: str, unit_file: Path) -> Path:
    wanted_by = re.search(r"(?m)^WantedBy=(\S+)", unit_file.read_text())
    target = wanted_by.group(1) if wanted_by else "multi-user.target"
    return root / "etc/systemd/system" / f"{target}.wants" / unit


def _systemctl(root: Path, args: list[str]) -> int:
    now = "--now" in args
    words = [a for a in args if a != "--now"]
    if words == ["daemon-reload"]:
        return 0
    if len(words) != 2:
        raise Unexpected
    verb, unit = words[0], _unit_name(words[1])
    unit_file = _unit_file(root, unit)
    active = _active(root)
    if verb == "is-active":
        state = "active" if unit in active else "inactive"
        print(state)
        return 0 if state == "active" else 3
    if unit_file is None:
        if verb == "is-enabled":
            print(f"Failed to get unit file state for {unit}: No such file or directory",
                  file=sys.stderr)  # fmt: skip
            return 1
        print(f"Failed to {verb} {unit}: Unit {unit} not found.", file=sys.stderr)
        return 5
    link = _wants_link(root, unit, unit_file)
    if verb == "is-enabled":
        print("enabled" if link.is_symlink() else "disabled")
        return 0 if link.is_symlink() else 1
    if verb == "enable":
        if not link.is_symlink():
            link.parent.mkdir(parents=True, exist_ok=True)
            link.symlink_to("/" + unit_file.relative_to(root).as_posix())
            made, points = link.relative_to(root), unit_file.relative_to(root)
            print(f"Created symlink /{made} \u2192 /{points}.")
        if now:
            _set_active(root, active | {unit})
        return 0
    if verb == "disable":
        if link.is_symlink():
            link.unlink()
            print(f'Removed "/{link.relative_to(root)}".')
        if now:
            _set_active(root, active - {unit})
        return 0
    if verb in ("start", "restart"):
        _set_active(root, active | {unit})
        return 0
    if verb == "stop":
        _set_active(root, active - {unit})
        return 0
    raise Unexpected


TOOLS: dict[str, Tool] = {
    "modprobe": _modprobe,
    "sysctl": _sysctl,
    "swapoff": _swapoff,
    "apt-get": _apt_get,
    "apt-mark": _apt_mark,
    "dpkg-query": _dpkg_query,
    "systemctl": _systemctl,
}


BASE_TOOLS = ("modprobe", "sysctl", "swapoff", "apt-get", "apt-mark", "dpkg-query", "systemctl")


def install(directory: Path, tools: Sequence[str] = BASE_TOOLS) -> Path:
    """Write a wrapper for each of ``tools`` into ``directory``; return it (for PATH).

    The base tools are there on any Debian host; others come with their packages.
    """
    directory.mkdir(parents=True, exist_ok=True)
    for name in tools:
        wrapper = directory / name
        wrapper.write_text(
            "#!/bin/sh\n"
            f"WORLDLAND_FAKE_LOG={shlex.quote(str(directory))} "
            f"PYTHONPATH={shlex.quote(str(REPO))} exec {shlex.quote(sys.executable)} "
            f'-m tests.support.fakesystem {name} "$@"\n'
        )
        wrapper.chmod(0o755)
    return directory


def calls(directory: Path) -> list[str]:
    log = directory / "calls.log"
    return log.read_text().splitlines() if log.exists() else []


# More fakes live in modules of their own (one per area of join); each registers its tools
# in TOOLS and its packages with add_package when imported. A module not written yet is
# simply absent.
PLUGINS = (
    "tests.support.fakes_gpu",
    "tests.support.fakes_containerd",
    "tests.support.fakes_node",
    "tests.support.fakes_sudo",
)


def load_plugins() -> None:
    import importlib

    for module in PLUGINS:
        try:
            importlib.import_module(module)
        except ModuleNotFoundError as e:
            if e.name != module:
                raise


def main(argv: list[str]) -> int:
    load_plugins()
    name, args = argv[0], argv[1:]
    root = Path(os.environ[ROOT_ENV])
    with (Path(os.environ["WORLDLAND_FAKE_LOG"]) / "calls.log").open("a") as log:
        log.write(shlex.join([name, *args]) + "\n")
    try:
        return TOOLS[name](root, args)
    except Unexpected:
        print(f"fake {name}: unexpected arguments: {shlex.join(args)}", file=sys.stderr)
        return 64


if __name__ == "__main__":
    # Run as the module the plugins import (tests.support.fakesystem), not as __main__: a
    # plugin registers its tools and packages in that module's TOOLS and PACKAGES.
    from tests.support import fakesystem

    raise SystemExit(fakesystem.main(sys.argv[1:]))
