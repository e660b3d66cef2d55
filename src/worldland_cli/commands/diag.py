"""`worldland diag ...`: support probes, the CNI fix, and the redacted support bundle.

Parsing and rendering only; the probes live in :mod:`worldland_cli.diag`.  Each subcommand
takes ``--json`` (one document on stdout) and ``--timeout`` (seconds per probe step).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import typer

from worldland_cli.commands.common import wants_json
from worldland_cli.commands.options import HubCa, HubUrl, JsonFlag, Root, StepTimeout

if TYPE_CHECKING:
    from worldland_cli.diag.base import DiagReport
    from worldland_cli.host import Host

app = typer.Typer(
    help="Deeper read-only probes for support (gpu, network, k8s, certs) and a redacted bundle.",
    no_args_is_help=True,
)
fix_app = typer.Typer(help="Apply a known remedy, after a confirmation.", no_args_is_help=True)
app.add_typer(fix_app, name="fix")

# Failing any of these means the hub itself cannot be reached (exit 3), not a local fault.
REACH_CHECKS = ("network.dns", "network.tcp", "network.tls", "network.http")


def _host(root: Path, timeout: float) -> Host:
    from worldland_cli.host import Host

    return Host(root, default_timeout=timeout)


def _emit(ctx: typer.Context, json_output: bool, report: DiagReport, exit_code: int) -> None:
    from worldland_cli.output import print_json

    if wants_json(ctx, json_output):
        print_json(report.to_dict())
    else:
        _render(report)
    raise typer.Exit(exit_code)


def _render(report: DiagReport) -> None:
    from worldland_cli.output import render_findings

    verdict = "problems found" if report.failed else "no failures"
    summary = f"{verdict} in {report.duration_ms} ms"
    render_findings(report.checks, summary, failed=report.failed, show_ms=True)


def _failed_code(report: DiagReport) -> int:
    from worldland_cli.errors import ExitCode

    return int(ExitCode.FAILED if report.failed else ExitCode.OK)


def _home() -> str:
    from worldland_cli.config import home

    return str(home())


@app.command("gpu")
def gpu(
    ctx: typer.Context,
    json_output: JsonFlag = False,
    timeout: StepTimeout = 5.0,
    root: Root = Path("/"),
) -> None:
    """Per-GPU health: NVML counters, Xid events, the nvidia-smi -q summary.

    NVML gives ECC, retired/remapped pages, clocks, power, temperature and PCIe link per GPU.
    Exit 1 when a GPU is unhealthy or the driver does not answer.
    """
    from worldland_cli.diag.gpu import probe_gpu

    report = probe_gpu(_host(root, timeout), timeout)
    _emit(ctx, json_output, report, _failed_code(report))


@app.command("network")
def network(
    ctx: typer.Context,
    json_output: JsonFlag = False,
    timeout: StepTimeout = 5.0,
    root: Root = Path("/"),
    hub: HubUrl = None,
    hub_ca: HubCa = None,
) -> None:
    """The path to the hub step by step, the tunnel, the node API and the MTU.

    DNS, TCP, TLS and HTTP with timings, mTLS with the node certificate, clock skew against
    the hub, WireGuard handshake age, port 8444.  Exit 3 when the hub cannot be reached,
    1 for other failures.
    """
    from worldland_cli import config
    from worldland_cli.diag.base import Status
    from worldland_cli.diag.network import probe_network
    from worldland_cli.errors import ExitCode
    from worldland_cli.hubclient import HubEndpoint

    host = _host(root, timeout)
    cfg = config.load()
    endpoint = HubEndpoint.from_config(cfg, hub, hub_ca)
    report = probe_network(
        host, cfg.cert_dir(), endpoint.url.rstrip("/"), timeout, hub_ca=endpoint.ca_file
    )
    unreachable = any(c.id in REACH_CHECKS and c.status is Status.FAIL for c in report.checks)
    code = int(ExitCode.UNREACHABLE) if unreachable else _failed_code(report)
    _emit(ctx, json_output, report, code)


@app.command("k8s")
def k8s(
    ctx: typer.Context,
    json_output: JsonFlag = False,
    timeout: StepTimeout = 5.0,
    root: Root = Path("/"),
    node: str = typer.Option(None, "--node", help="Node name (default: this host's name)."),
) -> None:
    """kubelet, node conditions, allocatable GPUs, the device plugin, the CNI failure.

    Reads the kubelet journal and, with the kubelet's own kubeconfig, the API server; finds
    'cni0 already has an IP address' and 'Insufficient nvidia.com/gpu'.
    """
    from worldland_cli.diag.k8s import probe_k8s

    report = probe_k8s(_host(root, timeout), timeout, node)
    _emit(ctx, json_output, report, _failed_code(report))


@app.command("certs")
def certs(
    ctx: typer.Context,
    json_output: JsonFlag = False,
    root: Root = Path("/"),
) -> None:
    """The node's mTLS certificate: chain to the hub CA, SANs, expiry, key match, key mode."""
    from worldland_cli import config
    from worldland_cli.diag.certs import probe_certs

    report = probe_certs(_host(root, 5.0), config.load().cert_dir())
    _emit(ctx, json_output, report, _failed_code(report))


