"""`worldland pods`: the renter's pods from the hub, as `runpodctl get pod` lists them.

Without it a renter had to learn a pod's id elsewhere before `send` or `receive` could use it.
"""

from __future__ import annotations

from worldland_cli.commands.options import HubCa, HubUrl, JsonFlag
from worldland_cli.output import Result

COLUMNS = ("POD", "NODE", "GPU", "STATE", "SSH")


def pods(hub: HubUrl = None, hub_ca: HubCa = None, json_output: JsonFlag = False) -> Result:
    """List your pods: id, node, GPUs, state and SSH endpoint (the hub's view).

    STATE is what the hub knows from the pod's node: running (GPU time billed in the last
    5 minutes), placed (on an online node), node-offline, unplaced.

    \b
    Examples:
      worldland pods
      worldland pods --json | jq -r '.pods[] | select(.state == "running") | .pod_id'
      worldland send ./data POD_ID:/workspace   # then use a pod id from the list

    Exit status: 0 listed (none is fine), 3 hub unreachable, 4 not logged in.
    """
    from worldland_cli import config
    from worldland_cli.auth.relogin import SignIn, authenticated_client

    client, session = authenticated_client(config.load(), SignIn(hub=hub, hub_ca=hub_ca))
    with client:
        listed = client.list_pods()
    document = {
        "hub": client.shown_url,
        "address": session.address,
        "pods": [p.to_json() for p in listed],
    }
    if not listed:
        return Result(document, [f"No pods for {session.address} at {client.shown_url}."])
    rows = [
        (
            p.pod_id,
            p.node_id or "-",
            f"{p.gpu_count}x {p.gpu_model}" if p.gpu_model else "-",
            p.state,
            p.ssh,
        )
        for p in listed
    ]
    widths = [max(len(row[i]) for row in (COLUMNS, *rows)) for i in range(len(COLUMNS))]
    lines = [
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        for row in (COLUMNS, *rows)
    ]
    return Result(document, lines)
