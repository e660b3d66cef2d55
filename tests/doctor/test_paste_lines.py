"""Long fixes are broken into lines a shell reads back as the same command."""

from __future__ import annotations

import re
import shlex
import subprocess

import pytest

from worldland_cli.join.actions import Manual, WriteFile
from worldland_cli.output import comment_lines, paste_lines
from worldland_cli.requirements.kube import GPU_REMEDY, INSTALL_REMEDY
from worldland_cli.requirements.toolkit import TOOLKIT_REMEDY

QUOTED = "printf '%s\\n' 'a b   c' \"d  e\" && echo one\\ two   # says what it did, at length"


@pytest.mark.parametrize("command", [TOOLKIT_REMEDY, INSTALL_REMEDY, GPU_REMEDY, QUOTED])
def test_broken_lines_fit_and_read_back_as_the_one_line(command: str) -> None:
    lines = paste_lines(command, 40 if command is QUOTED else 80)
    assert len(lines) > 1
    # Only a line holding a word that no line could hold is wider than the terminal.
    overlong = [line for line in lines if len(line) > 80]
    words = [shlex.split(line.removesuffix(" \\")) for line in overlong]
    assert all(max(len(word) for word in ws) > 74 for ws in words), overlong
    code = [line for line in lines if not line.startswith("#")]
    assert all(line.endswith(" \\") for line in code[:-1])
    joined = "\n".join(code)
    check = subprocess.run(["/bin/sh", "-n", "-c", joined], capture_output=True, text=True)
    assert check.returncode == 0, check.stderr
    # What sh reads once it has removed each backslash-newline: the one line's words.
    one_line = command.split("   #")[0]
    assert re.sub(r" \\\n +", " ", joined) == one_line.rstrip()


def test_a_broken_command_does_what_the_one_line_does() -> None:
    run = [
        subprocess.run(["/bin/sh", "-c", text], capture_output=True, text=True).stdout
        for text in (QUOTED, "\n".join(paste_lines(QUOTED, 30)))
    ]
    assert run[0] == run[1] == "a b   c\nd  e\none two\n"


def test_a_trailing_comment_moves_above_the_command() -> None:
    lines = paste_lines(QUOTED, 40)
    assert lines[0].startswith("# says what it did")
    assert not any("#" in line for line in lines[lines.index(lines[-1]) :] if "'" not in line)


def test_a_here_document_body_is_printed_as_it_is() -> None:
    text = "deb [signed-by=/k.gpg] " + "https://example.org/" + "x" * 90 + " /\n"
    write = WriteFile("/etc/apt/sources.list.d/example-repository.list", text, 0o644)
    lines = paste_lines(write.as_shell(), 60)
    assert lines[-2:] == [text.rstrip("\n"), "EOF"]
    assert all(len(line) <= 60 for line in lines[:-2])


def test_a_here_document_delimiter_is_not_a_line_of_the_file() -> None:
    shell = WriteFile("/etc/x.conf", "EOF\nEOF_\nrest\n").as_shell()
    assert shell.startswith("sudo install -D -m 644 /dev/stdin /etc/x.conf <<'EOF__'\n")
    assert shell.endswith("\nrest\nEOF__")


def test_words_for_a_person_are_comments_and_a_remedy_is_a_command() -> None:
    words = Manual("reboot, then look at dmesg\nfor the module's errors").as_shell()
    assert words == "# reboot, then look at dmesg\n# for the module's errors"
    assert Manual("sudo reboot", command=True).as_shell() == "sudo reboot"


def test_comment_lines_wrap_and_keep_long_words_whole() -> None:
    lines = comment_lines("2. containerd.systemd-cgroup: /etc/containerd/" + "x" * 90, 40)
    assert lines[0] == "# 2. containerd.systemd-cgroup:"
    assert lines[1].startswith("#   /etc/containerd/")
