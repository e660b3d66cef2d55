"""A remote name that is not valid UTF-8 is skipped with a note, never guessed at.

SFTP v3 names are bytes, and a pod may hold ``caf\\xe9.txt`` (Latin-1) next to UTF-8 names.
asyncssh's strict decoding made one such name fail the whole listing with "Unable to decode
name", naming no file. Writing it under a substitute name could collide: ``a\\xfe`` and
``a\\xff`` both become ``a\\ufffd`` with replacement, which is also a real UTF-8 name. So such
an entry (a file, a whole directory, or a symlink whose target is undecodable) is skipped as
special files are: a note naming it escaped, a line under ``skipped`` in --json, and the
rest of the tree arrives. A remote path the renter names that is not UTF-8 is refused.
"""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path

from typer.testing import CliRunner

from tests.security.hostile_sftp import HostileServer, hostile_server
from tests.transfer.conftest import Hook, random_file, sha256_of
from worldland_cli.main import app
from worldland_cli.transfer.download import download
from worldland_cli.transfer.upload import upload

REPLACED = "a\ufffd.bin"  # a real UTF-8 name: what both undecodable names below would become
NOT_UTF8 = "a name that is not valid UTF-8"
# Skipped paths as Python and --json keep them: each undecodable byte a lone surrogate.
SKIPPED = {
    os.fsdecode(b"ckpt/caf\xe9.txt"): NOT_UTF8,
    os.fsdecode(b"ckpt/a\xfe.bin"): NOT_UTF8,
    os.fsdecode(b"ckpt/a\xff.bin"): NOT_UTF8,
    os.fsdecode(b"ckpt/d\xe9"): "a directory whose name is not valid UTF-8, with all it holds",
    "ckpt/latest": "a symlink whose target is not valid UTF-8",
}


def _latin1_tree(root: Path) -> Path:
    tree = root / "ckpt"
    random_file(tree / "weights.bin", 1000)
    random_file(tree / REPLACED, 100)
    raw = os.fsencode(tree)
    for name in (b"caf\xe9.txt", b"a\xfe.bin", b"a\xff.bin"):
        with open(raw + b"/" + name, "wb") as f:
            f.write(b"latin-1 " + name)
    os.mkdir(raw + b"/d\xe9")
    with open(raw + b"/d\xe9/inner.bin", "wb") as f:
        f.write(b"inside a directory with an undecodable name")
    os.symlink(b"caf\xe9.txt", raw + b"/latest")
    return tree


def _auth(pod: HostileServer) -> list[str]:
    return ["--identity", str(pod.client_key), "--known-hosts", str(pod.known_hosts)]


def test_undecodable_names_are_skipped_and_the_rest_arrives(tmp_path: Path) -> None:
    tree = _latin1_tree(tmp_path / "pod")
    back = tmp_path / "back"
    notes = Hook(1 << 62, lambda: None)
    with hostile_server(tmp_path / "keys") as pod:
        summary = asyncio.run(download(pod.location(tree), back, pod.creds, progress=notes))
    assert {s.path: s.reason for s in summary.skipped} == SKIPPED
    assert sorted(f.path for f in summary.files) == ["ckpt/a\ufffd.bin", "ckpt/weights.bin"]
    assert sorted(os.listdir(os.fsencode(back / "ckpt"))) == sorted(
        [b"weights.bin", REPLACED.encode()]
    )
    assert sha256_of(back / "ckpt" / REPLACED) == sha256_of(tree / REPLACED)
    assert f"skipping ckpt/caf\\udce9.txt: {NOT_UTF8} (rename it on the pod)" in notes.notes


def test_people_see_the_skipped_names_escaped_and_json_lists_them(tmp_path: Path) -> None:
    tree = _latin1_tree(tmp_path / "pod")
    with hostile_server(tmp_path / "keys") as pod:
        told = CliRunner().invoke(app, ["receive", pod.url(tree), str(tmp_path / "a"), *_auth(pod)])
        listed = CliRunner().invoke(
            app, ["receive", pod.url(tree), str(tmp_path / "b"), "--json", *_auth(pod)]
        )
    assert told.exit_code == 0, told.output
    assert f"skipped ckpt/caf\\udce9.txt: {NOT_UTF8}" in told.stdout
    assert all(line.isprintable() for line in told.stdout.splitlines())
    assert listed.exit_code == 0, listed.output
    assert listed.stdout.isascii()
    doc = json.loads(listed.stdout)
    assert {s["path"]: s["reason"] for s in doc["skipped"]} == SKIPPED


