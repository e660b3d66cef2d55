"""What the daemon runs with, resolved once at start from flags, config.toml and node.json.

The node id comes from node.json (``worldland register``), and so does the hub, unless a flag,
WORLDLAND_HUB or config.toml names one; the price is the one the node registered (the hub
bills nothing else). Everything else has a default a provider never needs to change.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from worldland_cli import config as config_mod
from worldland_cli.auth.certs import CertPaths
from worldland_cli.auth.node import RegisterError, load_node
from worldland_cli.auth.relogin import SignIn
from worldland_cli.config import Config, ConfigError
from worldland_cli.daemon.slices import DEFAULT_SLICE_SECONDS
from worldland_cli.host import Host
from worldland_cli.hubclient import HubEndpoint

DEFAULT_LISTEN = "0.0.0.0:8444"
DEFAULT_METRICS_LISTEN = "127.0.0.1:9444"
DEFAULT_KUBECONFIG = "/etc/kubernetes/kubelet.conf"
OUTBOX_NAME = "outbox.sqlite3"


@dataclass(frozen=True)
class DaemonSettings:
    node_id: str
    endpoint: HubEndpoint
    sign_in: SignIn
    certs: CertPaths
    listen: tuple[str, int]
    metrics_listen: tuple[str, int] | None
    kubeconfig: str
    node_name: str
    price_per_sec_wei: int
    outbox_path: str
    heartbeat_seconds: float
    slice_seconds: int
    verbose: int = 0


def parse_address(text: str, flag: str) -> tuple[str, int]:
    """``HOST:PORT`` (``[::]:8444`` for IPv6) as (host, port); port 0 picks a free one."""
    host, sep, port = text.strip().rpartition(":")
    host = host.strip("[]")
    if not sep or not host or not port.isdigit() or int(port) > 65535:
        raise ConfigError(
            f"{flag} must be HOST:PORT, got {text!r}", f"for example {flag} {DEFAULT_LISTEN}"
        )
    return host, int(port)


def resolve(
    cfg: Config,
    sign_in: SignIn,
    *,
    host: Host,
    listen: str = DEFAULT_LISTEN,
    metrics_listen: str = DEFAULT_METRICS_LISTEN,
    kubeconfig: str | None = None,
    node_name: str | None = None,
    cert_dir: str | None = None,
    state_dir: str | None = None,
    heartbeat_seconds: float = 30.0,
    slice_seconds: int = DEFAULT_SLICE_SECONDS,
    verbose: int = 0,
) -> DaemonSettings:
    node = load_node(host)
    if node is None:
        raise RegisterError(
            "this machine is not registered yet (no node.json)",
            "run `worldland register`, then start the daemon again",
        )
    if heartbeat_seconds <= 0 or slice_seconds < 1:
        raise ConfigError("--heartbeat and --slice must be positive")
    hub = cfg.resolve("hub", sign_in.hub)
    url = node.hub if hub.source == "default" else (hub.value or node.hub)
    endpoint = HubEndpoint(url=url, ca_file=cfg.get("hub_ca", sign_in.hub_ca))
    price = node.price_per_sec_wei
    if price is None:  # a node.json from before the price was kept: what register used
        price = cfg.get_int("price_per_sec") or 0
    metrics = (
        None
        if metrics_listen.strip() == "off"
        else parse_address(metrics_listen, "--metrics-listen")
    )
    return DaemonSettings(
        node_id=node.node_id,
        endpoint=endpoint,
        sign_in=sign_in,
        certs=CertPaths.of(cfg.cert_dir(cert_dir)),
        listen=parse_address(listen, "--listen"),
        metrics_listen=metrics,
        kubeconfig=str(Path(kubeconfig or DEFAULT_KUBECONFIG).expanduser().absolute()),
        node_name=(node_name or host.hostname()).lower(),
        price_per_sec_wei=price,
        outbox_path=str(
            Path(state_dir or config_mod.daemon_dir()).expanduser().absolute() / OUTBOX_NAME
        ),
        heartbeat_seconds=heartbeat_seconds,
        slice_seconds=slice_seconds,
        verbose=verbose,
    )
