"""One door for every command: one error handler, one --json envelope, one exit-code rule.

Whatever a command hits (a broken config.toml, a refused key file, a bad flag), a person gets
one line with a hint on stderr and a script gets one JSON document on stdout, never a Python
traceback and never plain text where JSON was asked for.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner, Result

from worldland_cli.main import app

# Commands that read config.toml before they do anything else.
READS_CONFIG = [
    ["diag", "network", "--timeout", "0.5"],
    ["diag", "certs"],
    ["doctor", "--only", "system.swap"],
    ["login"],
    ["whoami"],
    ["logout"],
    ["config", "show"],
    ["certs", "status"],
    ["certs", "bootstrap"],
    ["register"],
    ["earnings"],
    ["balance"],
    ["wallet", "address"],
    ["receive", "4417-abbey-acid-acorn-acre-actor"],
]


def cli(*args: str) -> Result:
    return CliRunner().invoke(app, list(args))


def envelope(result: Result) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(result.stdout)
    assert doc["ok"] is False, doc
    assert isinstance(doc["error"], str) and doc["error"], doc
    assert "hint" in doc, doc
    return doc


@pytest.mark.parametrize("argv", READS_CONFIG, ids=lambda a: " ".join(a[:2]))
def test_a_broken_config_is_one_hinted_line(argv: list[str], broken_config: Path) -> None:
    result = cli(*argv)
    assert not isinstance(result.exception, ValueError | KeyError), result.exception
    assert result.exit_code == 2, (result.exit_code, result.output)
    assert "Traceback" not in result.output
    assert result.stdout == ""
    assert f"error: {broken_config} is not valid TOML" in result.stderr
    assert "hint: " in result.stderr and f"{broken_config}.broken" in result.stderr


@pytest.mark.parametrize("argv", READS_CONFIG, ids=lambda a: " ".join(a[:2]))
def test_a_broken_config_under_json_is_the_envelope(argv: list[str], broken_config: Path) -> None:
    result = cli(*argv, "--json")
    assert result.exit_code == 2, (result.exit_code, result.output)
    doc = envelope(result)
    assert doc["error"].startswith(f"{broken_config} is not valid TOML")
    assert f"{broken_config}.broken" in doc["hint"]


@pytest.mark.parametrize(
    "argv",
    [
        ["doctor", "--json", "--only", "no-such-check"],
        ["--json", "doctor", "--timeout", "soon"],
        ["diag", "gpu", "--json", "--no-such-flag"],
        ["send", "--json"],
        ["receive", "--json", "not a code or a pod"],
        ["config", "set", "--json", "hub"],
        ["--json", "no-such-command"],
        ["diag", "fix", "--json", "cni", "--root", "/no/such/root"],
    ],
    ids=lambda a: " ".join(a),
)
def test_usage_errors_under_json_are_the_envelope(argv: list[str]) -> None:
    result = cli(*argv)
    assert result.exit_code == 2, (result.exit_code, result.output)
    doc = envelope(result)
    assert "--help" in doc["hint"]


def test_usage_errors_without_json_stay_click_text() -> None:
    result = cli("doctor", "--timeout", "soon")
    assert result.exit_code == 2
    assert result.stdout == ""
    assert "Usage: " in result.stderr and "Invalid value for '--timeout'" in result.stderr


def test_the_envelope_for_a_refused_key_file(tmp_path: Path) -> None:
    key = tmp_path / "key.txt"
    key.write_text("11" * 32)
    key.chmod(0o644)
    result = cli("wallet", "address", "--private-key-file", str(key), "--json")
    assert result.exit_code == 4
    assert envelope(result)["hint"] == f"chmod 600 {key}"


@pytest.mark.parametrize(
    ("argv", "code"),
    [
        (["doctor", "--only", "system.swap"], 0),
        (["diag", "certs"], 0),
        (["config", "show"], 0),
        (["wallet", "new"], 0),
        (["certs", "status"], 1),
    ],
    ids=lambda a: " ".join(a) if isinstance(a, list) else str(a),
)
def test_every_json_document_says_ok(argv: list[str], code: int, tmp_path: Path) -> None:
    if argv[0] == "doctor":
        argv = [*argv, "--root", str(tmp_path)]
    result = cli(*argv, "--json")
    assert result.exit_code == code, result.output
    doc = json.loads(result.stdout)
    assert doc["ok"] is (code == 0), doc
