"""The transfer bench counts a far-side process that outlives its session (bench/_common.py).

worldland's far-side helper ends a moment after sshd reaped its session; it then went to
init, and no figure but the machine's counted its CPU (its last sha256 range among it). Run
in a child interpreter: being a subreaper changes where every orphan of a process goes.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent

# A shell that leaves behind a python burning ~0.3 s of CPU after the shell has exited, as
# the helper outlives its sshd session; then settle() as the bench calls it after a run.
SCRIPT = """
import subprocess, sys, time
sys.path.insert(0, sys.argv[1])
from bench import _common
class Server:  # what settle() asks of the sshd: its sessions (none left) and its pid
    process = subprocess.Popen(["sleep", "30"])
    def session_pids(self):
        return []
if sys.argv[2] == "adopt":
    _common.adopt_orphans()
burn = "import time; t = time.process_time()\\nwhile time.process_time() - t < 0.3: pass"
subprocess.run(["sh", "-c", f"{sys.executable} -c '{burn}' & exit 0"], check=True)
print(round(_common.settle(Server(), timeout=10), 2))
Server.process.kill()
"""


@pytest.mark.parametrize(("mode", "counted"), [("adopt", True), ("plain", False)])
def test_a_process_that_outlives_its_parent_is_counted(mode: str, counted: bool) -> None:
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(REPO), mode],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    seconds = float(done.stdout.strip())
    if counted:
        assert seconds >= 0.25  # the orphan's own CPU, waited for
    else:
        assert seconds == 0.0  # it went to init: nobody here could count it
