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

    Exit status: 0 when nothing fails, 1 when a check fails, 2 for usage errors.
    """
    from worldland_cli import config
    from worldland_cli.errors import ExitCode
    from worldland_cli.host import Host
    from worldland_cli.output import render_report
    from worldland_cli.requirements import all_requirements
    from worldland_cli.requirements.runner import UnknownCheckError, run_checks

    requirements = all_requirements(cert_dir=config.load().cert_dir())
    host = Host(root, default_timeout=timeout)
    try:
        report = run_checks(
            host, requirements, only=split_ids(only), ignore=split_ids(ignore), timeout=timeout
        )
    except UnknownCheckError as e:
        raise typer.BadParameter(str(e), param_hint="'--only' / '--ignore'") from e
    return Result(
        report.to_dict(),
        render=partial(render_report, report, verbose=verbosity(ctx) > 0),
        exit_code=ExitCode.FAILED if report.failed else ExitCode.OK,
    )
