"""The node registered with the hub, with a usable mTLS certificate (the seed's register step).

Everything after it needs the node id the hub gave (the VPN address and the kubeadm join
parameters are the node's) and the daemon needs the certificate. Join meets it the way
``worldland register`` does (:func:`~worldland_cli.auth.provider.register_this_node`: log
in, register, certificate); doctor skips it before join, like the other post-join checks.
"""

from __future__ import annotations

from worldland_cli import config
from worldland_cli.errors import ActionableError
from worldland_cli.host import Host
from worldland_cli.join.actions import Action
from worldland_cli.requirements.base import Finding, JoinSettings, Requirement

HUB_DOC = "provider-guide#hub"
JOIN_REMEDY = (
    "sudo worldland join --yes --only hub.registered   # logs in with the wallet, registers, "
    "fetches the certificate"
)


class Registered(Requirement):
    id = "hub.registered"
    title = "node registered with the hub; its certificate usable"

    def __init__(self, cert_dir: str | None = None, *, joining: bool = False) -> None:
        """``cert_dir`` is the configured one; ``joining``: a missing registration is join's
        to make (a failure), not a step still to come (doctor's skip)."""
        self.cert_dir = cert_dir or str(config.default_cert_dir())
        self.joining = joining

    def check(self, host: Host) -> Finding:
        from worldland_cli.auth.certs import cert_status
        from worldland_cli.auth.node import load_node

        node = load_node(host)
        where = config.node_file()
        if node is None:
            if not self.joining:
                return self.skip(f"not joined yet: no {where} (worldland join registers)")
            return self.fail(f"no node registered with a hub ({where} is missing)", JOIN_REMEDY)
        try:
            status = cert_status(self.cert_dir, host)
        except ActionableError as e:
            return self.fail(f"node {node.node_id}: {e.message}", e.hint or JOIN_REMEDY, HUB_DOC)
        if status.usable and status.node_id == node.node_id:
            until = status.not_after.date().isoformat() if status.not_after else "?"
            return self.ok(
                f"node {node.node_id} at {node.hub}; certificate valid until {until}",
                node_id=node.node_id,
                hub=node.hub,
            )
        return self.fail(
            f"node {node.node_id} at {node.hub}: {_why_unusable(status.to_json(), node.node_id)}",
            JOIN_REMEDY,
            HUB_DOC,
            node_id=node.node_id,
        )

    def plan(self, host: Host, finding: Finding, settings: JoinSettings) -> list[Action]:
        from worldland_cli.join.register import RegisterNode

        return [
            RegisterNode(
                hub=settings.hub,
                hub_ca=settings.hub_ca,
                private_key_file=settings.private_key_file,
                siwe_domain=settings.siwe_domain,
                cert_dir=self.cert_dir,
            )
        ]


def _why_unusable(status: dict[str, object], node_id: str) -> str:
    """The first reason the hub would refuse this certificate."""
    where = status["cert_dir"]
    if not status["present"]:
        return f"no certificate in {where}"
    if status["node_id"] != node_id:
        return f"the certificate in {where} names another node ({status['node_id']})"
    if status["expired"]:
        return f"the certificate in {where} expired on {status['not_after']}"
    if status["key_matches"] is not True:
        return f"node.key in {where} does not match node.crt"
    return f"node.crt in {where} is not signed by ca.crt beside it"
