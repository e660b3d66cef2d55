"""WireGuard peers: one address per registered node, from a small shared pool."""

from __future__ import annotations

import ipaddress
import sqlite3
import time
from typing import Annotated

from fastapi import APIRouter, HTTPException, Query, Response

from hub_stub import models
from hub_stub.deps import Caller, TheHub, Who
from hub_stub.rows import node_row

ALLOWED_IPS = "10.100.0.0/16"
PERSISTENT_KEEPALIVE = 25

router = APIRouter()


def peer_node(db: sqlite3.Connection, node_id: str | None, who: Caller) -> sqlite3.Row:
    """The node a VPN peer is for: the one named, or the calling node's own."""
    if node_id is None:
        if who.node_id is None:
            raise HTTPException(
                422,
                "node_id: name the node this address is for (a VPN address belongs to a "
                "registered node; a node's own certificate names it)",
            )
        node_id = who.node_id
    return node_row(db, node_id, who)


@router.post(
    "/v1/vpn/peers",
    response_model=models.PeerOut,
    responses={409: {"description": "pool full, wallet at its cap, or key in use"}},
)
def add_peer(body: models.PeerIn, who: Who, hub: TheHub) -> models.PeerOut:
    """One address per node: a new key for a node moves the node's address to it.

    Addresses are a shared, small pool (253 by default): tying each to a registered node
    and capping the nodes with an address per wallet keeps one wallet from taking it.
    """
    config = hub.config
    first, last = (int(a) for a in config.vpn_pool)
    cap = config.vpn_peers_per_wallet
    with hub.store.transaction() as db:
        node = peer_node(db, body.node_id, who)
        node_id = node["node_id"]
        holder = db.execute(
            "SELECT p.node_id, n.owner FROM vpn_peers p JOIN nodes n "
            "ON n.node_id = p.node_id WHERE p.public_key = ?",
            (body.public_key,),
        ).fetchone()
        if holder is not None and holder["owner"] != node["owner"]:
            raise HTTPException(409, "this public key is registered to another wallet")
        if holder is not None and holder["node_id"] != node_id:
            raise HTTPException(
                409,
                f"this public key is the VPN key of node {holder['node_id']}: use a key per node",
            )
        mine = db.execute("SELECT address FROM vpn_peers WHERE node_id = ?", (node_id,)).fetchone()
        if mine is not None:
            address = mine["address"]
            db.execute(
                "UPDATE vpn_peers SET public_key = ? WHERE node_id = ?",
                (body.public_key, node_id),
            )
        else:
            held = db.execute(
                "SELECT count(*) FROM vpn_peers p JOIN nodes n ON n.node_id = p.node_id "
                "WHERE n.owner = ?",
                (node["owner"],),
            ).fetchone()[0]
            if held >= cap:
                raise HTTPException(
                    409,
                    f"wallet {node['owner']} has VPN addresses for {held} nodes, at most "
                    f"{cap} per wallet: deregister a node it no longer uses "
                    "(DELETE /v1/nodes/{id})",
                )
            used = {
                int(ipaddress.IPv4Address(r["address"]))
                for r in db.execute("SELECT address FROM vpn_peers")
            }
            free = next((a for a in range(first, last + 1) if a not in used), None)
            if free is None:
                raise HTTPException(
                    409,
                    f"VPN address pool {config.vpn_pool[0]}-{config.vpn_pool[1]} is full: "
                    "delete unused peers first",
                )
            address = str(ipaddress.IPv4Address(free))
            db.execute(
                "INSERT INTO vpn_peers (node_id, public_key, address, created_at) "
                "VALUES (?, ?, ?, ?)",
                (node_id, body.public_key, address, time.time()),
            )
    return models.PeerOut(
        public_key=body.public_key,
        node_id=node_id,
        address=address,
        server_public_key=hub.vpn_server_public_key,
        endpoint=hub.vpn_endpoint,
        allowed_ips=ALLOWED_IPS,
        persistent_keepalive=PERSISTENT_KEEPALIVE,
    )


@router.delete("/v1/vpn/peers", status_code=204, response_class=Response)
def delete_peer(public_key: Annotated[models.WgKey, Query()], who: Who, hub: TheHub) -> Response:
    """Release an address: by the node holding the key, or by that node's owner."""
    if who.address is None and who.node_id is None:
        raise HTTPException(401, "authenticate with the node's client certificate or a token")
    with hub.store.transaction() as db:
        gone = db.execute(
            "DELETE FROM vpn_peers WHERE public_key = ? AND (node_id = ? OR node_id IN "
            "(SELECT node_id FROM nodes WHERE owner = ?))",
            (public_key, who.node_id, who.address),
        )
        if gone.rowcount != 1:
            raise HTTPException(404, "no such peer for this caller")
    return Response(status_code=204)
