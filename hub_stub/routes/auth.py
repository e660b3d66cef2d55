"""Sessions: a one-time nonce, a SIWE login that returns a bearer token, and logout."""

from __future__ import annotations

import asyncio

from fastapi import APIRouter, HTTPException, Request, Response

from hub_stub import auth, models
from hub_stub.deps import AUTH, TheHub, Who, person
from hub_stub.timefmt import rfc3339

# A login that has not been verified (on the hub's LOGIN_WORKERS threads) within this many
# seconds gets a 503 and may be retried: a burst of logins queues, it does not pile up.
LOGIN_DEADLINE = 10.0

router = APIRouter()


@router.post(
    "/v1/auth/nonce",
    response_model=models.NonceOut,
    dependencies=AUTH,
    responses={503: {"description": "too many logins pending"}},
)
def nonce(hub: TheHub) -> models.NonceOut:
    try:
        value, expires = auth.new_nonce(hub.store, hub.config)
    except auth.TooManyNonces:
        raise HTTPException(
            503, "too many logins pending: try again shortly", headers={"Retry-After": "5"}
        ) from None
    return models.NonceOut(nonce=value, expires_at=rfc3339(expires))


@router.post(
    "/v1/auth/login",
    response_model=models.LoginOut,
    dependencies=AUTH,
    responses={
        401: {"description": "rejected, detail names the reason"},
        503: {"description": "too many logins being verified"},
    },
)
async def login(body: models.LoginIn, hub: TheHub) -> models.LoginOut:
    # Verified off the event loop: a signature recovery is milliseconds of pure Python.
    job = asyncio.get_running_loop().run_in_executor(
        hub.verifier, auth.login, hub.store, hub.config, body.message, body.signature
    )
    try:
        token, address, expires = await asyncio.wait_for(job, LOGIN_DEADLINE)
    except auth.LoginRejected as exc:
        raise HTTPException(401, str(exc)) from None
    except TimeoutError:
        raise HTTPException(
            503, "too many logins being verified: try again shortly", headers={"Retry-After": "5"}
        ) from None
    return models.LoginOut(token=token, address=address, expires_at=rfc3339(expires))


@router.delete("/v1/auth/session", status_code=204, response_class=Response)
def logout(request: Request, who: Who, hub: TheHub) -> Response:
    """Revoke the bearer token this request carries: it stops working at once."""
    person(who)
    _, _, token = request.headers["authorization"].partition(" ")
    auth.revoke(hub.store, token.strip(), hub.tokens)
    return Response(status_code=204)
