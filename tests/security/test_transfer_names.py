"""Names a pod chose reach the renter's terminal escaped, never raw (item 20).

A name with ESC sequences, C1 controls or bidi overrides could retitle the terminal, redraw the
screen, or disguise a file's extension. Messages, notes and errors show such names escaped as
``ls -b`` does; --json keeps them raw, JSON-escaped by the encoder.
"""

from __future__ import annotations

import asyncio
import json
import stat
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tests.security.hostile_sftp import HostileServer, Lies, hostile_server
from tests.transfer.conftest import Hook, random_file
from worldland_cli.main import app
from worldland_cli.transfer.display import shown
from worldland_cli.transfer.download import download
from worldland_cli.transfer.lanes import LANE_MIN
from worldland_cli.transfer.model import Options

TITLE = "title\x1b]0;you were pwned\x07.bin"  # OSC: sets the terminal's window title
CSI = "\x9b2Jclear.bin"  # C1 CSI: erases the screen on terminals that take 8-bit controls
BIDI = "model\u202enib.exe"  # reads as "modelexe.bin" once the override flips it
RAW = ("\x1b", "\x07", "\x9b", "\u202e")


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("weights.bin", "weights.bin"),
        ("données-中文.pt", "données-中文.pt"),
        ("a\x1b[31mred", "a\\x1b[31mred"),
        ("bell\x07\n\t", "bell\\x07\\n\\t"),
        ("del\x7f", "del\\x7f"),
        ("c1\x9b\x85", "c1\\x9b\\x85"),
        ("bidi\u202e\u2066\u200f", "bidi\\u202e\\u2066\\u200f"),
        ("back\\slash", "back\\\\slash"),
        ("undecodable\udcff", "undecodable\\udcff"),
    ],
)
def test_shown_escapes_what_a_terminal_would_act_on(name: str, expected: str) -> None:
    assert shown(name) == expected
    assert shown(name).isprintable()


def _evil_tree(root: Path) -> Path:
    tree = root / "ckpt"
    for name in (TITLE, CSI, BIDI):
        random_file(tree / name, 100)
    random_file(tree / "fifo\x1b[2J", 0)
    return tree


def _lies(tree: Path) -> Lies:
    return Lies(modes={str(tree / "fifo\x1b[2J"): stat.S_IFIFO | 0o644})


def _auth(pod: HostileServer) -> list[str]:
    return ["--identity", str(pod.client_key), "--known-hosts", str(pod.known_hosts)]


def test_notes_about_remote_names_are_escaped(tmp_path: Path) -> None:
    tree = _evil_tree(tmp_path / "pod")
    notes = Hook(1 << 62, lambda: None)
    with hostile_server(tmp_path / "keys", _lies(tree)) as pod:
        asyncio.run(download(pod.location(tree), tmp_path / "back", pod.creds, Options(), notes))
    assert notes.notes == ["skipping ckpt/fifo\\x1b[2J: not a file, directory or symlink"]


def test_an_error_naming_remote_files_shows_them_escaped(tmp_path: Path) -> None:
    tree = _evil_tree(tmp_path / "pod")
    back = tmp_path / "back"
    for name in (TITLE, CSI, BIDI):
        random_file(back / "ckpt" / name, 10)  # already here: the refusal names them
    with hostile_server(tmp_path / "keys", _lies(tree)) as pod:
        result = CliRunner().invoke(app, ["receive", pod.url(tree), str(back), *_auth(pod)])
    assert result.exit_code == 1, result.output
    assert not any(c in result.output for c in RAW), repr(result.output)
    for name in (TITLE, CSI, BIDI):
        assert f"ckpt/{shown(name)}" in result.output


def test_json_keeps_the_raw_names_and_escapes_them_itself(tmp_path: Path) -> None:
    tree = _evil_tree(tmp_path / "pod")
    with hostile_server(tmp_path / "keys", _lies(tree)) as pod:
        result = CliRunner().invoke(
            app, ["receive", pod.url(tree), str(tmp_path / "back"), "--json", *_auth(pod)]
        )
    assert result.exit_code == 0, result.output
    assert result.stdout.isascii() and not any(c in result.stdout for c in RAW)
    paths = {f["path"] for f in json.loads(result.stdout)["files"]}
    assert paths == {f"ckpt/{name}" for name in (TITLE, CSI, BIDI)}


@pytest.mark.parametrize("size", [100, LANE_MIN], ids=["asyncssh", "openssh-lane"])
def test_a_refusal_the_pod_words_itself_is_shown_escaped(tmp_path: Path, size: int) -> None:
    src = random_file(tmp_path / "pod" / "model.bin", size)
    lies = Lies(refusals={str(src): "denied\x1b]0;you were pwned\x07\u202e"})
    with hostile_server(tmp_path / "keys", lies) as pod:
        result = CliRunner().invoke(
            app, ["receive", pod.url(src), str(tmp_path / "back"), "--retries", "0", *_auth(pod)]
        )
    assert result.exit_code == 1, result.output
    assert "denied\\x1b]0;you were pwned\\x07\\u202e" in result.output
    assert not any(c in result.output for c in RAW), repr(result.output)
