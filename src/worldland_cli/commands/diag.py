"""`worldland diag ...`: support probes, the CNI fix, and the redacted support bundle.

Parsing and rendering only; the probes live in :mod:`worldland_cli.diag`.  Each subcommand
takes ``--json`` (one document on stdout) and ``--timeout`` (seconds per probe step).
"""

from __future__ import annotations

from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from worldland_cli.commands.common import wants_json
from worldland_cli.commands.options import AssumeYes, HubCa, HubUrl, JsonFlag, Root, StepTimeout
from worldland_cli.errors import ExitCode
from worldland_cli.output import Result

if TYPE_CHECKING:
    from worldland_cli.diag.base import DiagReport
    from worldland_cli.diag.bundle import Bundle
    from worldland_cli.host import Host

app = typer.Typer(
    help="Deeper read-only probes for support (gpu, network, k8s, certs) and a redacted bundle."
    "\n\n\b\nExamples:\n"
    "  worldland diag network                           # can this host reach the hub?\n"
    "  sudo worldland diag bundle                       # a tar.gz for a support ticket",
    no_args_is_help=True,
    rich_markup_mode=None,
)
fix_app = typer.Typer(
    help="Apply a known remedy, after a confirmation.\n\n"
    "\b\nExamples:\n"
    "  worldland diag fix cni --json                    # the steps; changes nothing",
    no_args_is_help=True,
    rich_markup_mode=None,
)
app.add_typer(fix_app, name="fix")

# Failing any of these means the hub itself cannot be reached (exit 3), not a local fault.
REACH_CHECKS = ("network.dns", "network.tcp", "network.tls", "network.http")


def _host(root: Path, timeout: float) -> Host:
    from worldland_cli.host import Host

    return Host(root, default_timeout=timeout)


def _result(report: DiagReport, exit_code: int | None = None) -> Result:
    """A probe's report as the command's result: exit 1 when a check failed, unless told."""
    if exit_code is None:
        exit_code = ExitCode.FAILED if report.failed else ExitCode.OK
    return Result(report.to_dict(), render=partial(_render, report), exit_code=exit_code)


def _render(report: DiagReport) -> None:
    from worldland_cli.output import render_findings

    verdict = "problems found" if report.failed else "no failures"
    summary = f"{verdict} in {report.duration_ms} ms"
    render_findings(report.checks, summary, failed=report.failed, show_ms=True)


@app.command("gpu")
def gpu(
    json_output: JsonFlag = False,
    timeout: StepTimeout = 5.0,
    root: Root = Path("/"),
) -> Result:
    """Per-GPU health: NVML counters, Xid events, the nvidia-smi -q summary.

    NVML gives ECC, retired/remapped pages, clocks, power, temperature and PCIe link per GPU.
    Exit 1 when a GPU is unhealthy or the driver does not answer.

    \b
    Examples:
      worldland diag gpu
      worldland diag gpu --json | jq '.checks[] | select(.status != "ok")'
      worldland diag gpu --timeout 20                  # a slow nvidia-smi -q
    """
    from worldland_cli.diag.gpu import probe_gpu

    return _result(probe_gpu(_host(root, timeout), timeout))


@app.command("network")
def network(
    json_output: JsonFlag = False,
    timeout: StepTimeout = 5.0,
    root: Root = Path("/"),
    hub: HubUrl = None,
    hub_ca: HubCa = None,
) -> Result:
    """The path to the hub step by step, the tunnel, the node API and the MTU.

    DNS, TCP, TLS and HTTP with timings, mTLS with the node certificate, clock skew against
    the hub, WireGuard handshake age, port 8444.  Exit 3 when the hub cannot be reached,
    1 for other failures.

    \b
    Examples:
      worldland diag network
      worldland diag network --hub https://hub.example.org:8443 --hub-ca ./hub-ca.crt
      worldland diag network --json --timeout 2 | jq -r '.checks[] | "\\(.id) \\(.status)"'
    """
    from worldland_cli import config
    from worldland_cli.diag.base import Status
    from worldland_cli.diag.network import probe_network
    from worldland_cli.hubclient import HubEndpoint

    cfg = config.load()
    endpoint = HubEndpoint.from_config(cfg, hub, hub_ca)
    report = probe_network(
        _host(root, timeout),
        cfg.cert_dir(),
        endpoint.url.rstrip("/"),
        timeout,
        hub_ca=endpoint.ca_file,
    )
    unreachable = any(c.id in REACH_CHECKS and c.status is Status.FAIL for c in report.checks)
    return _result(report, ExitCode.UNREACHABLE if unreachable else None)


@app.command("k8s")
def k8s(
    json_output: JsonFlag = False,
    timeout: StepTimeout = 5.0,
    root: Root = Path("/"),
    node: str = typer.Option(
        None, "--node", metavar="NAME", help="Node name (default: this host's name)."
    ),
) -> Result:
    """kubelet, node conditions, allocatable GPUs, the device plugin, the CNI failure.

    Reads the kubelet journal and, with the kubelet's own kubeconfig, the API server; finds
    'cni0 already has an IP address' and 'Insufficient nvidia.com/gpu'.

    \b
    Examples:
      sudo worldland diag k8s                          # the kubelet's kubeconfig is root's
      worldland diag k8s --node gpu-worker-3 --json    # what this user may read
    """
    from worldland_cli.diag.k8s import probe_k8s

    return _result(probe_k8s(_host(root, timeout), timeout, node))


