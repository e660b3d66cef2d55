"""NVIDIA Container Toolkit: what lets a container (and so a pod) see the GPU.

join adds NVIDIA's repository the way the seed and NVIDIA's install guide do (their key,
dearmored into the keyring the list's ``signed-by`` names) and installs the toolkit; see
:mod:`.apt_repo` for how that differs from the pasted pipeline doctor shows.
"""

from __future__ import annotations

import re

from worldland_cli.host import Host
from worldland_cli.join.actions import Action, InstallPackages
from worldland_cli.requirements.apt_repo import AptRepository, repository_actions
from worldland_cli.requirements.base import Finding, JoinSettings, Requirement

TOOLKIT_DOC = "provider-guide#container-toolkit"
# The seed README's repository setup and install, as one line a person can paste.
TOOLKIT_REMEDY = (
    "curl -fsSL https://nvidia.github.io/libnvidia-container/gpgkey | "
    "sudo gpg --dearmor -o /usr/share/keyrings/nvidia-container-toolkit-keyring.gpg && "
    "curl -s -L https://nvidia.github.io/libnvidia-container/stable/deb/"
    "nvidia-container-toolkit.list | "
    "sed 's#deb https://#deb [signed-by=/usr/share/keyrings/"
    "nvidia-container-toolkit-keyring.gpg] https://#g' | "
    "sudo tee /etc/apt/sources.list.d/nvidia-container-toolkit.list && "
    "sudo apt-get update && sudo apt-get install -y nvidia-container-toolkit"
)
KEY_URL = "https://nvidia.github.io/libnvidia-container/gpgkey"
KEYRING = "/usr/share/keyrings/nvidia-container-toolkit-keyring.gpg"
LIST = "/etc/apt/sources.list.d/nvidia-container-toolkit.list"
_VERSION = re.compile(r"version\s+v?(\d+\.\d+(?:\.\d+)?\S*)", re.IGNORECASE)


class NvidiaCtk(Requirement):
    id = "toolkit.nvidia-ctk"
    title = "NVIDIA Container Toolkit installed"

    def check(self, host: Host) -> Finding:
        res = host.run(["nvidia-ctk", "--version"])
        if res.not_found:
            return self.fail("nvidia-ctk not found", TOOLKIT_REMEDY, TOOLKIT_DOC)
        if not res.ok:
            return self.fail(res.describe_failure(), TOOLKIT_REMEDY, TOOLKIT_DOC)
        match = _VERSION.search(res.stdout)
        if match is None:
            first = res.stdout.strip().splitlines()[:1]
            return self.warn(
                f"nvidia-ctk answered but printed no version: {first[0] if first else ''!r}",
                TOOLKIT_REMEDY,
            )
        return self.ok(f"nvidia-ctk {match.group(1)}", version=match.group(1))

    def plan(self, host: Host, finding: Finding, settings: JoinSettings) -> list[Action]:
        from worldland_cli.templating import render

        repository = AptRepository(
            KEY_URL, KEYRING, LIST, render("nvidia-container-toolkit.list", keyring=KEYRING)
        )
        return [
            *repository_actions(host, repository),
            InstallPackages(("nvidia-container-toolkit",), update=True),
        ]
