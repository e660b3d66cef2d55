"""What settlement means for the caller: a provider's earnings, a renter's balance.

Both answer from the ledger (always) and from the contract (when the hub settles and the
chain answers within a few seconds; otherwise the chain figures are null and
``chain_error`` says why), for the logged-in wallet only.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

import httpx
from fastapi import APIRouter

from hub_stub import models
from hub_stub.chain import ChainError
from hub_stub.deps import TheHub, Who, person
from hub_stub.settlement.reads import ChainReads, Totals, provider_totals, renter_totals
from hub_stub.state import Hub
from hub_stub.timefmt import rfc3339

router = APIRouter()
T = TypeVar("T")


def _totals(totals: Totals) -> models.TotalsOut:
    return models.TotalsOut(
        intervals=totals.intervals,
        seconds=totals.seconds,
        gpu_seconds=totals.gpu_seconds,
        billed_wei=str(totals.billed_wei),
        paid_wei=str(totals.paid_wei),
        pending_wei=str(totals.pending_wei),
        failed_wei=str(totals.failed_wei),
        failed_reasons=dict(totals.failed_reasons),
        last_paid_block=totals.last_block,
        last_paid_tx=totals.last_tx_hash,
    )


def _ask(hub: Hub, question: Callable[[ChainReads], T]) -> tuple[T | None, str | None]:
    """The chain's answer, or None and why not (never the RPC URL's path or query)."""
    if hub.settlement is None:
        return None, "settlement is not configured on this hub"
    try:
        return question(hub.settlement.reads), None
    except (ChainError, httpx.HTTPError, ValueError) as exc:
        where = hub.settlement.config.shown_rpc
        return None, f"the chain at {where} did not answer ({type(exc).__name__})"


def _settlement(hub: Hub) -> models.SettlementOut:
    if hub.settlement is None:
        return models.SettlementOut(enabled=False)
    reads = hub.settlement.reads
    token, _ = _ask(hub, lambda r: models.TokenOut(**r.token()))
    chain_id, _ = _ask(hub, lambda r: r.rpc.chain_id)
    return models.SettlementOut(
        enabled=True,
        contract=reads.contract.address,
        chain_id=chain_id,
        confirmations=reads.confirmations,
        token=token,
    )


@router.get("/v1/earnings", response_model=models.EarningsOut)
def earnings(who: Who, hub: TheHub) -> models.EarningsOut:
    """The caller's usage as a provider, per node and GPU type: billed, paid, pending,
    failed, and what the contract holds for them to withdraw."""
    address = person(who)
    groups = provider_totals(hub.store, address)
    total = Totals()
    for totals in groups.values():
        total.merge(totals)
    withdrawable, error = _ask(hub, lambda r: r.earnings(address))
    return models.EarningsOut(
        address=address,
        settlement=_settlement(hub),
        groups=[
            models.EarningsGroupOut(node_id=node, gpu_type=gpu, **_totals(totals).model_dump())
            for (node, gpu), totals in groups.items()
        ],
        total=_totals(total),
        withdrawable_wei=None if withdrawable is None else str(withdrawable),
        chain_error=error,
    )


@router.get("/v1/balance", response_model=models.BalanceOut)
def balance(who: Who, hub: TheHub) -> models.BalanceOut:
    """The caller's usage as a renter (billed, paid, owed) and their escrow on chain."""
    address = person(who)
    totals = renter_totals(hub.store, address)
    escrow, error = _ask(hub, lambda r: r.deposit(address))
    deposit = requested = None
    available = None
    if escrow is not None:
        deposit, requested, available_at = escrow
        available = rfc3339(available_at) if requested else None
    return models.BalanceOut(
        address=address,
        settlement=_settlement(hub),
        total=_totals(totals),
        owed_wei=str(totals.pending_wei + totals.failed_wei),
        deposit_wei=None if deposit is None else str(deposit),
        withdrawal_requested_wei=None if requested is None else str(requested),
        withdrawal_available_at=available,
        chain_error=error,
    )
