"""`worldland daemon`: the node daemon, in the foreground (systemd runs it as worldland-node).

Parsing only: the daemon itself is :mod:`worldland_cli.daemon` (docs/provider-guide.md,
"Node daemon"). It runs until SIGTERM or Ctrl-C and then exits 0; an error before it starts
(not registered, no certificate, a port in use) goes through the door like any command's.
"""

from __future__ import annotations

import typer

from worldland_cli.commands.common import verbosity
from worldland_cli.commands.options import CertDir, HubCa, HubUrl, JsonFlag, KeyFile, SiweDomain
from worldland_cli.output import Result


def daemon(
    ctx: typer.Context,
    listen: str = typer.Option(
        "0.0.0.0:8444", "--listen", metavar="HOST:PORT", help="Node API (TLS) address."
    ),
    metrics_listen: str = typer.Option(
        "127.0.0.1:9444",
        "--metrics-listen",
        metavar="HOST:PORT",
        help="Plain-HTTP /metrics for Prometheus ('off' to disable).",
    ),
    kubeconfig: str | None = typer.Option(
        None,
        "--kubeconfig",
        metavar="FILE",
        help="Credentials to watch this node's pods (default /etc/kubernetes/kubelet.conf).",
    ),
    node_name: str | None = typer.Option(
        None, "--node-name", metavar="NAME", help="Kubernetes node name (default: host name)."
    ),
    heartbeat: float = typer.Option(
        30.0, "--heartbeat", min=0.1, metavar="SECONDS", help="Seconds between heartbeats."
    ),
    slice_seconds: int = typer.Option(
        60, "--slice", min=1, metavar="SECONDS", help="Usage is reported in slices this long."
    ),
    state_dir: str | None = typer.Option(
        None, "--state-dir", metavar="DIR", help="The usage outbox (~/.worldland/daemon)."
    ),
    hub: HubUrl = None,
    hub_ca: HubCa = None,
    cert_dir: CertDir = None,
    private_key_file: KeyFile = None,
    siwe_domain: SiweDomain = None,
    verbose: int = typer.Option(0, "-v", "--verbose", count=True, help="Debug lines too."),
    json_output: JsonFlag = False,
) -> Result:
    """Run the node daemon: heartbeats, the mTLS node API, GPU metrics and pod usage metering.

    Logs one JSON line per event on stdout (journalctl -u worldland-node -o cat); with
    --json, a failure to start is the JSON envelope too.

    \b
    Examples:
      sudo systemctl restart worldland-node            # how a joined node runs it
      worldland daemon                                 # in the foreground, Ctrl-C stops it
      worldland daemon --listen 0.0.0.0:8444 --kubeconfig /etc/kubernetes/kubelet.conf -v
      worldland daemon --metrics-listen off --heartbeat 10

    Exit status: 0 after SIGTERM or Ctrl-C, 1 when it cannot start (not registered, no
    certificate, a port in use).
    """
    from worldland_cli import config
    from worldland_cli.auth.relogin import SignIn
    from worldland_cli.daemon.run import run_daemon
    from worldland_cli.daemon.settings import resolve
    from worldland_cli.host import Host

    host = Host()
    cfg = config.load(host)
    settings = resolve(
        cfg,
        SignIn(hub=hub, hub_ca=hub_ca, private_key_file=private_key_file, siwe_domain=siwe_domain),
        host=host,
        listen=listen,
        metrics_listen=metrics_listen,
        kubeconfig=kubeconfig,
        node_name=node_name,
        cert_dir=cert_dir,
        state_dir=state_dir,
        heartbeat_seconds=heartbeat,
        slice_seconds=slice_seconds,
        verbose=max(verbose, verbosity(ctx)),
    )
    return Result({"stopped": True}, [], exit_code=run_daemon(cfg, settings, host))
