"""`worldland register`: log in if needed, register this GPU node, bootstrap its certificate.

Its output mirrors the seed node's log ("GPU detected: ...", "SIWE authentication
successful", "Node registered: ...", "Bootstrap certificates saved to ..."). The hub needs
the node id before it signs a certificate, so registration comes first.
"""

from __future__ import annotations

import typer

from worldland_cli.commands.common import (
    done,
    handled,
    wants_json,
)
from worldland_cli.commands.options import CertDir, HubCa, HubUrl, JsonFlag, KeyFile, SiweDomain


def register(
    ctx: typer.Context,
    hub: HubUrl = None,
    hub_ca: HubCa = None,
    siwe_domain: SiweDomain = None,
    private_key_file: KeyFile = None,
    node_host: str | None = typer.Option(
        None,
        "--host",
        metavar="ADDRESS",
        help="Address renters reach this node at (default: the primary outbound IP).",
    ),
    gpu_type: str | None = typer.Option(
        None,
        "--gpu-type",
        metavar="MODEL",
        help="GPU model to register (default: what NVML reports).",
    ),
    memory_gb: int | None = typer.Option(
        None,
        "--memory-gb",
        min=1,
        metavar="GB",
        help="GPU memory in GB (default: what NVML reports).",
    ),
    price_per_sec: int | None = typer.Option(
        None,
        "--price-per-sec",
        min=0,
        metavar="WEI",
        help="Price per GPU-second in wei (1000000000).",
    ),
    cert_dir: CertDir = None,
    json_output: JsonFlag = False,
) -> None:
    """Register this machine's GPUs with the hub and fetch its mTLS certificate; idempotent.

    Exit status: 0 registered, 1 failed (e.g. no GPU), 3 hub unreachable, 4 not logged in.
    """
    as_json = wants_json(ctx, json_output)
    with handled(as_json):
        from pathlib import Path

        from worldland_cli import config
        from worldland_cli.auth.certs import ensure_certificate
        from worldland_cli.auth.node import default_node_host, detect_gpus, register_node
        from worldland_cli.auth.relogin import authenticated_client
        from worldland_cli.auth.session import Session
        from worldland_cli.host import Host
        from worldland_cli.hubclient import HubEndpoint

        cfg = config.load()
        endpoint = HubEndpoint.from_config(cfg, hub, hub_ca)
        chosen_host = cfg.get("host", node_host) or default_node_host(endpoint.url)
        gpus = detect_gpus(
            Host(root=Path("/")),
            chosen_host,
            gpu_type=cfg.get("gpu_type", gpu_type),
            memory_gb=cfg.get_int("memory_gb", memory_gb),
        )
        lines = [f"GPU detected: {g.name} ({round(g.memory_mib / 1024)} GB)" for g in gpus]

        def announce(_: Session) -> None:
            lines.append("SIWE authentication successful")

        price = cfg.get_int("price_per_sec", price_per_sec) or 0
        client, session = authenticated_client(
            cfg,
            hub=hub,
            hub_ca=hub_ca,
            private_key_file=private_key_file,
            siwe_domain=siwe_domain,
            on_login=announce,
        )
        with client:
            record, created = register_node(
                client, node_host=chosen_host, gpus=gpus, price_per_sec_wei=price
            )
        lines.append(f"Node registered: {record.node_id}")
        outcome = ensure_certificate(
            endpoint, record.node_id, cert_dir=cfg.cert_dir(cert_dir), token=session.token
        )
        if outcome.action == "kept":
            lines.append(f"Certificates in {outcome.status.cert_dir} are valid; kept")
        else:
            lines.append(f"Bootstrap certificates saved to {outcome.status.cert_dir}")
        done(
            as_json,
            {
                "node_id": record.node_id,
                "created": created,
                "hub": record.hub,
                "host": chosen_host,
                "address": session.address,
                "gpus": [g.to_json() for g in gpus],
                "price_per_sec_wei": str(price),
                "certificates": {"action": outcome.action, **outcome.status.to_json()},
            },
            lines,
        )
