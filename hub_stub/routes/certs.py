"""Node client certificates: issue one from a CSR, revoking every earlier one of the node."""

from __future__ import annotations

import time

from fastapi import APIRouter, HTTPException

from hub_stub import models
from hub_stub.ca import CsrRejected
from hub_stub.deps import TheHub, Who
from hub_stub.rows import node_row
from hub_stub.timefmt import rfc3339

router = APIRouter()


@router.post(
    "/v1/certs",
    response_model=models.CertOut,
    responses={400: {"description": "CSR rejected"}},
)
def issue_cert(body: models.CertIn, who: Who, hub: TheHub) -> models.CertOut:
    """Issue a node certificate and revoke every earlier one of that node.

    A node holds one valid certificate: renewing (or bootstrapping again) ends the old
    one at once, so a copied certificate dies with the next renewal instead of living
    out its lifetime, and it can renew only if it is still the current one.
    """
    with hub.store.read() as db:
        node_row(db, body.node_id, who)
    try:
        issued = hub.ca.sign_client_csr(body.csr, body.node_id, hub.config.cert_lifetime)
    except CsrRejected as exc:
        raise HTTPException(400, str(exc)) from None
    now = time.time()
    with hub.store.transaction() as db:
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
