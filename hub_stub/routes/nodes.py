"""Providers' nodes: register, list, heartbeat, kubeadm join parameters, deregister."""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

from fastapi import APIRouter, HTTPException, Request, Response

from hub_stub import models
from hub_stub.deps import Caller, TheHub, Who, hub_of, person
from hub_stub.kube import JoinUnavailable
from hub_stub.rows import node_row
from hub_stub.timefmt import rfc3339

# The heartbeat reads no body, so its schema is written out: an empty object, or nothing.
HEARTBEAT_BODY: dict[str, Any] = {
    "required": False,
    "content": {"application/json": {"schema": {"type": "object", "maxProperties": 0}}},
}

router = APIRouter()


@router.post(
    "/v1/nodes",
    response_model=models.NodeRegistered,
    status_code=201,
    responses={409: {"description": "a GPU is registered to another wallet"}},
)
def register_node(
    body: models.NodeIn, who: Who, response: Response, hub: TheHub
) -> models.NodeRegistered:
    """Register (or update) a node; a GPU UUID already on another wallet's node is 409.

    A GPU UUID names one physical GPU, so it has one owner: otherwise a second wallet
    could register the same hardware (its host and UUIDs are easy to learn) and be paid
    for it. UUIDs compare case-insensitively, as NVML's hex digits do.
    """
    owner = person(who)
    gpu_key = ",".join(sorted(gpu.uuid for gpu in body.gpus))
    gpus = json.dumps([gpu.model_dump() for gpu in body.gpus])
    labels = json.dumps(body.labels, sort_keys=True)
    uuids = sorted({gpu.uuid.lower() for gpu in body.gpus})
    with hub.store.transaction() as db:
        marks = ",".join("?" * len(uuids))
        claimed = db.execute(
            "SELECT g.uuid FROM node_gpus g JOIN nodes n ON n.node_id = g.node_id "
            f"WHERE n.owner != ? AND g.uuid IN ({marks}) ORDER BY g.uuid LIMIT 1",
            (owner, *uuids),
        ).fetchone()
        if claimed is not None:
            raise HTTPException(
                409,
                f"GPU {claimed['uuid']} is registered to another wallet's node: a GPU "
                "can be registered by one wallet only",
            )
        row = db.execute(
            "SELECT node_id, deregistered_at FROM nodes "
            "WHERE owner = ? AND host = ? AND gpu_key = ?",
            (owner, body.host, gpu_key),
        ).fetchone()
        if row is not None:
            db.execute(
                "UPDATE nodes SET gpus = ?, price_per_sec_wei = ?, labels = ?, "
                "deregistered_at = NULL WHERE node_id = ?",
                (gpus, body.price_per_sec_wei, labels, row["node_id"]),
            )
            if row["deregistered_at"] is not None:  # back again: it claims its GPUs anew
                db.executemany(
                    "INSERT INTO node_gpus (uuid, node_id) VALUES (?, ?)",
                    [(gpu_uuid, row["node_id"]) for gpu_uuid in uuids],
                )
            response.status_code = 200
            return models.NodeRegistered(node_id=row["node_id"], created=False)
        node_id = str(uuid.uuid4())
        db.execute(
            "INSERT INTO nodes (node_id, owner, host, gpu_key, gpus, price_per_sec_wei, "
            "labels, registered_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (
                node_id,
                owner,
                body.host,
                gpu_key,
                gpus,
                body.price_per_sec_wei,
                labels,
                time.time(),
            ),
        )
        db.executemany(
            "INSERT INTO node_gpus (uuid, node_id) VALUES (?, ?)",
            [(gpu_uuid, node_id) for gpu_uuid in uuids],
        )
    return models.NodeRegistered(node_id=node_id, created=True)