@app.command("certs")
def certs(
    json_output: JsonFlag = False,
    root: Root = Path("/"),
) -> Result:
    """The node's mTLS certificate: chain to the hub CA, SANs, expiry, key match, key mode.

    Looks in the configured cert_dir (WORLDLAND_CERT_DIR, config.toml; ~/.worldland/certs).

    \b
    Examples:
      worldland diag certs
      WORLDLAND_CERT_DIR=/etc/worldland/certs worldland diag certs --json
    """
    from worldland_cli import config
    from worldland_cli.diag.certs import probe_certs

    return _result(probe_certs(_host(root, 5.0), config.load().cert_dir()))


@app.command("bundle")
def bundle(
    output: Path = typer.Option(
        None,
        "-o",
        "--output",
        metavar="FILE",
        help="Archive path (default: worldland-bundle-HOST-TIME.tar.gz).",
    ),
    json_output: JsonFlag = False,
    timeout: StepTimeout = 5.0,
    root: Root = Path("/"),
) -> Result:
    """A redacted tar.gz to attach to a support ticket.

    Holds doctor, every diag probe, versions, logs, configs and NVIDIA kernel lines, with
    every secret redacted (redactions.json inside says what was removed where).

    \b
    Examples:
      sudo worldland diag bundle                       # ./worldland-bundle-HOST-TIME.tar.gz
      worldland diag bundle -o /tmp/ticket-1234.tar.gz
      tar -xzOf /tmp/ticket-1234.tar.gz redactions.json   # what was removed, where
    """
    import time

    from worldland_cli.config import home
    from worldland_cli.diag.bundle import build_bundle
    from worldland_cli.errors import ActionableError
    from worldland_cli.host import Host, HostError

    host = _host(root, timeout)
    result = build_bundle(host, str(home()), timeout=timeout)
    if output is None:
        stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
        output = Path(f"worldland-bundle-{host.hostname()}-{stamp}.tar.gz")
    target = output.resolve()
    try:
        # The archive is the user's file, not the inspected system's, hence a host at "/".
        Host(Path("/")).write_atomic(str(target), result.data, mode=0o600)
    except (HostError, OSError) as e:
        raise ActionableError(f"cannot write {target}: {e}", "choose another path with -o") from e
    return Result(
        {"path": str(target), **result.to_dict()}, render=partial(_render_bundle, target, result)
    )


def _render_bundle(target: Path, result: Bundle) -> None:
    from rich.markup import escape

    from worldland_cli.output import console

    out = console()
    total = sum(int(str(r["count"])) for r in result.redactions)
    out.print(
        f"[bold green]wrote[/] {escape(str(target))} ({len(result.data)} bytes, "
        f"{len(result.members)} files, {total} secret(s) redacted)"
    )
    for member, why in result.problems.items():
        out.print(f"  [yellow]note[/] {escape(member)}: {escape(why)}")
    for member in result.truncated + result.omitted:
        out.print(f"  [yellow]size cap[/] {escape(member)} was cut to fit")


@fix_app.command("cni")
def fix_cni(
    ctx: typer.Context,
    yes: AssumeYes = False,
    json_output: JsonFlag = False,
    root: Root = Path("/"),
) -> Result:
    """Fix 'cni0 already has an IP address' (pods stuck in ContainerCreating).

    Deletes cni0, removes /etc/cni/net.d/*, restarts containerd and kubelet.
    With --json and without --yes nothing is changed: the document lists the steps under
    "would_run" and says "confirmation_needed", and the exit status is 2 (add --yes).

    \b
    Examples:
      worldland diag fix cni --json                    # the steps; changes nothing (exit 2)
      sudo worldland diag fix cni                      # shows the steps, asks first
      sudo worldland diag fix cni --yes --json
    """
    from rich.markup import escape

    from worldland_cli.diag.fix import StepResult, apply_cni_fix, cni_fix_plan
    from worldland_cli.output import console

    as_json = wants_json(ctx)
    if not yes and as_json:
        return Result(
            {
                "error": "--json cannot ask for confirmation; nothing was changed",
                "hint": "add --yes to apply the fix",
                "confirmation_needed": True,
                "would_run": cni_fix_plan(),
            },
            exit_code=ExitCode.USAGE,
        )
    if not yes:
        out = console()
        out.print("[bold]This will run:[/]")
        for step in cni_fix_plan():
            out.print(f"  {escape(step)}")
        if not typer.confirm("Apply the CNI fix?", default=False):
            return Result({"applied": False}, ["nothing changed"], exit_code=ExitCode.FAILED)

    def show(r: StepResult) -> None:
        if not as_json:
            mark = "[green]ok[/]" if r.ok else "[bold red]FAIL[/]"
            console().print(f"{mark} {escape(r.step)}: {escape(r.detail)}")

    results = apply_cni_fix(_host(root, 30.0), on_step=show)
    failed = not all(r.ok for r in results)
    return Result(
        {"steps": [r.to_dict() for r in results]},
        exit_code=ExitCode.FAILED if failed else ExitCode.OK,
    )
