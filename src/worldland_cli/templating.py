"""Files the CLI writes onto a host, rendered from ``templates/`` with Jinja2.

One engine for every rendered file (sysctl and modules-load files, the containerd drop-in,
kubeadm's JoinConfiguration, wg0.conf, systemd units), strict about missing values: a
template that names a value the caller did not give is an error, never an empty line in a
system file. Jinja2 is imported on first use, never at CLI start.
"""

from __future__ import annotations

from functools import cache
from importlib import resources
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import jinja2


@cache
def _environment() -> jinja2.Environment:
    import jinja2

    return jinja2.Environment(
        loader=jinja2.FunctionLoader(_source),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        autoescape=False,  # configuration files, not HTML
    )


def _source(name: str) -> str:
    return resources.files("worldland_cli").joinpath("templates", name).read_text()


def render(name: str, **values: Any) -> str:
    """The text of template ``name`` with ``values`` filled in."""
    return _environment().get_template(name).render(**values)
