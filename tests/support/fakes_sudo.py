"""``sudo`` on the fake host, for pasting doctor's fixes into a shell as a person would.

A plugin of :mod:`tests.support.fakesystem`. The command after ``sudo`` runs as if the
fake root were ``/``: the stateful fakes on the PATH already work on the root, and the
three commands doctor's fixes run that are not fakes are moved onto it:

- ``install [-D] -m MODE /dev/stdin PATH`` (a file written from a here-document): the real
  ``install`` with PATH under the root, reading this process's standard input;
- ``reboot``: what a reboot changes for join's steps (:func:`tests.support.fakes_gpu.reboot`:
  the reboot marks gone, the driver's kernel module loaded), and the shell goes on;
- ``worldland ...`` (join's own run of a step): this checkout's CLI with ``--root`` the
  fake root, as the person's ``worldland`` would work on their ``/``.

Anything else after ``sudo`` must be a fake (an unknown tool is exit 127, as a shell's).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

from tests.support import fakes_gpu
from tests.support.fakesystem import TOOLS, Unexpected

REAL_INSTALL = "/usr/bin/install"


def _install(root: Path, args: list[str]) -> int:
    *options, source, target = args
    if source != "/dev/stdin" or not target.startswith("/"):
        raise Unexpected
    moved = str(root / target.lstrip("/"))
    return subprocess.run([REAL_INSTALL, *options, source, moved], check=False).returncode


def _sudo(root: Path, args: list[str]) -> int:
    if not args or args[0].startswith("-"):
        raise Unexpected
    name, rest = args[0], args[1:]
    if name == "install":
        return _install(root, rest)
    if name == "reboot":
        fakes_gpu.reboot(root)
        return 0
    if name == "worldland":
        argv = [sys.executable, "-m", "worldland_cli.main", *rest, "--root", str(root)]
        return subprocess.run(argv, check=False).returncode
    found = shutil.which(name, path=os.environ.get("PATH", ""))
    if found is None:
        print(f"sudo: {name}: command not found", file=sys.stderr)
        return 127
    return subprocess.run([found, *rest], check=False).returncode


TOOLS["sudo"] = _sudo
