"""Shell completion, through the real `worldland` process as a shell calls it.

The shell runs `worldland` with _WORLDLAND_COMPLETE set and the words typed so far
(typer's protocol: COMP_WORDS/COMP_CWORD for bash, _TYPER_COMPLETE_ARGS for zsh and fish);
what it prints is what the shell offers.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

BIN = Path(sys.executable).parent
WORLDLAND = str(BIN / "worldland")


def run(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [WORLDLAND, *args],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def bash(script: str, home: Path) -> subprocess.CompletedProcess[str]:
    """A non-interactive bash with `worldland` on PATH and HOME at ``home``."""
    env = {**os.environ, "HOME": str(home), "PATH": f"{BIN}:{os.environ['PATH']}"}
    return subprocess.run(
        ["bash", "--norc", "--noprofile", "-c", script],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.mark.parametrize(
    ("typed", "offered"),
    [("worldland dia", "diag"), ("worldland diag ce", "certs"), ("worldland completion z", "zsh")],
)
def test_bash_protocol_offers_commands_and_values(typed: str, offered: str) -> None:
    proc = run(
        {
            "_WORLDLAND_COMPLETE": "complete_bash",
            "COMP_WORDS": typed,
            "COMP_CWORD": str(len(typed.split(" ")) - 1),
        }
    )
    assert proc.returncode == 0, proc.stderr
    assert offered in proc.stdout.split(), proc.stdout


def test_zsh_protocol_offers_options_with_their_help() -> None:
    proc = run(
        {"_WORLDLAND_COMPLETE": "complete_zsh", "_TYPER_COMPLETE_ARGS": "worldland send --ov"}
    )
    assert proc.returncode == 0, proc.stderr
    assert "--overwrite" in proc.stdout and "Replace files" in proc.stdout


def test_the_printed_bash_script_completes_in_bash(tmp_path: Path) -> None:
    proc = bash(
        "source <(worldland completion bash) && COMP_WORDS=(worldland dia) && COMP_CWORD=1 && "
        '_worldland_completion worldland && printf "%s\\n" "${COMPREPLY[@]}"',
        tmp_path,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["diag"]


@pytest.mark.parametrize("shell", ["bash", "zsh", "fish", "powershell"])
def test_completion_prints_the_script_for_the_named_shell(shell: str) -> None:
    proc = run({}, "completion", shell)
    assert proc.returncode == 0, proc.stderr
    assert f"complete_{shell}" in proc.stdout
    doc = json.loads(run({}, "completion", shell, "--json").stdout)
    assert doc["ok"] is True and doc["script"] == proc.stdout.rstrip("\n")


def test_an_unknown_shell_is_a_usage_error() -> None:
    proc = run({}, "completion", "tcsh")
    assert proc.returncode == 2
    assert "'tcsh' is not one of" in proc.stderr


def test_typer_options_install_for_the_shell_they_run_in(tmp_path: Path) -> None:
    # typer asks which shell runs `worldland`: bash must stay its parent, not exec it as
    # the last command (then the parent would be whatever ran bash: make's sh, pytest).
    shown = bash("worldland --show-completion; exit $?", tmp_path)
    assert shown.returncode == 0, shown.stderr
    assert "_WORLDLAND_COMPLETE=complete_bash" in shown.stdout
    installed = bash("worldland --install-completion; exit $?", tmp_path)
    assert installed.returncode == 0, installed.stderr
    script = tmp_path / ".bash_completions" / "worldland.sh"
    assert script.read_text().strip() == shown.stdout.strip()
    assert f"source '{script}'" in (tmp_path / ".bashrc").read_text()
