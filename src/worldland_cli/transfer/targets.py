"""Parsing of the places a transfer goes to or comes from: ssh:// URLs, pods, codes.

Kept free of network imports so the command can validate its arguments before paying for
asyncssh's import.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

DEFAULT_POD_DIR = "/workspace"
_CODE = re.compile(r"^[0-9]{1,8}(-[a-z]+){1,8}$")
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
    """runpodctl-style one-time codes: digits then words, e.g. 8338-galileo-collect-fidel."""
    return bool(_CODE.match(text))


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
    if not _POD_ID.match(pod_id):
        raise TargetError(f"{text!r} is not POD_ID[:PATH], an ssh:// URL or a transfer code")
    if not sep or not path:
        if default_path is None:
            raise TargetError(f"{text!r}: say which file, e.g. {pod_id}:/workspace/model.pt")
        path = default_path
    if not path.startswith("/"):
        path = f"{DEFAULT_POD_DIR}/{path}"
    return PodLocation(pod_id=pod_id, path=path)
