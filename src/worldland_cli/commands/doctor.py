"""`worldland doctor`: is this host ready to rent out its GPUs, and exactly what to fix."""

from __future__ import annotations

from functools import partial
from pathlib import Path

import typer

from worldland_cli.commands.common import split_ids, verbosity
from worldland_cli.commands.options import JsonFlag, Root
from worldland_cli.output import Result


def doctor(
    ctx: typer.Context,
    json_output: JsonFlag = False,
    only: list[str] = typer.Option(
        None, "--only", metavar="ID,...", help="Run only these checks (ids or areas like 'gpu')."
    ),
    ignore: list[str] = typer.Option(
        None,
        "--ignore",
        metavar="ID,...",
        help="Report these failures as warnings (like kubeadm --ignore-preflight-errors).",
    ),
    timeout: float = typer.Option(
        5.0,
        "--timeout",
        min=0.1,
        metavar="SECONDS",
        help="Seconds each probe may take; bounds the whole run.",
    ),
    root: Root = Path("/"),
) -> Result:
    """Check every provider requirement and print the exact fix for each problem.

    The fixes come after the table as numbered blocks of shell, in the order to run them
    (the seed's checklist: the driver, the toolkit, containerd, the kernel, Kubernetes),
    each once; a block is what `worldland join` would do for that step.

    \b
    Examples:
      worldland doctor                          # the table and the fixes, in order
      worldland doctor --only containerd,kernel # some areas only
      worldland doctor --ignore system.swap     # a failure shown as a warning
      worldland doctor --json | jq '.fixes[].commands[]'
      worldland doctor --root /mnt/image        # an image being prepared

    Exit status: 0 when nothing fails, 1 when a check fails, 2 for usage errors.
    """
    from worldland_cli import config
    from worldland_cli.commands.join import this_worldland
    from worldland_cli.errors import ExitCode
    from worldland_cli.host import Host
    from worldland_cli.join.fixes import plan_fixes
    from worldland_cli.output import FixBlock, render_report
    from worldland_cli.requirements import all_requirements
    from worldland_cli.requirements.base import JoinSettings
    from worldland_cli.requirements.runner import UnknownCheckError, run_checks

    cfg = config.load()
    requirements = all_requirements(cert_dir=cfg.cert_dir())
    host = Host(root, default_timeout=timeout)
    try:
        report = run_checks(
            host, requirements, only=split_ids(only), ignore=split_ids(ignore), timeout=timeout
        )
    except UnknownCheckError as e:
        raise typer.BadParameter(str(e), param_hint="'--only' / '--ignore'") from e
    # What a person pastes: no resume unit (that is join's way through a reboot), and the
    # hub as configured for the steps only join can take.
    settings = JoinSettings(
        hub=cfg.get("hub") or config.DEFAULT_HUB,
        hub_ca=cfg.get("hub_ca"),
        worldland=this_worldland(),
        resume_unit=False,
    )
    fixes = plan_fixes(host, requirements, report.findings, settings)
    by_id = {f.id: f for f in report.findings}
    blocks = [
        FixBlock(
            f"{', '.join(fix.checks)}: {fix.observed}",
            fix.commands,
            fix.doc,
            by_id[fix.checks[0]].status.value,
        )
        for fix in fixes
    ]
    return Result(
        {**report.to_dict(), "fixes": [fix.to_dict() for fix in fixes]},
        render=partial(render_report, report, blocks, verbose=verbosity(ctx) > 0),
        exit_code=ExitCode.FAILED if report.failed else ExitCode.OK,
    )
