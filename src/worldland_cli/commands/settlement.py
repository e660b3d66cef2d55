"""`worldland earnings` (provider) and `worldland balance` (renter): settlement, as the hub sees it.

Parsing and rendering only: both ask the hub (GET /v1/earnings, GET /v1/balance) with the
wallet's SIWE session, logging in again silently when a wallet key file is configured.
Amounts are shown in the payment token's units when the hub knows its decimals, with the
exact wei alongside; ``--json`` gives the wei as decimal strings.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from worldland_cli.commands.options import HubCa, HubUrl, JsonFlag, KeyFile, SiweDomain
from worldland_cli.output import Result

if TYPE_CHECKING:
    from worldland_cli.hubclient import Balance, Earnings, HubClient, SettlementInfo, UsageTotals


def earnings(
    hub: HubUrl = None,
    hub_ca: HubCa = None,
    siwe_domain: SiweDomain = None,
    private_key_file: KeyFile = None,
    json_output: JsonFlag = False,
) -> Result:
    """A provider's GPU time and pay: billed, paid on chain, pending, failed, withdrawable.

    Per node and GPU type, for the logged-in wallet's nodes.

    \b
    Examples:
      worldland earnings
      worldland earnings --json | jq -r .withdrawable_wei

    Exit status: 0 shown, 1 failed, 3 hub unreachable, 4 not logged in.
    """
    with _client(hub, hub_ca, siwe_domain, private_key_file) as client:
        found = client.earnings()
    return Result(found.to_json(), earnings_lines(found))


def balance(
    hub: HubUrl = None,
    hub_ca: HubCa = None,
    siwe_domain: SiweDomain = None,
    private_key_file: KeyFile = None,
    json_output: JsonFlag = False,
) -> Result:
    """A renter's escrow and GPU bill: deposit on chain, owed (not yet paid), paid.

    \b
    Examples:
      worldland balance
      worldland balance --json | jq -r .owed_wei

    Exit status: 0 shown, 1 failed, 3 hub unreachable, 4 not logged in.
    """
    with _client(hub, hub_ca, siwe_domain, private_key_file) as client:
        found = client.balance()
    return Result(found.to_json(), balance_lines(found))


def _client(
    hub: str | None, hub_ca: str | None, siwe_domain: str | None, key_file: str | None
) -> HubClient:
    from worldland_cli import config
    from worldland_cli.auth.relogin import SignIn, authenticated_client

    sign_in = SignIn(hub=hub, hub_ca=hub_ca, private_key_file=key_file, siwe_domain=siwe_domain)
    client, _ = authenticated_client(config.load(), sign_in)
    return client


def earnings_lines(found: Earnings) -> list[str]:
    info = found.settlement
    lines = [f"Earnings of {found.address}", _where(info)]
    for group in found.groups:
        lines.append(f"node {group.node_id}  {group.gpu_type}")
        lines.extend(f"  {line}" for line in _totals(group.totals, info))
    if not found.groups:
        lines.append("No metered GPU time yet.")
    else:
        lines.append("all nodes")
        lines.extend(f"  {line}" for line in _totals(found.total, info))
    if found.withdrawable_wei is not None:
        lines.append(
            f"withdrawable now: {_amount(found.withdrawable_wei, info)} "
            "(the contract's withdraw(), from the provider's wallet)"
        )
    elif info.enabled:
        lines.append(f"withdrawable now: unknown ({found.chain_error})")
    return lines


def balance_lines(found: Balance) -> list[str]:
    info = found.settlement
    lines = [f"Balance of {found.address}", _where(info)]
    if found.deposit_wei is not None:
        lines.append(f"deposit in escrow: {_amount(found.deposit_wei, info)}")
        if found.withdrawal_requested_wei and found.withdrawal_available_at is not None:
            from worldland_cli.times import format_time

            lines.append(
                f"withdrawal requested: {_amount(found.withdrawal_requested_wei, info)}, "
                f"available from {format_time(found.withdrawal_available_at)}"
            )
    elif info.enabled:
        lines.append(f"deposit in escrow: unknown ({found.chain_error})")
    lines.append(f"owed (metered, not yet paid): {_amount(found.owed_wei, info)}")
    lines.extend(_totals(found.total, info))
    return lines


def _where(info: SettlementInfo) -> str:
    if not info.enabled:
        return "Settlement: off on this hub (GPU time is metered; nothing is paid on chain)"
    token = f", paid in {info.token.symbol} {info.token.address}" if info.token else ""
    chain = f" on chain {info.chain_id}" if info.chain_id is not None else ""
    return f"Settlement: contract {info.contract}{chain}{token}"


def _totals(totals: UsageTotals, info: SettlementInfo) -> list[str]:
    lines = [
        f"billed: {_amount(totals.billed_wei, info)} for {totals.seconds} s "
        f"({totals.gpu_seconds} GPU-seconds, {totals.intervals} intervals)",
        f"paid:   {_amount(totals.paid_wei, info)}{_confirmed(totals, info)}",
        f"pending: {_amount(totals.pending_wei, info)}",
    ]
    if totals.failed_wei or totals.failed_reasons:
        reasons = ", ".join(f"{name} x{count}" for name, count in totals.failed_reasons.items())
        lines.append(f"failed: {_amount(totals.failed_wei, info)} ({reasons})")
    return lines


def _confirmed(totals: UsageTotals, info: SettlementInfo) -> str:
    if totals.last_paid_tx is None:
        return ""
    blocks = info.confirmations or 1
    return (
        f", confirmed on chain ({blocks} block{'s' if blocks != 1 else ''}); latest in block "
        f"{totals.last_paid_block}, transaction {totals.last_paid_tx}"
    )


def _amount(wei: int, info: SettlementInfo) -> str:
    """``0.0006 WLT (600000000000000 wei)`` when the token is known, else ``N wei``."""
    token = info.token
    if token is None or wei == 0:
        return f"{wei} wei"
    whole, fraction = divmod(wei, 10**token.decimals)
    digits = str(fraction).rjust(token.decimals, "0").rstrip("0")
    shown = f"{whole}.{digits}" if digits else str(whole)
    return f"{shown} {token.symbol} ({wei} wei)"
