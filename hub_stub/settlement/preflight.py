"""Check rows against the chain before paying them: free reads instead of refused items.

The contract would refuse an item whose GPU type has no rate or whose renter's deposit is
too small, and the refusal would still cost gas; a read (``eth_call``) costs nothing. So
before each transaction the worker reads the rate of every GPU type and the deposit of
every renter in the candidate rows, and fails here what the chain would refuse.

Price reconciliation (docs/settlement.md): the ledger prices a row at the node's
registered price per GPU-second, the contract charges the operator's rate for the GPU
type. A row is paid only when the two agree; otherwise it fails ``rate-mismatch`` naming
both, and is checked again later (the operator may set the rate, or the provider
re-register at it). So a provider is never paid other than what the ledger shows, and a
renter never charged other than what they were quoted.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from hub_stub.chain import Contract, gpu_type
from hub_stub.settlement.ledger import Row


@dataclass
class Checked:
    """Rows that may be paid now (at most the batch size, id order) and rows that may not."""

    passing: list[Row] = field(default_factory=list)
    failures: list[tuple[int, str, str]] = field(default_factory=list)


def preflight(rows: list[Row], contract: Contract, limit: int) -> Checked:
    """Split ``rows`` (id order) into up to ``limit`` payable rows and refused ones.

    Deposits are spent in id order as rows pass, so a renter whose deposit covers only the
    first rows gets those paid and the rest refused. Rows after the batch is full are left
    as they are (the next transaction takes them).
    """
    rates = {name: int(contract.call("ratePerSecond", gpu_type(name))) for name in _names(rows)}
    deposits = {renter: int(contract.call("deposits", renter)) for renter in _renters(rows)}
    checked = Checked()
    for row in rows:
        if len(checked.passing) >= limit:
            break
        rate = rates[row.gpu_name]
        left = deposits[row.renter]
        if rate == 0:
            reason = "unknown-gpu-type"
            detail = f"the contract has no rate for {row.gpu_name!r} (the operator sets one)"
        elif rate != row.price_per_sec_wei:
            reason = "rate-mismatch"
            detail = (
                f"the ledger priced {row.price_per_sec_wei} wei per GPU-second, the contract "
                f"charges {rate} for {row.gpu_name!r}"
            )
        elif left < row.amount_wei:
            reason = "insufficient-deposit"
            detail = (
                f"renter {row.renter} has {left} wei in escrow, this row costs {row.amount_wei}"
            )
        else:
            deposits[row.renter] = left - row.amount_wei
            checked.passing.append(row)
            continue
        checked.failures.append((row.settlement_id, reason, detail))
    return checked


def _names(rows: list[Row]) -> list[str]:
    return sorted({row.gpu_name for row in rows})


def _renters(rows: list[Row]) -> list[str]:
    return sorted({row.renter for row in rows})
