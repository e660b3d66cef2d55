"""Stateful fakes of the system tools join drives, for a fake root (``WORLDLAND_FAKE_ROOT``).

Unlike the answer-table fakes of :mod:`tests.support.fakebin`, these change the fake root
the way the real tools change a machine: ``modprobe`` adds its module to /proc/modules,
``sysctl --system`` copies /etc/sysctl.d values into /proc/sys, ``swapoff -a`` empties
/proc/swaps. A join run against them ends with doctor's file-based checks green, and a
reset can be judged by hashing the root. Each call is appended to ``calls.log`` beside the
fakes; an unknown argument list fails with exit 64, so a changed command line breaks a test.

Install with :func:`install` (one small ``/bin/sh`` wrapper per tool that runs this module
with the test's own Python), then put the directory first on the PATH under test.
"""

from __future__ import annotations

import os
import shlex
import sys
from collections.abc import Callable, Sequence
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


TOOLS: dict[str, Tool] = {"modprobe": _modprobe, "sysctl": _sysctl, "swapoff": _swapoff}


def install(directory: Path, tools: Sequence[str] = tuple(TOOLS)) -> Path:
    """Write a wrapper for each of ``tools`` into ``directory``; return it (for PATH)."""
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


def main(argv: list[str]) -> int:
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
    raise SystemExit(main(sys.argv[1:]))
