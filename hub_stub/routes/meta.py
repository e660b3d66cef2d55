"""What anyone may ask before logging in: is the hub up, and how to talk to it."""

from __future__ import annotations

from fastapi import APIRouter

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
