"""`worldland --help` must stay fast: no heavy library may be imported to print help.

Checked in a fresh interpreter (a subprocess), since this test process has imported
everything already.
"""

from __future__ import annotations

import json
import subprocess
import sys

HEAVY = (
    "kubernetes",
    "asyncssh",
    "eth_account",
    "httpx",
    "fastapi",
    "uvicorn",
)

PROBE = """
import contextlib, io, json, sys
from worldland_cli.main import app
out = io.StringIO()
with contextlib.redirect_stdout(out):
    try:
        app(["--help"], prog_name="worldland")
    except SystemExit as e:
        code = e.code
print(json.dumps({"code": code, "help": out.getvalue(), "modules": sorted(sys.modules)}))
"""


def test_help_imports_nothing_heavy() -> None:
    proc = subprocess.run(
        [sys.executable, "-c", PROBE], capture_output=True, text=True, timeout=60, check=True
    )
    result = json.loads(proc.stdout.splitlines()[-1])
    assert result["code"] == 0
    assert "doctor" in result["help"]
    loaded = {m.split(".")[0] for m in result["modules"]}
    assert sorted(loaded & set(HEAVY)) == []


def test_doctor_without_kubelet_conf_does_not_import_kubernetes() -> None:
    probe = (
        "import sys, tempfile\n"
        "from pathlib import Path\n"
        "from worldland_cli.host import Host\n"
        "from worldland_cli.requirements import all_requirements\n"
        "from worldland_cli.requirements.runner import run_checks\n"
        "root = Path(tempfile.mkdtemp())\n"
        "run_checks(Host(root, search_path=''), all_requirements(), timeout=5)\n"
        "print('kubernetes' in sys.modules)\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, check=True
    )
    assert proc.stdout.strip() == "False"
