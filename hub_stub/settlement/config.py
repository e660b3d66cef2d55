"""What the settlement flags of ``worldland-hub`` become (docs/settlement.md, "Running it")."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit


@dataclass(frozen=True)
class SettlementConfig:
    """The chain, the contract, the hot wallet, and how the worker paces itself."""

    rpc_url: str
    contract: str
    key_file: Path
    # Blocks on top of a transaction's own before its rows count as confirmed (1: mined).
    confirmations: int = 2
    # Usage rows per payments(...) transaction: gas per row falls with the batch (docs).
    batch_size: int = 200
    # Seconds between looks at the ledger and the chain when there is nothing to do.
    interval: float = 2.0
    # A transaction not mined after this many seconds is sent again at a higher gas price.
    replace_after: float = 60.0
    # Gas price ceiling in wei for new and replacement transactions (None: the node's).
    max_gas_price: int | None = None
    # Seconds before a failed row is checked again (deposit, rate) and retried.
    retry_after: float = 30.0
    # Alert when the settler's gas balance falls below this (wei).
    min_balance: int = 10**17
    # Seconds between hot-wallet checks (balance, unexpected transactions, escrow).
    watch_interval: float = 60.0
    # Where alerts are POSTed as JSON (None: log lines and the metric only).
    alert_webhook: str | None = None
    # Seconds one JSON-RPC call may take before the chain counts as unreachable.
    rpc_timeout: float = 10.0

    @property
    def shown_rpc(self) -> str:
        """The RPC URL for logs and answers: providers put API keys in paths and queries."""
        parts = urlsplit(self.rpc_url)
        port = f":{parts.port}" if parts.port else ""
        return f"{parts.scheme}://{parts.hostname}{port}"
