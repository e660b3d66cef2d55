"""The hub's HTTP API (docs/hub-api.md): one FastAPI app wiring the routers over the state.

FastAPI + pydantic because every body must be validated before it reaches the database and the
contract must be machine-readable: the same models produce the 422s and ``/openapi.json``,
which the tests fuzz with schemathesis. Endpoints are plain ``def`` functions unless they are
hot or wait on other threads: FastAPI runs the plain ones in its threadpool, and the store's
lock + IMMEDIATE transactions keep concurrent requests from interleaving inside a transaction.

Where things live: :mod:`hub_stub.state` (the :class:`~hub_stub.state.Hub`, built once per
app), :mod:`hub_stub.deps` (who is calling, rate limits, the hub as a dependency),
:mod:`hub_stub.rows` (row lookups with their access checks), :mod:`hub_stub.routes` (one
router per resource). This module adds what belongs to the app as a whole: the body limit,
the 422 format and the OpenAPI document that describes it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from hub_stub import __version__
from hub_stub.config import HubConfig
from hub_stub.limits import BodyLimit
from hub_stub.routes import auth, certs, meta, nodes, pods, settlement, transfers, usage, vpn
from hub_stub.state import Hub

ERROR_SCHEMA: dict[str, Any] = {
    "title": "Error",
    "type": "object",
    "properties": {"detail": {"type": "string", "title": "Detail"}},
    "required": ["detail"],
}
# FastAPI matches a request against the included routers in this order, walking each
# router's routes in turn, so the one holding the heartbeat (the bulk of the traffic) comes
# first; /openapi.json lists the paths in this order too.
ROUTERS = (nodes, meta, auth, certs, vpn, pods, transfers, usage, settlement)


def _validation_message(errors: Sequence[Any]) -> str:
    """pydantic's error list as one line a person can read."""
    parts = []
    for error in errors:
        where = ".".join(str(p) for p in error.get("loc", ()) if p != "body") or "body"
        parts.append(f"{where}: {error.get('msg', 'invalid')}")
    return "; ".join(parts)


async def readable_422(request: Request, exc: RequestValidationError) -> JSONResponse:
    """A validation failure as ``{"detail": "<one line>"}``, the shape of every other 4xx."""
    return JSONResponse(status_code=422, content={"detail": _validation_message(exc.errors())})


def create_app(config: HubConfig) -> FastAPI:
    """Build the app (creating the data directory, database and CA on first start).

    The settlement worker, when configured, runs while the app is served: started and
    stopped by the ASGI lifespan, so a SIGTERM lets the round in progress finish.
    """
    hub = Hub(config)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        if hub.settlement is not None:
            hub.settlement.start()
        try:
            yield
        finally:
            if hub.settlement is not None:
                hub.settlement.stop()

    app = FastAPI(
        title="Worldland hub",
        version=__version__,
        description="Hub API v1 (see docs/hub-api.md): SIWE auth, CA, nodes, join, VPN, "
        "pods, transfer codes, usage ledger, settlement.",
        lifespan=lifespan,
    )
    app.state.hub = hub
    app.add_middleware(BodyLimit)
    app.exception_handler(RequestValidationError)(readable_422)
    for module in ROUTERS:
        app.include_router(module.router)

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