@router.get("/v1/nodes", response_model=models.NodeList)
def list_nodes(who: Who, hub: TheHub) -> models.NodeList:
    owner = person(who)
    now = time.time()
    window = hub.config.online_window.total_seconds()
    with hub.store.read() as db:
        rows = db.execute(
            "SELECT * FROM nodes WHERE owner = ? AND deregistered_at IS NULL "
            "ORDER BY registered_at",
            (owner,),
        ).fetchall()
    return models.NodeList(
        nodes=[
            models.NodeOut(
                node_id=row["node_id"],
                host=row["host"],
                gpus=[models.GpuOut(**gpu) for gpu in json.loads(row["gpus"])],
                price_per_sec_wei=row["price_per_sec_wei"],
                labels=json.loads(row["labels"]),
                registered_at=rfc3339(row["registered_at"]),
                last_seen=None if row["last_seen"] is None else rfc3339(row["last_seen"]),
                online=row["last_seen"] is not None and now - row["last_seen"] <= window,
            )
            for row in rows
        ]
    )


@router.post(
    "/v1/nodes/{node_id}/heartbeat",
    response_model=models.HeartbeatOut,
    openapi_extra={"requestBody": HEARTBEAT_BODY},
)
async def heartbeat(node_id: models.NodeIdPath, who: Who, request: Request) -> Response:
    """Liveness. The body (``{}`` or none) carries nothing today and is not read.

    The hottest path, so it skips what it can: async (no threadpool hop), no body parsing,
    a prebuilt JSON response, and one autocommit UPDATE that also checks ownership; only
    a miss pays for finding out why (404 or 403).
    """
    # The hub from the request, not as a dependency: one solve fewer on the hottest path.
    store = hub_of(request).store
    now = time.time()
    with store.read() as db:
        updated = db.execute(
            "UPDATE nodes SET last_seen = ? WHERE node_id = ? AND (node_id = ? OR owner = ?) "
            "AND deregistered_at IS NULL",
            (now, node_id, who.node_id, who.address),
        ).rowcount
        if updated != 1:
            node_row(db, node_id, who)
    body = json.dumps({"node_id": node_id, "last_seen": rfc3339(now)})
    return Response(body, media_type="application/json")


@router.post(
    "/v1/nodes/{node_id}/join",
    response_model=models.JoinOut,
    responses={503: {"description": "no Kubernetes join configuration"}},
)
def join(node_id: models.NodeIdPath, who: Who, hub: TheHub) -> models.JoinOut:
    with hub.store.read() as db:
        node_row(db, node_id, who)
    try:
        params = hub.join.join_params(node_id)
    except JoinUnavailable as exc:
        raise HTTPException(503, str(exc)) from None
    return models.JoinOut(
        api_server=params.api_server, token=params.token, ca_cert_hashes=params.ca_cert_hashes
    )


@router.delete(
    "/v1/nodes/{node_id}",
    status_code=204,
    response_class=Response,
    responses={409: {"description": "pods still run on the node"}},
)
def deregister_node(node_id: models.NodeIdPath, who: Who, hub: TheHub) -> Response:
    """The owner retires a node: its VPN address, certificates and GPUs are released.

    Only the owner's token may do it, not the node's certificate: a stolen certificate
    must not be able to take a provider's node off the market. The row stays
    (deregistered) because the ledger refers to it; registering the same host and GPUs
    again brings it back under the same id. Deregistering twice is fine (a retry).
    """
    owner = person(who)
    with hub.store.transaction() as db:
        node_row(db, node_id, Caller(owner, None), deregistered_ok=True)
        pods = [
            r["pod_id"]
            for r in db.execute(
                "SELECT pod_id FROM pods WHERE node_id = ? ORDER BY pod_id LIMIT 6", (node_id,)
            )
        ]
        if pods:
            # A renter's pod runs there: the operator moves or ends it first.
            shown = ", ".join(pods[:5]) + (", ..." if len(pods) > 5 else "")
            raise HTTPException(
                409,
                f"node {node_id} still runs pods ({shown}): the operator must move them "
                "to another node first",
            )
        now = time.time()
        db.execute(
            "UPDATE nodes SET deregistered_at = coalesce(deregistered_at, ?) WHERE node_id = ?",
            (now, node_id),
        )
        db.execute(
            "UPDATE certs SET revoked_at = ? WHERE node_id = ? AND revoked_at IS NULL",
            (now, node_id),
        )
        db.execute("DELETE FROM vpn_peers WHERE node_id = ?", (node_id,))
        db.execute("DELETE FROM node_gpus WHERE node_id = ?", (node_id,))
    return Response(status_code=204)