@app.command("bundle")
def bundle(
    ctx: typer.Context,
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
) -> None:
    """A redacted tar.gz to attach to a support ticket.

    Holds doctor, every diag probe, versions, logs, configs and NVIDIA kernel lines, with
    every secret redacted (redactions.json inside says what was removed where).
    """
    import time

    from rich.markup import escape

    from worldland_cli.diag.bundle import build_bundle
    from worldland_cli.errors import ExitCode
    from worldland_cli.host import Host, HostError
    from worldland_cli.output import console, error, print_json

    host = _host(root, timeout)
    result = build_bundle(host, _home(), timeout=timeout)
    if output is None:
        stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
        output = Path(f"worldland-bundle-{host.hostname()}-{stamp}.tar.gz")
    target = output.resolve()
    try:
        # The archive is the user's file, not the inspected system's, hence a host at "/".
        Host(Path("/")).write_atomic(str(target), result.data, mode=0o600)
    except (HostError, OSError) as e:
        error(f"cannot write {target}: {e}", "choose another path with -o")
        raise typer.Exit(ExitCode.FAILED) from e
    if wants_json(ctx, json_output):
        print_json({"path": str(target), **result.to_dict()})
        raise typer.Exit(ExitCode.OK)
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
    raise typer.Exit(ExitCode.OK)


@fix_app.command("cni")
def fix_cni(
    ctx: typer.Context,
    yes: bool = typer.Option(False, "--yes", "-y", help="Do not ask for confirmation."),
    json_output: JsonFlag = False,
    root: Root = Path("/"),
) -> None:
    """Fix 'cni0 already has an IP address' (pods stuck in ContainerCreating).

    Deletes cni0, removes /etc/cni/net.d/*, restarts containerd and kubelet.
    """
    from rich.markup import escape

    from worldland_cli.diag.fix import StepResult, apply_cni_fix, cni_fix_plan
    from worldland_cli.errors import ExitCode
    from worldland_cli.output import console, error, print_json

    as_json = wants_json(ctx, json_output)
    if as_json and not yes:
        error("--json cannot ask for confirmation", "add --yes to apply the fix")
        raise typer.Exit(ExitCode.USAGE)
    if not yes:
        out = console()
        out.print("[bold]This will run:[/]")
        for step in cni_fix_plan():
            out.print(f"  {escape(step)}")
        if not typer.confirm("Apply the CNI fix?", default=False):
            out.print("nothing changed")
            raise typer.Exit(ExitCode.FAILED)

    def show(r: StepResult) -> None:
        if not as_json:
            mark = "[green]ok[/]" if r.ok else "[bold red]FAIL[/]"
            console().print(f"{mark} {escape(r.step)}: {escape(r.detail)}")

    results = apply_cni_fix(_host(root, 30.0), on_step=show)
    failed = not all(r.ok for r in results)
    if as_json:
        print_json({"ok": not failed, "steps": [r.to_dict() for r in results]})
    raise typer.Exit(ExitCode.FAILED if failed else ExitCode.OK)
