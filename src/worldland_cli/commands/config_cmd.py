"""`worldland config show` and `worldland config set KEY VALUE` (docs/configuration.md).

`show` prints each setting with the place it came from (flag > env > file > default), so a
person can see why the CLI talks to the hub it talks to. Secrets never appear: the session
token is reduced to whether it is set and until when, and URL passwords are masked.
"""

from __future__ import annotations

from typing import Any

import typer

from worldland_cli.commands.options import JsonFlag
from worldland_cli.commands.usage import WrittenUsage
from worldland_cli.output import Result

app = typer.Typer(
    help="Show or change settings (~/.worldland/config.toml).\n\n"
    "\b\nExamples:\n"
    "  worldland config show\n"
    "  worldland config set hub https://hub.example.org:8443",
    no_args_is_help=True,
    rich_markup_mode=None,
)


@app.command("show")
def show(json_output: JsonFlag = False) -> Result:
    """Every setting, its value and where it came from; secrets masked.

    \b
    Examples:
      worldland config show
      worldland config show --json | jq -r .settings.hub.source
      WORLDLAND_HUB=https://hub.example.org worldland config show
    """
    from worldland_cli import config
    from worldland_cli.auth.session import load_session
    from worldland_cli.hubclient import HubEndpoint
    from worldland_cli.times import format_time
    from worldland_cli.urls import mask_url

    cfg = config.load()
    settings: dict[str, Any] = {}
    lines = [f"config file: {config.config_file()}"]
    for name, key in config.KEYS.items():
        setting = cfg.resolve(name)
        value = setting.value
        if value is not None and key.kind == "url":
            value = mask_url(value)
        settings[name] = {"value": value, "source": setting.source, "env": key.env}
        shown = "(unset)" if value is None else value
        lines.append(f"{name:<17} {shown}  [{setting.source}]")
    session = load_session(HubEndpoint.from_config(cfg).url)
    session_doc = None
    if session is None:
        lines.append(f"{'session':<17} (not logged in)")
    else:
        session_doc = {"token": "****", **session.public()}
        state = "expired" if session.expired() else "valid"
        lines.append(
            f"{'session':<17} token **** for {session.address} at {session.hub}, "
            f"{state} until {format_time(session.expires_at)}"
        )
    return Result(
        {
            "config_file": str(config.config_file()),
            "home": str(config.home()),
            "settings": settings,
            "session": session_doc,
        },
        lines,
    )


@app.command("set", cls=WrittenUsage)
def set_(
    key: str = typer.Argument(..., metavar="KEY", help="A setting name (see `config show`)."),
    value: str = typer.Argument(..., metavar="VALUE"),
    json_output: JsonFlag = False,
) -> Result:
    """Store one setting in config.toml (validated; other settings are kept).

    \b
    Examples:
      worldland config set hub https://hub.example.org:8443
      worldland config set hub_ca /etc/worldland/hub-ca.crt
      worldland config set price_per_sec 2000000000
      worldland config show                            # every KEY, and where it comes from
    """
    from worldland_cli import config
    from worldland_cli.urls import mask_url

    stored = config.set_value(key, value)
    shown = mask_url(stored) if config.KEYS[key].kind == "url" else stored
    return Result(
        {"key": key, "value": shown, "config_file": str(config.config_file())},
        [f"{key} = {shown} (saved to {config.config_file()})"],
    )
