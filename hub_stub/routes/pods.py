"""Pods: the operator places them (renter, node, SSH endpoint); renters look up their SSH."""

from __future__ import annotations

import time

from fastapi import APIRouter, HTTPException, Response

from hub_stub import models
from hub_stub.deps import Admin, TheHub, Who, person
from hub_stub.rows import renter_pod, ssh_of

router = APIRouter()


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
