"""What anyone may ask before logging in: is the hub up, how to talk to it, its metrics."""

from __future__ import annotations

from fastapi import APIRouter, Response

from hub_stub import __version__, models
from hub_stub.deps import OPEN, TheHub

router = APIRouter()


@router.get("/health", response_model=models.Health, dependencies=OPEN)
def health(hub: TheHub) -> models.Health:
    # Up means the database answers, not only the process.
    with hub.store.read() as db:
        db.execute("SELECT 1").fetchone()
    return models.Health(status="ok", version=__version__)


@router.get("/v1/info", response_model=models.Info, dependencies=OPEN)
def info(hub: TheHub) -> models.Info:
    config = hub.config
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


@router.get(
    "/metrics",
    response_class=Response,
    dependencies=OPEN,
    responses={200: {"content": {"text/plain": {"schema": {"type": "string"}}}}},
)
def metrics(hub: TheHub) -> Response:
    """Prometheus metrics: open like /health and rate-limited the same way.

    Open rather than behind the admin token, so a scraper never holds the credential that
    places pods; everything in it is public on chain or a count (docs/settlement.md).
    """
    from prometheus_client import CONTENT_TYPE_LATEST

    return Response(hub.metrics.render(), media_type=CONTENT_TYPE_LATEST)
