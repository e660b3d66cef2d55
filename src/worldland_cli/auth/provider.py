"""The provider's workflows behind ``worldland register`` and ``worldland certs``.

Each is a sequence of steps from the modules beside it (GPUs from NVML, a live login, the
node record, the certificate); the commands only parse flags and render what comes back,
so ``join`` and the daemon can run the same steps with the same guarantees. The hub needs
the node id before it signs a certificate, so registration always comes first.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from worldland_cli.auth.certs import CertOutcome, ensure_certificate
from worldland_cli.auth.node import (
    NodeRecord,
    RegisterError,
    default_node_host,
    detect_gpus,
    load_node,
    register_node,
)
from worldland_cli.auth.relogin import SignIn, authenticated_client, live_session
from worldland_cli.auth.session import Session
from worldland_cli.config import Config
from worldland_cli.host import Host
from worldland_cli.hubclient import Gpu

# Where a registered value came from: a setting's source (flag, env, file, default), or
# "nvml" (the GPU's own answer) and "detected" (the address the route to the hub leaves from).
ValueSource = Literal["flag", "env", "file", "default", "nvml", "detected"]


@dataclass(frozen=True)
class Registration:
    """What ``register`` did: the node, its GPUs, who registered it, and its certificate.

    ``sources`` says where gpu_type, memory_gb, host and price_per_sec came from, so a
    person who typed ``--gpu-type`` is not told the GPU was detected.
    """

    node: NodeRecord
    created: bool
    address: str
    gpus: list[Gpu]
    price_per_sec_wei: int
    signed_in: bool  # the session had to be made on the way (a silent login)
    certificate: CertOutcome
    sources: dict[str, ValueSource]

    def to_json(self) -> dict[str, Any]:
        return {
            "node_id": self.node.node_id,
            "created": self.created,
            "hub": self.node.hub,
            "host": self.node.host,
            "address": self.address,
            "gpus": [g.to_json() for g in self.gpus],
            "price_per_sec_wei": str(self.price_per_sec_wei),
            "source": dict(self.sources),
            "certificates": {
                "action": self.certificate.action,
                **self.certificate.status.to_json(),
            },
        }


def register_this_node(
    cfg: Config,
    sign_in: SignIn = SignIn(),
    *,
    node_host: str | None = None,
    gpu_type: str | None = None,
    memory_gb: int | None = None,
    price_per_sec: int | None = None,
    cert_dir: str | None = None,
    host: Host | None = None,
) -> Registration:
    """Detect the GPUs, log in if needed, register (idempotent), then keep a valid certificate.

    The GPUs are checked first: a machine with nothing to rent fails before anything is
    signed or sent. Values given as None fall back to the environment and config.toml.
    """
    endpoint = sign_in.endpoint(cfg)
    given = {
        "gpu_type": cfg.resolve("gpu_type", gpu_type),
        "memory_gb": cfg.resolve("memory_gb", memory_gb),
        "host": cfg.resolve("host", node_host),
        "price_per_sec": cfg.resolve("price_per_sec", price_per_sec),
    }
    unset: dict[str, ValueSource] = {"host": "detected", "gpu_type": "nvml", "memory_gb": "nvml"}
    sources: dict[str, ValueSource] = {
        name: setting.source if setting.value is not None else unset[name]
        for name, setting in given.items()
    }
    chosen_host = given["host"].value or default_node_host(endpoint.url)
    memory = given["memory_gb"].value
    gpus = detect_gpus(
        host or Host(),
        chosen_host,
        gpu_type=given["gpu_type"].value,
        memory_gb=int(memory) if memory is not None else None,
    )
    logins: list[Session] = []
    client, session = authenticated_client(cfg, sign_in, host=host, on_login=logins.append)
    price = int(given["price_per_sec"].value or 0)
    with client:
        record, created = register_node(
            client, node_host=chosen_host, gpus=gpus, price_per_sec_wei=price, host=host
        )
    certificate = ensure_certificate(
        endpoint, record.node_id, cert_dir=cfg.cert_dir(cert_dir), token=session.token, host=host
    )
    return Registration(
        node=record,
        created=created,
        address=session.address,
        gpus=gpus,
        price_per_sec_wei=price,
        signed_in=bool(logins),
        certificate=certificate,
        sources=sources,
    )


def ensure_node_certificate(
    cfg: Config,
    sign_in: SignIn = SignIn(),
    *,
    force: bool = False,
    cert_dir: str | None = None,
    host: Host | None = None,
) -> tuple[NodeRecord, CertOutcome]:
    """Keep, renew or issue the registered node's certificate (``force``: renew now).

    A login is asked for only when the hub needs a bearer token (not for a renewal over
    mutual TLS), and then silently when a wallet key file is configured.
    """
    node = load_node(host)
    if node is None:
        raise RegisterError(
            "this machine is not registered yet (no node.json)", "run `worldland register`"
        )

    def token() -> str:
        return live_session(cfg, sign_in, host=host).token

    outcome = ensure_certificate(
        sign_in.endpoint(cfg),
        node.node_id,
        cert_dir=cfg.cert_dir(cert_dir),
        token=token,
        force=force,
        host=host,
    )
    return node, outcome