def test_a_remote_path_that_is_not_utf8_is_refused_in_words(tmp_path: Path) -> None:
    # Typed (or registered for a code) with undecodable bytes, which Python keeps as lone
    # surrogates: asyncssh could not encode it and the CLI ended in a traceback.
    src = os.fsencode(tmp_path / "pod")
    os.makedirs(src)
    with open(src + b"/caf\xe9.bin", "wb") as f:
        f.write(b"latin-1")
    with hostile_server(tmp_path / "keys") as pod:
        path = os.fsdecode(src + b"/caf\xe9.bin")
        result = CliRunner().invoke(
            app, ["receive", pod.url(path), str(tmp_path / "b"), *_auth(pod)]
        )
    assert result.exit_code == 1, repr(result.exception)
    assert "caf\\udce9.bin is not valid UTF-8" in " ".join(result.output.split())
    assert not (tmp_path / "b").exists() or not any((tmp_path / "b").iterdir())


# Sending: the same tree, here on the renter's disk. asyncssh encodes every path as UTF-8, and
# one undecodable name ended `worldland send` in a UnicodeEncodeError traceback before a byte
# moved. It is skipped as receive skips one, with the same note and line in --json: the rest of
# the tree arrives, and no substitute name can land on another file's.
SEND_NOTE = f"skipping ckpt/caf\\udce9.txt: {NOT_UTF8} (rename it to send it)"


def test_sending_skips_undecodable_names_and_the_rest_arrives(tmp_path: Path) -> None:
    tree = _latin1_tree(tmp_path / "mine")
    notes = Hook(1 << 62, lambda: None)
    with hostile_server(tmp_path / "keys") as pod:
        summary = asyncio.run(
            upload([tree], pod.location(tmp_path / "pod"), pod.creds, progress=notes)
        )
    assert {s.path: s.reason for s in summary.skipped} == SKIPPED
    assert sorted(f.path for f in summary.files) == ["ckpt/a\ufffd.bin", "ckpt/weights.bin"]
    assert sorted(os.listdir(os.fsencode(tmp_path / "pod" / "ckpt"))) == sorted(
        [b"weights.bin", REPLACED.encode()]
    )
    assert sha256_of(tmp_path / "pod" / "ckpt" / REPLACED) == sha256_of(tree / REPLACED)
    assert SEND_NOTE in notes.notes


def test_json_lists_the_names_send_skipped(tmp_path: Path) -> None:
    tree = _latin1_tree(tmp_path / "mine")
    with hostile_server(tmp_path / "keys") as pod:
        target = pod.url(tmp_path / "pod")
        result = CliRunner().invoke(app, ["send", str(tree), target, "--json", *_auth(pod)])
    assert result.exit_code == 0, repr(result.exception)
    assert result.stdout.isascii()
    doc = json.loads(result.stdout)
    assert {s["path"]: s["reason"] for s in doc["skipped"]} == SKIPPED
    assert sorted(f["path"] for f in doc["files"]) == ["ckpt/a\ufffd.bin", "ckpt/weights.bin"]


def test_a_path_or_remote_dir_that_is_not_utf8_is_refused_before_sending(tmp_path: Path) -> None:
    # Named on the command line, it cannot be sent under its own name, nor skipped quietly.
    raw = os.fsencode(tmp_path)
    with open(raw + b"/caf\xe9.bin", "wb") as f:
        f.write(b"latin-1")
    named = os.fsdecode(raw + b"/caf\xe9.bin")
    good = random_file(tmp_path / "good.bin", 10)
    with hostile_server(tmp_path / "keys") as pod:
        as_path = CliRunner().invoke(app, ["send", named, pod.url(tmp_path / "pod"), *_auth(pod)])
        as_dir = CliRunner().invoke(
            app, ["send", str(good), pod.url(os.fsdecode(raw + b"/d\xe9")), *_auth(pod)]
        )
    assert as_path.exit_code == 1, repr(as_path.exception)
    assert "caf\\udce9.bin is not valid UTF-8" in " ".join(as_path.output.split())
    assert as_dir.exit_code == 1, repr(as_dir.exception)
    assert "d\\udce9 is not valid UTF-8" in " ".join(as_dir.output.split())
    assert not (tmp_path / "pod").exists()
    assert not os.path.exists(raw + b"/d\xe9")
