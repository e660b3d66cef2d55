"""`worldland ...` command lines as docs and --help examples write them, checked against the app.

A line is cut at its comment, pipe or redirection; environment assignments and sudo in
front are dropped. What is left is run with `--help` appended: click parses every word
before the eager --help answers, so an unknown command or option fails (exit 2), while
placeholders such as FILE or POD_ID, which only a real run would check, pass.
"""

from __future__ import annotations

import re
import shlex

from typer.testing import CliRunner

from worldland_cli.main import app

_ASSIGNMENT = re.compile(r"^[A-Z_][A-Z0-9_]*=")
_STOP = {"|", "||", "&&", ";", ">", ">>", "<", "&"}


def worldland_argv(line: str) -> list[str] | None:
    """The arguments after `worldland` in ``line``, or None when it runs something else."""
    code = re.split(r"(?:^|\s)#", line, maxsplit=1)[0]
    lexer = shlex.shlex(code, posix=True, punctuation_chars="|&;<>")
    lexer.whitespace_split = True
    lexer.commenters = ""
    words = list(lexer)
    while words and (_ASSIGNMENT.match(words[0]) or words[0] == "sudo"):
        words.pop(0)
    if not words or words[0] != "worldland":
        return None
    args = []
    for word in words[1:]:
        if word in _STOP:
            break
        args.append(word)
    return args


def parse_failure(args: list[str]) -> str | None:
    """None when `worldland ARGS --help` parses; else what click said."""
    result = CliRunner().invoke(app, [*args, "--help"])
    return None if result.exit_code == 0 else result.output
