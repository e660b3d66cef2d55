"""Pods and one-time codes through the hub: where a pod's sshd is, and which key it must show.

The hub is the only source of a pod's address and host key (``GET /v1/pods/{id}/ssh``, or the
``ssh`` part of a claimed code), so the :class:`SshLocation` built here always carries that
key: the session then accepts exactly it and refuses anything else, never known_hosts and
never a key seen for the first time.

The hub's 404/409/410 answers are turned into messages that say what happened to *this* pod
or code and what to do, rather than the raw HTTP detail; everything else (unreachable,
refused login) stays the hub client's own error, which already carries its hint and exit code.
"""

from __future__ import annotations

import datetime as dt
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from worldland_cli.hubclient import HubRejected, PodSsh
from worldland_cli.times import format_time
from worldland_cli.transfer.errors import TransferError
from worldland_cli.transfer.localfs import offered_digest
from worldland_cli.transfer.model import Registered
from worldland_cli.transfer.targets import CODE_SHAPE, PodLocation, SshLocation

if TYPE_CHECKING:
    from worldland_cli.hubclient import HubClient


def pinned(ssh: PodSsh, path: str) -> SshLocation:
    """The pod's sshd with the hub's host key pinned, at ``path``."""
    return SshLocation(
        host=ssh.host, port=ssh.port, user=ssh.user, path=path, host_key=ssh.host_key
    )


def pod_location(client: HubClient, pod: PodLocation, renter: str) -> SshLocation:
    """Ask the hub where ``pod`` is, as the logged-in renter ``renter``."""
    try:
        ssh = client.pod_ssh(pod.pod_id)
    except HubRejected as e:
        if e.status == 404:
            raise TransferError(
                f"the hub knows no pod {pod.pod_id} rented by {renter}",
                "check the pod id, and that you are logged in with the wallet that rents it "
                "(`worldland whoami`)",
            ) from None
        raise
    return pinned(ssh, pod.path)


@dataclass(frozen=True)
class Offer:
    """A file registered under a code: what ``send`` in code mode prints."""

    code: str
    expires_at: dt.datetime
    pod_id: str
    path: str
    name: str
    size: int
    sha256: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "code": self.code,
            "expires_at": format_time(self.expires_at),
            "pod_id": self.pod_id,
            "path": self.path,
            "name": self.name,
            "size": self.size,
            "sha256": self.sha256,
        }


def _digest(path: Path) -> tuple[int, str]:
    """Size and sha256 of one regular file, both from the same open handle."""
    try:
        found = offered_digest(path)
    except IsADirectoryError:  # open() refuses a directory before anything is read
        raise TransferError(
            f"{path} is a directory; a code carries one file",
            f"pack it first (tar cf {path.name}.tar {path}), or send it to a pod: "
            f"worldland send {path} POD_ID:/workspace",
        ) from None
    except FileNotFoundError:
        raise TransferError(f"{path} does not exist") from None
    except PermissionError:
        raise TransferError(f"cannot read {path}: permission denied") from None
    if found is None:
        raise TransferError(f"{path} is not a regular file; a code carries one file")
    return found


def offer_file(client: HubClient, pod_id: str, source: Path, renter: str) -> Offer:
    """Register ``source`` (a file inside the pod ``pod_id``) with the hub for a code.

    The pod is looked up first so a wrong id fails before a large file is hashed. The path
    registered is resolved, since a receiver refuses a code that names a symlink (a code
    carries one regular file), and the name registered is the one the sender typed, which
    the receiver saves it under; the pod's sshd sees the same file system as this shell.
    """
    pod_location(client, PodLocation(pod_id=pod_id, path="/"), renter)
    typed = Path(os.path.abspath(source))
    path = Path(os.path.realpath(typed))
    size, sha256 = _digest(path)
    made = client.create_transfer(pod_id, str(path), typed.name, size, sha256)
    return Offer(
        code=made.code,
        expires_at=made.expires_at,
        pod_id=pod_id,
        path=str(path),
        name=typed.name,
        size=size,
        sha256=sha256,
    )


@dataclass(frozen=True)
class Claim:
    """A claimed code: where to download from (pinned) and the file its sender registered."""

    code: str
    pod_id: str
    location: SshLocation
    registered: Registered


def claim_code(client: HubClient, code: str) -> Claim:
    """Spend ``code`` at the hub (it works once) and say where its file is."""
    try:
        got = client.claim_transfer(code)
    except HubRejected as e:
        detail = e.detail or ""
        if e.status == 410 and "expired" in detail:
            raise TransferError(
                f"code {code} has expired", "ask the sender to run `worldland send` again"
            ) from None
        if e.status == 410:
            raise TransferError(
                f"code {code} was already used; a code works only once",
                "ask the sender to run `worldland send` again for a new code",
            ) from None
        if e.status == 404:
            raise TransferError(
                f"unknown code {code}",
                f"check it ({CODE_SHAPE}), and that you use the sender's hub (--hub)",
            ) from None
        raise
    return Claim(
        code=got.code,
        pod_id=got.pod_id,
        location=pinned(got.ssh, got.path),
        registered=Registered(name=got.name, size=got.size, sha256=got.sha256),
    )
