"""The dependencies every router shares: the hub's state, who is calling, and rate limits.

Who is calling is decided once per request by :func:`caller`: a person by bearer token (SIWE
login), a node by the client certificate the TLS layer verified against the hub CA (exposed by
``hub_stub.tls`` through the ASGI ``tls`` extension), an operator by the admin token
(:func:`admin`). Rate limits (:data:`OPEN`, :data:`AUTH`, :data:`CLAIM`) run before the
endpoint does any work.
"""

from __future__ import annotations

import functools
import hmac
import math
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated

from cryptography import x509
from cryptography.x509.oid import NameOID
from fastapi import Depends, HTTPException, Request

from hub_stub import auth
from hub_stub.limits import client_key
from hub_stub.state import Hub


def hub_of(request: Request) -> Hub:
    """The state the app serving ``request`` was built with (``app.state.hub``).

    The dependencies below, and the heartbeat, call this directly rather than depending on
    :func:`current_hub`: FastAPI solves each dependency per request, and one more costs a
    heartbeat about 15 us, a sixth of its time in the app.
    """
    hub: Hub = request.app.state.hub
    return hub


async def current_hub(request: Request) -> Hub:
    """:func:`hub_of` as a dependency, for endpoints (async: no threadpool hop)."""
    return hub_of(request)


TheHub = Annotated[Hub, Depends(current_hub)]


@dataclass(frozen=True)
class Caller:
    """Who sent the request: a wallet (bearer), a node (client cert), or neither.

    ``cert_serial`` is the serial of the node's certificate, so a renewal can check, inside
    its transaction, that the certificate it replaces has not been replaced meanwhile.
    """

    address: str | None
    node_id: str | None
    cert_serial: str | None = None


@functools.lru_cache(maxsize=1024)
def _cert_identity(pem: str) -> tuple[str, str] | None:
    """(node id, serial hex) of a client cert the handshake already verified."""
    cert = x509.load_pem_x509_certificate(pem.encode())
    names = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    if not names:
        return None
    return str(names[0].value), format(cert.serial_number, "x")


async def caller(request: Request) -> Caller:
    """Resolve the bearer token and the verified client certificate, if any.

    ``async`` on purpose: the lookups are short indexed reads (usually a cache hit), so
    running them on the event loop beats a threadpool hop on every request.
    """
    hub = hub_of(request)
    store = hub.store
    address = None
    header = request.headers.get("authorization")
    if header is not None:
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise HTTPException(401, "Authorization must be 'Bearer <token>'")
        address = auth.address_for_token(store, token.strip(), hub.tokens)
        if address is None:
            raise HTTPException(401, "token unknown or expired: log in again")
    node_id = serial = None
    tls = request.scope.get("extensions", {}).get("tls") or {}
    chain = tls.get("client_cert_chain") or []
    if chain:
        identity = _cert_identity(chain[0])
        if identity is not None:
            # A certificate the handshake accepted may have been replaced since: the hub's
            # own record, checked on every request, decides (a revoked one names no node).
            with store.read() as db:
                row = db.execute(
                    "SELECT node_id FROM certs WHERE serial = ? AND node_id = ? "
                    "AND revoked_at IS NULL",
                    (identity[1], identity[0]),
                ).fetchone()
            if row is not None:
                node_id, serial = identity
    return Caller(address, node_id, serial)


Who = Annotated[Caller, Depends(caller)]


def person(who: Caller) -> str:
    """The caller's wallet, or 401: for what only a logged-in person may do."""
    if who.address is None:
        raise HTTPException(
            401, "log in first: send 'Authorization: Bearer <token>' from /v1/auth/login"
        )
    return who.address


def admin(request: Request) -> None:
    """Require the operator token (compared in constant time)."""
    hub = hub_of(request)
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(
        token.strip().encode(), hub.admin_token.encode()
    ):
        raise HTTPException(401, "admin token required (the hub's --admin-token-file)")


Admin = Annotated[None, Depends(admin)]


def limited(bucket: str) -> Callable[[Request], Awaitable[None]]:
    """A dependency that spends one of the client address's tokens in ``bucket`` (else 429).

    ``async`` so that the check runs on the event loop: a sync dependency would cost every
    limited request a threadpool hop for a few dictionary operations.
    """

    async def spend(request: Request) -> None:
        spend_token(
            hub_of(request), bucket, client_key(request.client.host if request.client else None)
        )

    return spend


def spend_token(hub: Hub, bucket: str, key: str) -> None:
    """Spend one of ``key``'s tokens in ``bucket``, or refuse with 429 and Retry-After."""
    wait = hub.limits[bucket].take(key)
    if wait > 0:
        seconds = math.ceil(wait)
        raise HTTPException(
            429,
            f"too many requests from {key}: try again in {seconds} s",
            headers={"Retry-After": str(seconds)},
        )


OPEN = [Depends(limited("open"))]
AUTH = [Depends(limited("auth"))]
CLAIM = [Depends(limited("claim"))]
