"""The hub's HTTP API (docs/hub-api.md) as a FastAPI app over the SQLite store.

FastAPI + pydantic because every body must be validated before it reaches the database and the
contract must be machine-readable: the same models produce the 422s and ``/openapi.json``,
which the tests fuzz with schemathesis. Endpoints are plain ``def`` functions: FastAPI runs
them in its threadpool, and the store's lock + IMMEDIATE transactions keep concurrent
requests from interleaving inside a transaction.

Who is calling is decided once per request by :func:`hub_stub.deps.caller`; the row lookups
that check who may read or change a row are in :mod:`hub_stub.rows`.
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
import sqlite3
import time
import uuid
from collections.abc import Sequence
from typing import Annotated, Any

from fastapi import FastAPI, HTTPException, Query, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import Field

from hub_stub import __version__, auth, codes, models
from hub_stub.ca import CsrRejected
from hub_stub.config import HubConfig
from hub_stub.deps import AUTH, CLAIM, OPEN, Admin, Caller, Who, person, spend_token
from hub_stub.kube import JoinUnavailable
from hub_stub.limits import BodyLimit
from hub_stub.rows import node_row, renter_pod, ssh_of
from hub_stub.state import Hub
from hub_stub.timefmt import rfc3339

ALLOWED_IPS = "10.100.0.0/16"
PERSISTENT_KEEPALIVE = 25
MAX_USAGE_BATCH = 1000
# A login that has not been verified (on the hub's LOGIN_WORKERS threads) within this many
# seconds gets a 503 and may be retried: a burst of logins queues, it does not pile up.
LOGIN_DEADLINE = 10.0
HEARTBEAT_BODY: dict[str, Any] = {
    "required": False,
    "content": {"application/json": {"schema": {"type": "object", "maxProperties": 0}}},
}
ERROR_SCHEMA: dict[str, Any] = {
    "title": "Error",
    "type": "object",
    "properties": {"detail": {"type": "string", "title": "Detail"}},
    "required": ["detail"],
}


def _validation_message(errors: Sequence[Any]) -> str:
    """pydantic's error list as one line a person can read."""
    parts = []
    for error in errors:
        where = ".".join(str(p) for p in error.get("loc", ()) if p != "body") or "body"
        parts.append(f"{where}: {error.get('msg', 'invalid')}")
    return "; ".join(parts)


