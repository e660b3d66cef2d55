"""`worldland register`: log in if needed, register this GPU node, bootstrap its certificate.

Parsing and rendering only; the workflow is :func:`worldland_cli.auth.provider.register_this_node`.
Its output follows the seed node's log ("SIWE authentication successful", "Node registered:
...", "Bootstrap certificates saved to ..."), and says where each registered value came from
("GPU 0: Tesla T4 (from --gpu-type), 15 GB (detected by NVML)"): the seed printed "GPU
detected" for a type the person had typed.
"""

from __future__ import annotations

import typer

from worldland_cli.commands.options import CertDir, HubCa, HubUrl, JsonFlag, KeyFile, SiweDomain
from worldland_cli.output import Result

# The flag that sets each value register reports the source of.
_FLAGS = {
    "gpu_type": "--gpu-type",
    "memory_gb": "--memory-gb",
    "host": "--host",
    "price_per_sec": "--price-per-sec",
}


def _origin(name: str, source: str) -> str:
    """Where a value came from, in words: "from --gpu-type", "detected by NVML"."""
    from worldland_cli.config import KEYS, config_file

    return {
        "flag": f"from {_FLAGS[name]}",
        "env": f"from {KEYS[name].env}",
        "file": f"from {config_file()}",
        "default": "the default",
        "nvml": "detected by NVML",
        "detected": "the address this machine reaches the hub from",
    }[source]


def register(
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
) -> Result:
    """Register this machine's GPUs with the hub and fetch its mTLS certificate; idempotent.

    \b
    Examples:
      worldland register                               # GPUs as NVML reports them
      worldland register --host 203.0.113.7 --price-per-sec 2000000000
      worldland register --gpu-type 'Tesla T4' --memory-gb 16   # no NVML here
      worldland register --hub https://hub.example.org:8443 --hub-ca ./hub-ca.crt --json

    Exit status: 0 registered, 1 failed (e.g. no GPU), 3 hub unreachable, 4 not logged in.
    """
    from worldland_cli import config
    from worldland_cli.auth.provider import register_this_node
    from worldland_cli.auth.relogin import SignIn

    registration = register_this_node(
        config.load(),
        SignIn(hub=hub, hub_ca=hub_ca, private_key_file=private_key_file, siwe_domain=siwe_domain),
        node_host=node_host,
        gpu_type=gpu_type,
        memory_gb=memory_gb,
        price_per_sec=price_per_sec,
        cert_dir=cert_dir,
    )
    said = {name: _origin(name, source) for name, source in registration.sources.items()}
    lines = []
    for index, g in enumerate(registration.gpus):
        name, memory = f"{g.name}", f"{round(g.memory_mib / 1024)} GB"
        if said["gpu_type"] == said["memory_gb"]:
            lines.append(f"GPU {index}: {name}, {memory} ({said['gpu_type']})")
        else:
            lines.append(
                f"GPU {index}: {name} ({said['gpu_type']}), {memory} ({said['memory_gb']})"
            )
    lines.append(f"Node address: {registration.node.host} ({said['host']})")
    lines.append(
        f"Price: {registration.price_per_sec_wei} wei per GPU-second ({said['price_per_sec']})"
    )
    if registration.signed_in:
        lines.append("SIWE authentication successful")
    lines.append(f"Node registered: {registration.node.node_id}")
    where = registration.certificate.status.cert_dir
    if registration.certificate.action == "kept":
        lines.append(f"Certificates in {where} are valid; kept")
    else:
        lines.append(f"Bootstrap certificates saved to {where}")
    return Result(registration.to_json(), lines)
