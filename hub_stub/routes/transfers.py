"""Transfer codes: a renter offers a file in their pod under a one-time code; a claim spends it.

Codes are made by the hub and stored only as their hash (:mod:`hub_stub.codes`).
"""

from __future__ import annotations

import time

from fastapi import APIRouter, HTTPException

from hub_stub import codes, models
from hub_stub.deps import CLAIM, TheHub, Who, person, spend_token
from hub_stub.rows import renter_pod, ssh_of
from hub_stub.timefmt import rfc3339

router = APIRouter()


@router.post(
    "/v1/transfers",
    response_model=models.TransferCreated,
    status_code=201,
    responses={409: {"description": "no free code found (retry)"}},
)
def create_transfer(body: models.TransferIn, who: Who, hub: TheHub) -> models.TransferCreated:
    """Register a file under a fresh code; expired codes are deleted in the same step.

    Only the code's hash is stored. Purging here (and on claims) keeps expired codes
    from accumulating without a background task.
    """
    address = person(who)
    now = time.time()
    expires = now + hub.config.transfer_ttl.total_seconds()
    with hub.store.transaction() as db:
        renter_pod(db, body.pod_id, address)
        db.execute("DELETE FROM transfers WHERE expires_at <= ?", (now,))
        for _ in range(20):
            code = codes.new_code()
            digest = codes.code_hash(code)
            taken = db.execute("SELECT 1 FROM transfers WHERE code_hash = ?", (digest,)).fetchone()
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


@router.get(
    "/v1/transfers/{code}",
    response_model=models.TransferOut,
    dependencies=CLAIM,
    responses={410: {"description": "used or expired"}},
)
def claim_transfer(code: models.CodePath, who: Who, hub: TheHub) -> models.TransferOut:
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
    with hub.store.transaction() as db:
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
