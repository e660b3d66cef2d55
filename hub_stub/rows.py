"""Row lookups that more than one router needs, each with the access check it implies.

A node is reached by nodes, certificates, VPN peers and usage; a renter's pod by pods and
transfers. Each lookup answers the caller's question and its refusal together (401, 403 or
404 with a message), so no router can fetch a row and forget to check who asked for it.
"""

from __future__ import annotations

import sqlite3

from fastapi import HTTPException

from hub_stub import models
from hub_stub.deps import Caller


def node_row(
    db: sqlite3.Connection, node_id: str, who: Caller, *, deregistered_ok: bool = False
) -> sqlite3.Row:
    """The node, if the caller is that node (cert) or its owner (bearer).

    A deregistered node is gone for every purpose but reading its ledger
    (``deregistered_ok``): its row stays only because recorded usage refers to it.
    """
    if who.address is None and who.node_id is None:
        raise HTTPException(401, "authenticate with the node's client certificate or a token")
    row: sqlite3.Row | None = db.execute(
        "SELECT * FROM nodes WHERE node_id = ?", (node_id,)
    ).fetchone()
    if row is None:
        raise HTTPException(404, f"node {node_id} not found")
    if who.node_id != node_id and row["owner"] != who.address:
        raise HTTPException(403, f"node {node_id} belongs to another wallet")
    if row["deregistered_at"] is not None and not deregistered_ok:
        raise HTTPException(
            404, f"node {node_id} was deregistered: register the host again (POST /v1/nodes)"
        )
    return row


def renter_pod(db: sqlite3.Connection, pod_id: str, address: str) -> sqlite3.Row:
    """The pod, if ``address`` rents it; 404 otherwise."""
    row: sqlite3.Row | None = db.execute(
        "SELECT * FROM pods WHERE pod_id = ? AND renter = ?", (pod_id, address)
    ).fetchone()
    if row is None:
        # Same answer for "no such pod" and "someone else's pod": ids are not leaked.
        raise HTTPException(404, f"pod {pod_id} not found among your pods")
    return row


def ssh_of(row: sqlite3.Row) -> models.SshOut:
    """A pod's SSH endpoint from a row holding the pod's columns (a pod, or a code joined)."""
    return models.SshOut(
        pod_id=row["pod_id"],
        host=row["ssh_host"],
        port=row["ssh_port"],
        user=row["ssh_user"],
        host_key=row["host_key"],
    )
