"""The hub's ``/metrics``: Prometheus gauges and counters in a registry of its own.

One registry per app (not prometheus_client's global one), so two hubs in one process never
share or clash on metrics. Everything here is either public on chain (balances, blocks) or a
count (rows per state, alerts): no address book, no key, no RPC URL.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, generate_latest

from hub_stub import __version__


class HubMetrics:
    """The metrics the hub exports; the settlement worker and watch set them."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        info = Gauge(
            "worldland_hub_info", "The hub's version.", ["version"], registry=self.registry
        )
        info.labels(version=__version__).set(1)
        self.settlement_enabled = Gauge(
            "worldland_settlement_enabled",
            "1 when the hub settles usage on chain.",
            registry=self.registry,
        )
        self.chain_up = Gauge(
            "worldland_settlement_chain_up",
            "1 when the last call to the chain's RPC answered.",
            registry=self.registry,
        )
        self.rows = Gauge(
            "worldland_settlement_rows",
            "Usage rows by settlement state.",
            ["state"],
            registry=self.registry,
        )
        self.block = Gauge(
            "worldland_settlement_block", "The latest block the worker saw.", registry=self.registry
        )
        self.transactions = Counter(
            "worldland_settlement_transactions",
            "Settlement transactions by what happened to them.",
            ["event"],
            registry=self.registry,
        )
        self.settler_balance = Gauge(
            "worldland_settler_balance_wei",
            "The settler's native balance (pays the gas), in wei.",
            registry=self.registry,
        )
        self.min_balance = Gauge(
            "worldland_settler_min_balance_wei",
            "The balance below which the hub alerts (--min-balance), in wei.",
            registry=self.registry,
        )
        self.escrow_balance = Gauge(
            "worldland_escrow_token_balance",
            "The payment token held by the contract (deposits and unwithdrawn earnings).",
            registry=self.registry,
        )
        self.alerts = Counter(
            "worldland_settlement_alerts",
            "Alerts raised by the hot-wallet watch, by kind.",
            ["kind"],
            registry=self.registry,
        )

    def render(self) -> bytes:
        """The Prometheus text exposition of every metric."""
        return generate_latest(self.registry)
