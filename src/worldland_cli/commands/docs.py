"""`worldland docs [TOPIC]`: the docs this worldland shipped with, or one section of one."""

from __future__ import annotations

import typer

from worldland_cli.commands.options import JsonFlag
from worldland_cli.output import Result


def docs(
    topic: str | None = typer.Argument(
        None,
        metavar="[TOPIC]",
        help="A doc (provider-guide), or one of its sections (provider-guide#containerd).",
    ),
    json_output: JsonFlag = False,
) -> Result:
    """Print a doc, or the one section doctor's fixes point at; without TOPIC, list them.

    The docs ship inside the package, so what doctor and diag refer to ("more: worldland
    docs provider-guide#containerd") opens on a host with no checkout.

    \b
    Examples:
      worldland docs                                # every doc, with its title
      worldland docs provider-guide#containerd      # one section, as doctor points at it
      worldland docs support-runbook | less
      worldland docs configuration --json | jq -r .text

    Exit status: 0 printed, 2 no such doc or section (the message lists what there is).
    """
    from worldland_cli import guides

    if topic is None:
        listed = guides.topics()
        width = max(len(name) for name in listed)
        lines = [f"{name:<{width}}  {title}" for name, title in listed.items()]
        lines.append("")
        lines.append("worldland docs TOPIC prints one; TOPIC#section one of its sections.")
        return Result({"topics": listed}, lines)
    try:
        name, text = guides.read(topic)
    except guides.UnknownTopic as e:
        raise typer.BadParameter(str(e), param_hint="TOPIC") from e
    return Result({"topic": name, "text": text}, text.splitlines())
