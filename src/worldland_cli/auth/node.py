"""`worldland register`: describe this machine's GPUs to the hub and remember the node id.

The GPU list comes from NVML (through Host.nvml), with the seed's ``-gpu-type`` and
``-memory-gb`` overriding what it reports; a machine without a visible GPU can only register
with both overrides, since a node that offers nothing cannot be rented. Registration is
idempotent on the hub (same wallet, host and GPU UUIDs -> same node id), so running it again
after a change of price or a reinstall is safe.
"""

from __future__ import annotations

import datetime as dt
import json
import socket
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from worldland_cli import config as config_mod
from worldland_cli.errors import ActionableError, ExitCode
from worldland_cli.host import Host, NvmlUnavailable
from worldland_cli.hubclient import Gpu, HubClient
from worldland_cli.times import format_time

MIB_PER_GB = 1024


class RegisterError(ActionableError):
    exit_code = ExitCode.FAILED


@dataclass(frozen=True)
class NodeRecord:
    """What node.json keeps: the daemon and `join` need the id and the hub it belongs to.

    ``price_per_sec_wei`` is the price the hub registered, which the daemon must bill at
    (the hub refuses any other); None in a node.json written before it was kept.
    """

    node_id: str
    hub: str
    host: str
    registered_at: str
    price_per_sec_wei: int | None = None


def _host(host: Host | None) -> Host:
    return host or Host(root=Path("/"))


def load_node(host: Host | None = None) -> NodeRecord | None:
    """The node saved by the last `worldland register`, or None."""
    text = _host(host).read_text(str(config_mod.node_file()))
    if not text:
        return None
    try:
        doc = json.loads(text)
        return NodeRecord(
            node_id=str(doc["node_id"]),
            hub=str(doc["hub"]),
            host=str(doc["host"]),
            registered_at=str(doc["registered_at"]),
            price_per_sec_wei=(
                int(doc["price_per_sec_wei"]) if "price_per_sec_wei" in doc else None
            ),
        )
    except (ValueError, KeyError, TypeError):
        return None


def save_node(record: NodeRecord, host: Host | None = None) -> Path:
    path = config_mod.node_file()
    doc: dict[str, str] = {
        "node_id": record.node_id,
        "hub": record.hub,
        "host": record.host,
        "registered_at": record.registered_at,
    }
    if record.price_per_sec_wei is not None:
        doc["price_per_sec_wei"] = str(record.price_per_sec_wei)
    _host(host).write_atomic(str(path), json.dumps(doc, indent=2) + "\n", mode=0o644)
    return path


def detect_gpus(
    host: Host, node_host: str, gpu_type: str | None = None, memory_gb: int | None = None
) -> list[Gpu]:
    """NVML's GPUs with the overrides applied; a GPU-less host needs both overrides."""
    try:
        gpus = host.nvml().gpus
        reason = "NVML reports no GPU"
    except NvmlUnavailable as e:
        gpus = ()
        reason = f"NVML is unavailable ({e})"
    if gpus:
        return [
            Gpu(
                name=gpu_type or g.name,
                memory_mib=memory_gb * MIB_PER_GB if memory_gb else g.memory_total_mib,
                uuid=g.uuid,
            )
            for g in gpus
        ]
    if gpu_type and memory_gb:
        # A stable stand-in UUID, so registering the same host again finds the same node.
        stand_in = uuid.uuid5(uuid.NAMESPACE_DNS, f"worldland-manual-gpu.{node_host}")
        return [Gpu(name=gpu_type, memory_mib=memory_gb * MIB_PER_GB, uuid=f"GPU-{stand_in}")]
    raise RegisterError(
        f"no GPU to register: {reason}",
        "install the NVIDIA driver (`worldland doctor` shows what is missing), or name the "
        "GPU yourself: --gpu-type 'Tesla T4' --memory-gb 16",
    )


def default_node_host(hub_url: str, host: Host | None = None) -> str:
    """The address this machine uses to reach the hub (its primary outbound IP).

    A UDP "connect" sends nothing; it only asks the kernel which source address the route
    to the hub would use. Falls back to the host name when there is no route.
    """
    parts = urlsplit(hub_url)
    target = parts.hostname or "127.0.0.1"
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        family = socket.AF_INET6 if ":" in target else socket.AF_INET
        with socket.socket(family, socket.SOCK_DGRAM) as probe:
            probe.connect((target, port))
            return str(probe.getsockname()[0])
    except OSError:
        return _host(host).hostname()


def register_node(
    client: HubClient,
    *,
    node_host: str,
    gpus: Sequence[Gpu],
    price_per_sec_wei: int,
    host: Host | None = None,
) -> tuple[NodeRecord, bool]:
    """Register (or update) this node; save node.json; return it and whether it was new."""
    result = client.register_node(node_host, gpus, price_per_sec_wei)
    record = NodeRecord(
        node_id=result.node_id,
        hub=client.url,
        host=node_host,
        registered_at=format_time(dt.datetime.now(dt.UTC)),
        price_per_sec_wei=price_per_sec_wei,
    )
    save_node(record, host)
    return record, result.created
