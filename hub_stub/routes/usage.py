"""The usage ledger: nodes report GPU time, owners read their totals."""

from __future__ import annotations

import json
import sqlite3
import time
from typing import Annotated

from fastapi import APIRouter, HTTPException, Query
from pydantic import Field

from hub_stub import models
from hub_stub.deps import Caller, TheHub, Who, person
from hub_stub.rows import node_row

MAX_USAGE_BATCH = 1000

router = APIRouter()


def billable(db: sqlite3.Connection, event: models.UsageEvent, node: sqlite3.Row) -> str:
    """Refuse an event the hub cannot vouch for (see :func:`post_usage`); else its renter.

    The renter is the pod's now, when the interval is accepted: settlement bills them, even
    if the operator gives the pod to someone else before the worker gets to the row.
    """
    name, pod_id = event.event_id, event.pod_id
    pod = db.execute("SELECT node_id, renter FROM pods WHERE pod_id = ?", (pod_id,)).fetchone()
    if pod is None:
        raise HTTPException(422, f"event {name}: pod {pod_id} is unknown to the hub")
    if pod["node_id"] is None:
        raise HTTPException(
            422, f"event {name}: pod {pod_id} is not placed on a node, so it cannot be billed"
        )
    if pod["node_id"] != event.node_id:
        raise HTTPException(422, f"event {name}: pod {pod_id} does not run on node {event.node_id}")
    price = int(node["price_per_sec_wei"])
    if int(event.price_per_sec_wei) != price:
        raise HTTPException(
            422,
            f"event {name}: price {event.price_per_sec_wei} wei/s is not node "
            f"{event.node_id}'s registered price {price} wei/s",
        )
    gpus = len(json.loads(node["gpus"]))
    if event.gpu_count > gpus:
        raise HTTPException(
            422,
            f"event {name}: gpu_count {event.gpu_count} is more than the "
            f"{gpus} GPU{'s' if gpus != 1 else ''} node {event.node_id} registered",
        )
    other = db.execute(
        'SELECT event_id FROM usage_events WHERE pod_id = ? AND start < ? AND "end" > ? LIMIT 1',
        (pod_id, event.end.timestamp(), event.start.timestamp()),
    ).fetchone()
    if other is not None:
        raise HTTPException(
            409,
            f"event {name} overlaps event {other['event_id']} of pod {pod_id}: a pod's GPU "
            "time is billed once",
        )
    return str(pod["renter"])


@router.post(
    "/v1/usage",
    response_model=models.UsageAccepted,
    responses={409: {"description": "an event_id recorded with other values, or an overlap"}},
)
def post_usage(
    events: Annotated[list[models.UsageEvent], Field(min_length=1, max_length=MAX_USAGE_BATCH)],
    who: Who,
    hub: TheHub,
) -> models.UsageAccepted:
    """Record GPU time for the ledger: only what the hub can vouch for is billable.

    The pod must be one the operator placed on that node, the price the node's
    registered one, the GPU count within the node's GPUs, and the interval must not
    overlap one already recorded for the pod: otherwise a node could bill for pods it
    never ran, at any price, or for the same second twice.
    """
    accepted = duplicates = 0
    now = time.time()
    # Metering reports time already used; an interval ending ahead of the hub's clock
    # (beyond the allowed skew) would bill today for GPU time that may never happen.
    latest = now + hub.config.clock_skew.total_seconds()
    for event in events:
        if event.end.timestamp() > latest:
            raise HTTPException(
                422, f"event {event.event_id} ends in the future (check the node's clock)"
            )
    with hub.store.transaction() as db:
        for event in events:
            node = node_row(db, event.node_id, who)
            seconds = int((event.end - event.start).total_seconds())
            wei = str(seconds * event.gpu_count * int(event.price_per_sec_wei))
            values = (
                event.node_id,
                event.pod_id,
                event.gpu_count,
                event.start.timestamp(),
                event.end.timestamp(),
                event.price_per_sec_wei,
            )
            old = db.execute(
                'SELECT node_id, pod_id, gpu_count, start, "end", price_per_sec_wei '
                "FROM usage_events WHERE node_id = ? AND event_id = ?",
                (event.node_id, event.event_id),
            ).fetchone()
            if old is not None:
                if tuple(old) != values:
                    raise HTTPException(
                        409, f"event {event.event_id} was already recorded with other values"
                    )
                duplicates += 1
                continue
            renter = billable(db, event, node)
            db.execute(
                'INSERT INTO usage_events (event_id, node_id, pod_id, gpu_count, start, "end", '
                "seconds, price_per_sec_wei, wei, received_at, renter) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (event.event_id, *values[:5], seconds, values[5], wei, now, renter),
            )
            accepted += 1
    return models.UsageAccepted(accepted=accepted, duplicates=duplicates)


@router.get("/v1/usage", response_model=models.UsageSummary)
def get_usage(
    node_id: Annotated[models.NodeId, Query()], who: Who, hub: TheHub
) -> models.UsageSummary:
    address = person(who)
    with hub.store.read() as db:
        node_row(db, node_id, Caller(address, None), deregistered_ok=True)
        rows = db.execute(
            "SELECT seconds, wei FROM usage_events WHERE node_id = ?", (node_id,)
        ).fetchall()
    return models.UsageSummary(
        node_id=node_id,
        seconds=sum(int(r["seconds"]) for r in rows),
        wei=str(sum(int(r["wei"]) for r in rows)),
        events=len(rows),
    )
