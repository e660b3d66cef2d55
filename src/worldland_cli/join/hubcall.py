"""What join's hub steps share: which hub, which wallet, and how a refusal is reported.

A step that registers the node, or asks the hub for its VPN address or its kubeadm
parameters, records the hub it used (URL, CA bundle, wallet key file, SIWE domain) in its
journal line, so that reset undoes it at that same hub whatever the environment of the shell
reset runs in. Calls are made as the provider, with the saved session or a silent login
with the wallet key file (:func:`~worldland_cli.auth.relogin.authenticated_client`); a login
rewrites session.json, so every such step lists it among the files it touches and reset
puts it back as it was.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

from worldland_cli import config
from worldland_cli.errors import ActionableError
from worldland_cli.host import Host
from worldland_cli.join.actions import ActionFailed

if TYPE_CHECKING:
    from worldland_cli.auth.relogin import SignIn
    from worldland_cli.hubclient import HubClient


class HubCaller:
    """Mixin for actions that call the hub; the dataclass declares the four fields."""

    hub: str
    hub_ca: str | None
    private_key_file: str | None
    siwe_domain: str | None

    def sign_in(self) -> SignIn:
        from worldland_cli.auth.relogin import SignIn

        return SignIn(
            hub=self.hub,
            hub_ca=self.hub_ca,
            private_key_file=self.private_key_file,
            siwe_domain=self.siwe_domain,
        )

    def hub_client(self, host: Host) -> HubClient:
        """A client with a live token for this hub (the caller closes it)."""
        from worldland_cli.auth.relogin import authenticated_client

        client, _ = authenticated_client(config.load(), self.sign_in(), host=host)
        return client

    def hub_flags(self) -> str:
        """The flags that name this hub and wallet on a command line."""
        flags = f"--hub {self.hub}"
        if self.hub_ca:
            flags += f" --hub-ca {self.hub_ca}"
        if self.private_key_file:
            flags += f" --private-key-file {self.private_key_file}"
        return flags


def session_file() -> str:
    """Where a silent login saves the session (a path of the managed system)."""
    return str(config.session_file())


def node_file() -> str:
    """node.json: the node id ``register`` saved (a path of the managed system)."""
    return str(config.node_file())


@contextmanager
def hub_step(what: str) -> Iterator[None]:
    """Fail the step with the hub's (or the login's) own words and what to do about them."""
    try:
        yield
    except ActionableError as e:
        hint = f" ({e.hint})" if e.hint else ""
        raise ActionFailed(f"{what}: {e.message}{hint}") from None


def registered_node(host: Host) -> str:
    """The node id in node.json; the hub step that needs it fails without one."""
    from worldland_cli.auth.node import load_node

    node = load_node(host)
    if node is None:
        raise ActionFailed(
            f"no node is registered on this host ({node_file()} is missing); "
            "hub.registered comes first: run `worldland join` again"
        )
    return node.node_id
