"""An apt repository with its signing key, added the seed's way but without a shell.

The seed (and NVIDIA's and Kubernetes' install guides) pipe ``curl`` into ``gpg --dearmor``
and ``echo``/``sed`` into ``tee``. join runs the same steps as separate commands and writes
the list itself, so every file is journaled before it changes and ``worldland reset``
removes it: the key is downloaded under the state directory (root's, not a predictable
/tmp name), dearmored into the keyring the list's ``signed-by`` names (``--batch --yes``: a
join run again overwrites it instead of asking), and the list written from templates/.
"""

from __future__ import annotations

import posixpath
from dataclasses import dataclass

from worldland_cli.host import Host
from worldland_cli.join.actions import Action, RunCommand, WriteFile, sha256_text, state_dir


@dataclass(frozen=True)
class AptRepository:
    """Where the key comes from, the keyring it goes to, and the list that names both."""

    key_url: str
    keyring: str
    list_path: str
    list_text: str

    @property
    def download(self) -> str:
        """Where the armored key is downloaded before it is dearmored."""
        stem = posixpath.splitext(posixpath.basename(self.keyring))[0]
        return posixpath.join(state_dir(), "downloads", f"{stem}.asc")


def repository_actions(host: Host, repository: AptRepository) -> list[Action]:
    """Fetch and dearmor the key, then write the list (unless it already says this)."""
    download = repository.download
    actions: list[Action] = [
        RunCommand(
            ("curl", "-fsSL", "--create-dirs", "-o", download, repository.key_url),
            files=(download,),
            summary=f"download the repository key {repository.key_url}",
        ),
        RunCommand(
            ("gpg", "--batch", "--yes", "--dearmor", "-o", repository.keyring, download),
            files=(repository.keyring,),
            summary=f"dearmor it into {repository.keyring}",
        ),
    ]
    current = host.read_text(repository.list_path)
    if current != repository.list_text:
        actions.append(
            WriteFile(
                repository.list_path, repository.list_text, mode=0o644, before=sha256_text(current)
            )
        )
    return actions
