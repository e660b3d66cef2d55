"""Register the node with the hub and fetch its certificate; reset deregisters it.

The workflow is ``worldland register``'s (:func:`~worldland_cli.auth.provider.register_this_node`):
GPUs from NVML, a live login (silent with the wallet key file), the idempotent registration
that writes node.json, then ``ensure_certificate``. What it writes on the host (node.json,
node.key, node.crt, ca.crt, session.json) is backed up by the journal; what it changes at
the hub is undone by ``DELETE /v1/nodes/{id}``, which also releases the node's VPN address
and revokes its certificates. A node that was registered before join stays registered.
"""

from __future__ import annotations

import posixpath
from dataclasses import dataclass
from typing import Any, ClassVar

from worldland_cli import config
from worldland_cli.host import Host
from worldland_cli.join.actions import Action, Output
from worldland_cli.join.hubcall import HubCaller, hub_step, node_file, session_file


def _current_node(host: Host) -> str | None:
    from worldland_cli.auth.node import load_node

    node = load_node(host)
    return node.node_id if node is not None else None


@dataclass(frozen=True)
class RegisterNode(HubCaller, Action):
    """Log in, register this node (node.json) and keep its mTLS certificate usable."""

    kind: ClassVar[str] = "register-node"
    hub: str
    cert_dir: str
    hub_ca: str | None = None
    private_key_file: str | None = None
    siwe_domain: str | None = None

    def describe(self) -> str:
        return f"log in to the hub at {self.hub}, register this node, fetch its certificate"

    def as_shell(self) -> str:
        return f"sudo worldland register {self.hub_flags()} --cert-dir {self.cert_dir}"

    def touches(self) -> tuple[str, ...]:
        certs = tuple(posixpath.join(self.cert_dir, n) for n in ("node.key", "node.crt", "ca.crt"))
        return (node_file(), *certs, session_file())

    def prepare(self, host: Host) -> dict[str, Any]:
        return {"node_before": _current_node(host)}

    def apply(self, host: Host, out: Output) -> None:
        from worldland_cli.auth.provider import register_this_node

        try:
            with hub_step(f"registering with the hub at {self.hub}"):
                done = register_this_node(
                    config.load(), self.sign_in(), cert_dir=self.cert_dir, host=host
                )
        finally:
            # The hub may have registered the node even if the certificate then failed.
            node_id = _current_node(host)
            if node_id is not None:
                out.remember(node_id=node_id)
        gpus = ", ".join(g.name for g in done.gpus)
        out.note(
            f"node {done.node.node_id} {'registered' if done.created else 'known'} at "
            f"{self.hub} as {done.address} ({gpus}); certificate {done.certificate.action} "
            f"in {done.certificate.status.cert_dir}"
        )

    def undo(self, host: Host, before: dict[str, Any], purge: bool, out: Output) -> None:
        from worldland_cli.hubclient import HubRejected

        node_id = before.get("node_id") or _current_node(host)
        if node_id is None:
            out.note("no node was registered: nothing to deregister")
            return
        if node_id == before.get("node_before"):
            out.note(f"node {node_id} was registered before join: it stays registered")
            return
        with hub_step(f"deregistering node {node_id} at {self.hub}"), self.hub_client(host) as hub:
            try:
                hub.delete_node(node_id)
            except HubRejected as e:
                if e.status != 404:
                    raise
                out.note(f"the hub no longer knows node {node_id}: {e.detail}")
                return
        out.note(
            f"node {node_id} deregistered at {self.hub}: its VPN address is released and "
            "its certificates are revoked"
        )
