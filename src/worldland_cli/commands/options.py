"""Every option that more than one command takes, defined once as an ``Annotated`` type.

A command declares ``hub: HubUrl = None`` and gets the same flag, metavar and help as every
other command that talks to a hub (dstack adds ``--project`` once, in ``APIBaseCommand``, for
all of its commands); a change of wording or of a default is made here, once.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

JsonFlag = Annotated[
    bool,
    typer.Option(
        "--json",
        help="Print one JSON document on stdout (failures too) instead of text.",
    ),
]

# ------------------------------------------------------------------------- hub and wallet

HubUrl = Annotated[
    str | None,
    typer.Option("--hub", metavar="URL", help="Hub URL (default: WORLDLAND_HUB, config, :8080)."),
]
HubCa = Annotated[
    str | None,
    typer.Option("--hub-ca", metavar="FILE", help="CA bundle for a TLS hub (WORLDLAND_HUB_CA)."),
]
KeyFile = Annotated[
    str | None,
    typer.Option(
        "--private-key-file",
        metavar="FILE",
        help="Wallet key file, mode 0600 (default ~/.worldland/private-key.txt).",
    ),
]
SiweDomain = Annotated[
    str | None,
    typer.Option(
        "--siwe-domain",
        metavar="DOMAIN",
        help="The hub's SIWE domain (host:port of --hub); refuse to sign in elsewhere.",
    ),
]
CertDir = Annotated[
    str | None,
    typer.Option(
        "--cert-dir", metavar="DIR", help="node.key/node.crt/ca.crt (~/.worldland/certs)."
    ),
]

# ---------------------------------------------------------------------- changing the host

AssumeYes = Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")]
DryRun = Annotated[
    bool, typer.Option("--dry-run", help="Print what would be done; change nothing.")
]

# ------------------------------------------------------------------------ doctor and diag

Root = Annotated[
    Path,
    typer.Option(
        "--root",
        metavar="DIR",
        file_okay=False,
        exists=True,
        help="Inspect another root file system (an image being prepared), like dpkg --root.",
    ),
]
StepTimeout = Annotated[
    float,
    typer.Option("--timeout", min=0.1, metavar="SECONDS", help="Seconds each probe step may take."),
]

# ------------------------------------------------------------------------- send, receive

Identity = Annotated[
    Path | None,
    typer.Option(
        "--identity",
        "-i",
        metavar="KEY_FILE",
        help="Private key to log in with (default ~/.ssh/id_ed25519, then the ssh agent).",
    ),
]
KnownHosts = Annotated[
    Path | None,
    typer.Option(
        "--known-hosts",
        metavar="FILE",
        help="Trusted host keys for ssh:// targets (default ~/.ssh/known_hosts).",
    ),
]
Overwrite = Annotated[
    bool,
    typer.Option(
        "--overwrite",
        help="Replace files that exist at the destination with other content (files with the "
        "same size and sha256 are skipped either way).",
    ),
]
Retries = Annotated[
    int,
    typer.Option(
        "--retries",
        min=0,
        metavar="N",
        help="Reconnect this many times after a link that dropped mid-transfer (a first "
        "connection that fails is not retried).",
    ),
]
Exclude = Annotated[
    list[str] | None,
    typer.Option(
        "--exclude",
        metavar="PATTERN",
        help="Leave out what PATTERN matches, rsync's rules (repeatable): '*.pyc' or "
        "'__pycache__' (a name at any depth), 'cache/*.bin' (the end of a path), '/top/logs' "
        "(anchored at the sent or received directory), 'logs/' (directories only), '**' "
        "(across '/').",
    ),
]
TransferDryRun = Annotated[
    bool,
    typer.Option(
        "--dry-run",
        "-n",
        help="Say what would move and why (new, differs, partial; same: skipped) and move "
        "nothing; exit 1 if a real run would refuse something.",
    ),
]
Lanes = Annotated[
    int | None,
    typer.Option(
        "--lanes",
        min=1,
        max=16,
        metavar="N",
        help="Carry each file of 8 MiB and more over N SSH channels at once (default: from "
        "the measured round trip: 1 near, up to 8 on a long fat link).",
    ),
]
NoOpenssh = Annotated[
    bool,
    typer.Option(
        "--no-openssh",
        help="Carry every byte over the built-in SSH client instead of the system's ssh "
        "(used for files of 8 MiB and more when installed; slower).",
    ),
]
