"""Pods: the operator places them (renter, node, SSH endpoint); renters list theirs and look
up their SSH."""

from __future__ import annotations

import json
import sqlite3
import time
from collections import Counter

from fastapi import APIRouter, HTTPException, Response

from hub_stub import models
from hub_stub.deps import Admin, TheHub, Who, person
from hub_stub.rows import renter_pod, ssh_of
from hub_stub.timefmt import rfc3339

router = APIRouter()
# A pod is "running" while its node bills GPU time for it: the daemon reports usage in
# slices of a minute, sent as they close, so five minutes without any means none is used.
RUNNING_WITHIN_S = 300.0


@router.post("/v1/admin/pods", response_model=models.PodCreated, status_code=201)
def register_pod(
    body: models.PodIn, _: Admin, response: Response, hub: TheHub
) -> models.PodCreated:
    """Record or update a pod. A new renter ends the previous renter's open codes for it.

    ``node_id`` places the pod on a node, which is what lets that node bill for it.
    """
    with hub.store.transaction() as db:
        if body.node_id is not None:
            node = db.execute(
                "SELECT 1 FROM nodes WHERE node_id = ? AND deregistered_at IS NULL",
                (body.node_id,),
            ).fetchone()
            if node is None:
                raise HTTPException(422, f"node_id: node {body.node_id} is not a registered node")
        existed = db.execute("SELECT renter FROM pods WHERE pod_id = ?", (body.pod_id,)).fetchone()
        if existed is not None and existed["renter"] != body.renter_address:
            db.execute("DELETE FROM transfers WHERE pod_id = ? AND used_at IS NULL", (body.pod_id,))
        db.execute(
            "INSERT INTO pods (pod_id, renter, node_id, ssh_host, ssh_port, ssh_user, "
            "host_key, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (pod_id) DO "
            "UPDATE SET renter = excluded.renter, node_id = excluded.node_id, "
            "ssh_host = excluded.ssh_host, ssh_port = excluded.ssh_port, "
            "ssh_user = excluded.ssh_user, host_key = excluded.host_key, "
            "updated_at = excluded.updated_at",
            (
                body.pod_id,
                body.renter_address,
                body.node_id,
                body.ssh_host,
                body.ssh_port,
                body.ssh_user,
                body.host_key,
                time.time(),
            ),
        )
    if existed:
        response.status_code = 200
    return models.PodCreated(pod_id=body.pod_id)


@router.get("/v1/pods/{pod_id}/ssh", response_model=models.SshOut)
def pod_ssh(pod_id: models.IdentPath, who: Who, hub: TheHub) -> models.SshOut:
    address = person(who)
    with hub.store.read() as db:
        return ssh_of(renter_pod(db, pod_id, address))


@router.get("/v1/pods", response_model=models.PodList)
def list_pods(who: Who, hub: TheHub) -> models.PodList:
    """The caller's pods (renter view): where each runs, on what GPUs, and how to reach it.

    The hub knows a pod's state only from its node: whether the node is online (its
    heartbeats) and whether it bills GPU time for the pod (its usage).
    """
    address = person(who)
    now = time.time()
    online_s = hub.config.online_window.total_seconds()
    with hub.store.read() as db:
        rows = db.execute(
            "SELECT p.*, n.gpus AS node_gpus, n.last_seen AS node_seen, "
            'n.deregistered_at AS node_gone, (SELECT MAX(u."end") FROM usage_events u '
            "WHERE u.pod_id = p.pod_id AND u.node_id = p.node_id) AS billed_until "
            "FROM pods p LEFT JOIN nodes n ON n.node_id = p.node_id "
            "WHERE p.renter = ? ORDER BY p.pod_id",
            (address,),
        ).fetchall()
    return models.PodList(pods=[_pod(row, now, online_s) for row in rows])


def _pod(row: sqlite3.Row, now: float, online_s: float) -> models.PodOut:
    placed = row["node_id"] is not None and row["node_gone"] is None
    names = [str(g.get("name", "")) for g in json.loads(row["node_gpus"] or "[]")] if placed else []
    billed = row["billed_until"]
    state: models.PodState
    if not placed:
        state = "unplaced"
    elif row["node_seen"] is None or now - row["node_seen"] > online_s:
        state = "node-offline"
    elif billed is not None and now - billed <= RUNNING_WITHIN_S:
        state = "running"
    else:
        state = "placed"
    return models.PodOut(
        pod_id=row["pod_id"],
        node_id=row["node_id"],
        gpu_model=Counter(names).most_common(1)[0][0] if names else None,
        gpu_count=len(names),
        state=state,
        last_billed_at=None if billed is None else rfc3339(billed),
        ssh_host=row["ssh_host"],
        ssh_port=row["ssh_port"],
        ssh_user=row["ssh_user"],
    )