def create_app(config: HubConfig) -> FastAPI:
    """Build the app (creating the data directory, database and CA on first start)."""
    hub = Hub(config)
    app = FastAPI(
        title="Worldland hub",
        version=__version__,
        description="Hub API v1 (see docs/hub-api.md): SIWE auth, CA, nodes, join, VPN, "
        "pods, transfer codes, usage ledger.",
    )
    app.state.hub = hub
    app.add_middleware(BodyLimit)
    store = hub.store

    @app.exception_handler(RequestValidationError)
    async def readable_422(request: Request, exc: RequestValidationError) -> JSONResponse:
        return JSONResponse(status_code=422, content={"detail": _validation_message(exc.errors())})

    @app.get("/health", response_model=models.Health, dependencies=OPEN)
    def health() -> models.Health:
        with store.read() as db:
            db.execute("SELECT 1").fetchone()
        return models.Health(status="ok", version=__version__)

    @app.get("/v1/info", response_model=models.Info, dependencies=OPEN)
    def info() -> models.Info:
        return models.Info(
            public_url=config.origin.uri,
            siwe_domain=config.siwe_domain,
            chain_ids=list(config.chain_ids),
            ca_certificate=hub.ca.cert_pem,
            api_version="v1",
            tls=config.tls,
            vpn_server_public_key=hub.vpn_server_public_key,
            vpn_endpoint=hub.vpn_endpoint,
        )

    @app.post(
        "/v1/auth/nonce",
        response_model=models.NonceOut,
        dependencies=AUTH,
        responses={503: {"description": "too many logins pending"}},
    )
    def nonce() -> models.NonceOut:
        try:
            value, expires = auth.new_nonce(store, config)
        except auth.TooManyNonces:
            raise HTTPException(
                503, "too many logins pending: try again shortly", headers={"Retry-After": "5"}
            ) from None
        return models.NonceOut(nonce=value, expires_at=rfc3339(expires))

    @app.post(
        "/v1/auth/login",
        response_model=models.LoginOut,
        dependencies=AUTH,
        responses={
            401: {"description": "rejected, detail names the reason"},
            503: {"description": "too many logins being verified"},
        },
    )
    async def login(body: models.LoginIn) -> models.LoginOut:
        job = asyncio.get_running_loop().run_in_executor(
            hub.verifier, auth.login, store, config, body.message, body.signature
        )
        try:
            token, address, expires = await asyncio.wait_for(job, LOGIN_DEADLINE)
        except auth.LoginRejected as exc:
            raise HTTPException(401, str(exc)) from None
        except TimeoutError:
            raise HTTPException(
                503, "too many logins being verified: try again shortly",
                headers={"Retry-After": "5"},
            ) from None  # fmt: skip
        return models.LoginOut(token=token, address=address, expires_at=rfc3339(expires))

    @app.delete("/v1/auth/session", status_code=204, response_class=Response)
    def logout(request: Request, who: Who) -> Response:
        """Revoke the bearer token this request carries: it stops working at once."""
        person(who)
        _, _, token = request.headers["authorization"].partition(" ")
        auth.revoke(store, token.strip(), hub.tokens)
        return Response(status_code=204)

    @app.post(
        "/v1/nodes",
        response_model=models.NodeRegistered,
        status_code=201,
        responses={409: {"description": "a GPU is registered to another wallet"}},
    )
    def register_node(body: models.NodeIn, who: Who, response: Response) -> models.NodeRegistered:
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
        with store.transaction() as db:
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

    @app.get("/v1/nodes", response_model=models.NodeList)
    def list_nodes(who: Who) -> models.NodeList:
        owner = person(who)
        now = time.time()
        window = config.online_window.total_seconds()
        with store.read() as db:
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

    @app.post(
        "/v1/nodes/{node_id}/heartbeat",
        response_model=models.HeartbeatOut,
        openapi_extra={"requestBody": HEARTBEAT_BODY},
    )
    async def heartbeat(node_id: models.NodeIdPath, who: Who) -> Response:
        """Liveness. The body (``{}`` or none) carries nothing today and is not read.

        The hottest path, so it skips what it can: async (no threadpool hop), no body parsing,
        a prebuilt JSON response, and one autocommit UPDATE that also checks ownership; only
        a miss pays for finding out why (404 or 403).
        """
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

    @app.post(
        "/v1/certs",
        response_model=models.CertOut,
        responses={400: {"description": "CSR rejected"}},
    )
    def issue_cert(body: models.CertIn, who: Who) -> models.CertOut:
        """Issue a node certificate and revoke every earlier one of that node.

        A node holds one valid certificate: renewing (or bootstrapping again) ends the old
        one at once, so a copied certificate dies with the next renewal instead of living
        out its lifetime, and it can renew only if it is still the current one.
        """
        with store.read() as db:
            node_row(db, body.node_id, who)
        try:
            issued = hub.ca.sign_client_csr(body.csr, body.node_id, config.cert_lifetime)
        except CsrRejected as exc:
            raise HTTPException(400, str(exc)) from None
        now = time.time()
        with store.transaction() as db:
            row = node_row(db, body.node_id, who)
            if row["owner"] != who.address:  # the certificate alone authorised this renewal
                current = db.execute(
                    "SELECT 1 FROM certs WHERE serial = ? AND revoked_at IS NULL",
                    (who.cert_serial,),
                ).fetchone()
                if current is None:
                    raise HTTPException(
                        401, "this certificate has been replaced: renew with the new one"
                    )
            db.execute(
                "UPDATE certs SET revoked_at = ? WHERE node_id = ? AND revoked_at IS NULL",
                (now, body.node_id),
            )
            db.execute(
                "INSERT INTO certs (serial, node_id, not_after, issued_at) VALUES (?, ?, ?, ?)",
                (format(issued.serial, "x"), body.node_id, issued.not_after.timestamp(), now),
            )
        return models.CertOut(
            certificate=issued.pem,
            ca_certificate=hub.ca.cert_pem,
            not_after=rfc3339(issued.not_after.timestamp()),
            serial=format(issued.serial, "x"),
        )

    @app.post(
        "/v1/nodes/{node_id}/join",
        response_model=models.JoinOut,
        responses={503: {"description": "no Kubernetes join configuration"}},
    )
    def join(node_id: models.NodeIdPath, who: Who) -> models.JoinOut:
        with store.read() as db:
            node_row(db, node_id, who)
        try:
            params = hub.join.join_params(node_id)
        except JoinUnavailable as exc:
            raise HTTPException(503, str(exc)) from None
        return models.JoinOut(
            api_server=params.api_server, token=params.token, ca_cert_hashes=params.ca_cert_hashes
        )

    @app.delete(
        "/v1/nodes/{node_id}",
        status_code=204,
        response_class=Response,
        responses={409: {"description": "pods still run on the node"}},
    )
    def deregister_node(node_id: models.NodeIdPath, who: Who) -> Response:
        """The owner retires a node: its VPN address, certificates and GPUs are released.

        Only the owner's token may do it, not the node's certificate: a stolen certificate
        must not be able to take a provider's node off the market. The row stays
        (deregistered) because the ledger refers to it; registering the same host and GPUs
        again brings it back under the same id. Deregistering twice is fine (a retry).
        """
        owner = person(who)
        with store.transaction() as db:
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

    @app.post(
        "/v1/vpn/peers",
        response_model=models.PeerOut,
        responses={409: {"description": "pool full, wallet at its cap, or key in use"}},
    )
    def add_peer(body: models.PeerIn, who: Who) -> models.PeerOut:
        """One address per node: a new key for a node moves the node's address to it.

        Addresses are a shared, small pool (253 by default): tying each to a registered node
        and capping the nodes with an address per wallet keeps one wallet from taking it.
        """
        first, last = (int(a) for a in config.vpn_pool)
        cap = config.vpn_peers_per_wallet
        with store.transaction() as db:
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
                    f"this public key is the VPN key of node {holder['node_id']}: "
                    "use a key per node",
                )
            mine = db.execute(
                "SELECT address FROM vpn_peers WHERE node_id = ?", (node_id,)
            ).fetchone()
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

    @app.delete("/v1/vpn/peers", status_code=204, response_class=Response)
    def delete_peer(public_key: Annotated[models.WgKey, Query()], who: Who) -> Response:
        """Release an address: by the node holding the key, or by that node's owner."""
        if who.address is None and who.node_id is None:
            raise HTTPException(401, "authenticate with the node's client certificate or a token")
        with store.transaction() as db:
            gone = db.execute(
                "DELETE FROM vpn_peers WHERE public_key = ? AND (node_id = ? OR node_id IN "
                "(SELECT node_id FROM nodes WHERE owner = ?))",
                (public_key, who.node_id, who.address),
            )
            if gone.rowcount != 1:
                raise HTTPException(404, "no such peer for this caller")
        return Response(status_code=204)

    @app.post("/v1/admin/pods", response_model=models.PodCreated, status_code=201)
    def register_pod(body: models.PodIn, _: Admin, response: Response) -> models.PodCreated:
        """Record or update a pod. A new renter ends the previous renter's open codes for it.

        ``node_id`` places the pod on a node, which is what lets that node bill for it.
        """
        with store.transaction() as db:
            if body.node_id is not None:
                node = db.execute(
                    "SELECT 1 FROM nodes WHERE node_id = ? AND deregistered_at IS NULL",
                    (body.node_id,),
                ).fetchone()
                if node is None:
                    raise HTTPException(
                        422, f"node_id: node {body.node_id} is not a registered node"
                    )
            existed = db.execute(
                "SELECT renter FROM pods WHERE pod_id = ?", (body.pod_id,)
            ).fetchone()
            if existed is not None and existed["renter"] != body.renter_address:
                db.execute(
                    "DELETE FROM transfers WHERE pod_id = ? AND used_at IS NULL", (body.pod_id,)
                )
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

    @app.get("/v1/pods/{pod_id}/ssh", response_model=models.SshOut)
    def pod_ssh(pod_id: models.IdentPath, who: Who) -> models.SshOut:
        address = person(who)
        with store.read() as db:
            return ssh_of(renter_pod(db, pod_id, address))

    @app.post(
        "/v1/transfers",
        response_model=models.TransferCreated,
        status_code=201,
        responses={409: {"description": "no free code found (retry)"}},
    )
    def create_transfer(body: models.TransferIn, who: Who) -> models.TransferCreated:
        """Register a file under a fresh code; expired codes are deleted in the same step.

        Only the code's hash is stored. Purging here (and on claims) keeps expired codes
        from accumulating without a background task.
        """
        address = person(who)
        now = time.time()
        expires = now + config.transfer_ttl.total_seconds()
        with store.transaction() as db:
            renter_pod(db, body.pod_id, address)
            db.execute("DELETE FROM transfers WHERE expires_at <= ?", (now,))
            for _ in range(20):
                code = codes.new_code()
                digest = codes.code_hash(code)
                taken = db.execute(
                    "SELECT 1 FROM transfers WHERE code_hash = ?", (digest,)
                ).fetchone()
                if not taken:
                    break
            else:
                raise HTTPException(409, "could not find a free code; try again")
            db.execute(
                "INSERT INTO transfers (code_hash, pod_id, creator, path, name, size, sha256, "
                "created_at, expires_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    digest,
                    body.pod_id,
                    address,
                    body.path,
                    body.name,
                    body.size,
                    body.sha256,
                    now,
                    expires,
                ),
            )
        return models.TransferCreated(code=code, expires_at=rfc3339(expires))

    @app.get(
        "/v1/transfers/{code}",
        response_model=models.TransferOut,
        dependencies=CLAIM,
        responses={410: {"description": "used or expired"}},
    )
    def claim_transfer(code: models.CodePath, who: Who) -> models.TransferOut:
        """Spend a code once, by its hash; expired codes go, this one with a 410 that says so.

        A code is the sender's offer of a file in *their* pod: if the pod has changed
        renter since, the code is withdrawn rather than handing the new renter's pod out.
        Claims are rate-limited per client address and per wallet: a guesser gets about a
        try a second from each, against a code space of 2**53.
        """
        address = person(who)
        spend_token(hub, "claim-wallet", address)
        now = time.time()
        digest = codes.code_hash(code)
        refusal: HTTPException | None = None
        with store.transaction() as db:
            row = db.execute(
                "SELECT t.*, p.renter, p.ssh_host, p.ssh_port, p.ssh_user, p.host_key "
                "FROM transfers t JOIN pods p ON p.pod_id = t.pod_id WHERE t.code_hash = ?",
                (digest,),
            ).fetchone()
            db.execute("DELETE FROM transfers WHERE expires_at <= ?", (now,))
            if row is None:
                refusal = HTTPException(404, f"unknown code {code}")
            elif row["used_at"] is not None:
                refusal = HTTPException(410, "code already used")
            elif row["expires_at"] <= now:
                refusal = HTTPException(410, "code expired: ask the sender for a new one")
            elif row["renter"] != row["creator"]:
                # What POST /v1/admin/pods does on a renter change, should a code have been
                # missed: the code goes, and the answer is the one a deleted code gets.
                db.execute("DELETE FROM transfers WHERE code_hash = ?", (digest,))
                refusal = HTTPException(404, f"unknown code {code}")
            else:
                db.execute(
                    "UPDATE transfers SET used_at = ?, used_by = ? WHERE code_hash = ?",
                    (now, address, digest),
                )
        if refusal is not None:  # raised after the commit, so the deletions are kept
            raise refusal
        return models.TransferOut(
            code=code,
            pod_id=row["pod_id"],
            path=row["path"],
            name=row["name"],
            size=row["size"],
            sha256=row["sha256"],
            ssh=ssh_of(row),
        )

    def billable(db: sqlite3.Connection, event: models.UsageEvent, node: sqlite3.Row) -> None:
        """Refuse an event the hub cannot vouch for (see :func:`post_usage`)."""
        name, pod_id = event.event_id, event.pod_id
        pod = db.execute("SELECT node_id FROM pods WHERE pod_id = ?", (pod_id,)).fetchone()
        if pod is None:
            raise HTTPException(422, f"event {name}: pod {pod_id} is unknown to the hub")
        if pod["node_id"] is None:
            raise HTTPException(
                422, f"event {name}: pod {pod_id} is not placed on a node, so it cannot be billed"
            )
        if pod["node_id"] != event.node_id:
            raise HTTPException(
                422, f"event {name}: pod {pod_id} does not run on node {event.node_id}"
            )
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
            'SELECT event_id FROM usage_events WHERE pod_id = ? AND start < ? AND "end" > ? '
            "LIMIT 1",
            (pod_id, event.end.timestamp(), event.start.timestamp()),
        ).fetchone()
        if other is not None:
            raise HTTPException(
                409,
                f"event {name} overlaps event {other['event_id']} of pod {pod_id}: a pod's GPU "
                "time is billed once",
            )

    @app.post(
        "/v1/usage",
        response_model=models.UsageAccepted,
        responses={409: {"description": "an event_id recorded with other values, or an overlap"}},
    )
    def post_usage(
        events: Annotated[list[models.UsageEvent], Field(min_length=1, max_length=MAX_USAGE_BATCH)],
        who: Who,
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
        latest = now + config.clock_skew.total_seconds()
        for event in events:
            if event.end.timestamp() > latest:
                raise HTTPException(
                    422, f"event {event.event_id} ends in the future (check the node's clock)"
                )
        with store.transaction() as db:
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
                billable(db, event, node)
                db.execute(
                    'INSERT INTO usage_events (event_id, node_id, pod_id, gpu_count, start, "end", '
                    "seconds, price_per_sec_wei, wei, received_at) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (event.event_id, *values[:5], seconds, values[5], wei, now),
                )
                accepted += 1
        return models.UsageAccepted(accepted=accepted, duplicates=duplicates)

    @app.get("/v1/usage", response_model=models.UsageSummary)
    def get_usage(node_id: Annotated[models.NodeId, Query()], who: Who) -> models.UsageSummary:
        address = person(who)
        with store.read() as db:
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

    def openapi() -> dict[str, Any]:
        """FastAPI's schema, with 422 documented as what the hub sends: a string detail."""
        if app.openapi_schema is None:
            from fastapi.openapi.utils import get_openapi

            spec = get_openapi(
                title=app.title, version=app.version, description=app.description,
                routes=app.routes,
            )  # fmt: skip
            schemas = spec.setdefault("components", {}).setdefault("schemas", {})
            schemas.pop("ValidationError", None)
            schemas["HTTPValidationError"] = ERROR_SCHEMA
            app.openapi_schema = spec
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
    return app
