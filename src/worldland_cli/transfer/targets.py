"""Parsing of the places a transfer goes to or comes from: ssh:// URLs, pods, codes.

Kept free of network imports so the command can validate its arguments before paying for
asyncssh's import.

How an argument is read (docs/transfer.md, "Which argument is what"):

* ``ssh://...`` is always an ssh URL.
* A code is four digits and five lowercase words, ``4817-cactus-walrus-ember-quill-topaz``;
  it never holds ``:`` or ``/``, so it cannot be mistaken for ``POD_ID:PATH`` or a path.
* ``POD_ID:PATH`` is text with a ``:`` and no ``/`` before it (scp's rule): a local file
  whose name holds a colon is written ``./name:x``.
* For ``send`` only, the last argument may be a bare ``POD_ID`` (meaning ``/workspace``)
  when no local file or directory has that name; ``send`` with one argument is code mode.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

DEFAULT_POD_DIR = "/workspace"
_CODE = re.compile(r"^[0-9]{4}(-[a-z]+){5}$")
CODE_SHAPE = "four digits and five lowercase words, e.g. 4817-cactus-walrus-ember-quill-topaz"
_POD_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")


class TargetError(ValueError):
    """A TARGET/SOURCE argument that cannot be understood (a usage error)."""


@dataclass(frozen=True)
class SshLocation:
    """Where to connect and which remote path; ``host_key`` pins the key when known."""

    host: str
    port: int
    user: str
    path: str
    host_key: str | None = None

    def display(self) -> str:
        return f"ssh://{self.user}@{self.host}:{self.port}{self.path}"


@dataclass(frozen=True)
class PodLocation:
    """A pod known to the hub and a path inside it."""

    pod_id: str
    path: str


def is_ssh_url(text: str) -> bool:
    return text.startswith("ssh://")


def is_code(text: str) -> bool:
    """runpodctl-style one-time codes, ``NNNN-word-word-word-word-word``: the hub's shape.

    Only the hub makes codes (53.6 bits each), so this is the one shape a code can have.
    """
    return bool(_CODE.match(text))


def is_pod_id(text: str) -> bool:
    return bool(_POD_ID.match(text))


def is_pod_spec(text: str) -> bool:
    """``POD_ID:PATH``: a colon with no slash before it (``./a:b`` is a local path)."""
    colon = text.find(":")
    return colon > 0 and "/" not in text[:colon] and not is_ssh_url(text)


def split_send_args(
    args: list[str], exists: Callable[[str], bool] = os.path.lexists
) -> tuple[list[str], str | None]:
    """The PATHs and the TARGET of ``send PATH... [TARGET]``; no TARGET means code mode.

    The last of two or more arguments is the target when it is an ssh:// URL, a
    ``POD_ID:DIR``, or a bare POD_ID that names no local file; one argument is a PATH.
    """
    if not args:
        raise TargetError("give a PATH to send")
    last = args[-1]
    looks_remote = is_ssh_url(last) or is_pod_spec(last)
    if len(args) == 1:
        if looks_remote:
            raise TargetError(
                f"{last!r} looks like a TARGET, but no PATH to send was given "
                "(a local file whose name holds ':' is written ./NAME)"
            )
        return [last], None
    if looks_remote or (is_pod_id(last) and not exists(last)):
        return args[:-1], last
    raise TargetError(
        f"{last!r} is a local path, not a TARGET: end with POD_ID[:DIR] or "
        "ssh://USER@HOST:PORT/DIR; without a TARGET (code mode) send exactly one file"
    )


def parse_source(text: str, default_user: str) -> SshLocation | PodLocation | str:
    """``receive``'s SOURCE: an ssh:// URL, ``POD_ID:REMOTE_PATH``, or a code (returned as is)."""
    if is_ssh_url(text):
        return parse_ssh_url(text, default_user)
    if is_code(text):
        return text
    if ":" not in text:
        raise TargetError(
            f"{text!r} is neither a code ({CODE_SHAPE}) nor POD_ID:REMOTE_PATH "
            "nor ssh://USER@HOST:PORT/REMOTE_PATH"
        )
    return parse_pod(text, default_path=None)


def parse_ssh_url(text: str, default_user: str) -> SshLocation:
    """``ssh://USER@HOST:PORT/PATH``; user and port are optional, the path must be absolute."""
    parts = urlsplit(text)
    if parts.scheme != "ssh" or not parts.hostname:
        raise TargetError(f"{text!r} is not an ssh://USER@HOST:PORT/PATH URL")
    try:
        port = parts.port or 22
    except ValueError as e:
        raise TargetError(f"{text!r}: the port must be a number from 1 to 65535") from e
    path = unquote(parts.path)
    if not path.startswith("/"):
        raise TargetError(f"{text!r}: give an absolute remote path, e.g. ssh://host:22/workspace")
    return SshLocation(
        host=parts.hostname,
        port=port,
        user=unquote(parts.username) if parts.username else default_user,
        path=path,
    )


def parse_pod(text: str, *, default_path: str | None) -> PodLocation:
    """``POD_ID[:PATH]``; a relative PATH is taken inside /workspace, as renters expect."""
    pod_id, sep, path = text.partition(":")
    if not is_pod_id(pod_id):
        raise TargetError(f"{text!r} is not POD_ID[:PATH], an ssh:// URL or a transfer code")
    if not sep or not path:
        if default_path is None:
            raise TargetError(f"{text!r}: say which file, e.g. {pod_id}:/workspace/model.pt")
        path = default_path
    if not path.startswith("/"):
        path = f"{DEFAULT_POD_DIR}/{path}"
    return PodLocation(pod_id=pod_id, path=path)
