"""The hot-wallet watch: a low gas balance and a transaction the hub did not send each raise
exactly one alert on the operator's webhook (and a log line, and a counter)."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from .conftest import (
    ETHER,
    Market,
    all_confirmed,
    metric,
    provider,
    settling_hub,
    sign_transfer,
    usage_for,
    wait_for,
)

WATCH = 0.3  # seconds between the hub's checks of the hot wallet


class Webhook:
    """An HTTP server that records every JSON body POSTed to it."""

    def __init__(self) -> None:
        self.received: list[dict[str, Any]] = []
        hook = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                hook.received.append(json.loads(body))
                self.send_response(204)
                self.end_headers()

            def log_message(self, format: str, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks/secret-token"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def kinds(self) -> list[str]:
        return [str(body["alert"]) for body in self.received]


@pytest.fixture
def webhook() -> Iterator[Webhook]:
    hook = Webhook()
    yield hook
    hook.server.shutdown()
    hook.server.server_close()


def test_a_balance_below_the_minimum_alerts_once(
    market: Market, webhook: Webhook, tmp_path: Path
) -> None:
    hub = settling_hub(
        tmp_path / "hub",
        market,
        min_balance=100 * ETHER,  # the settler has 10
        watch_interval=WATCH,
        alert_webhook=webhook.url,
    )
    try:
        wait_for(lambda: webhook.kinds() == ["low-balance"], 10, "the low-balance alert", hub)
        time.sleep(10 * WATCH)  # ten more checks: still below, no second alert
        assert webhook.kinds() == ["low-balance"]
        (alert,) = webhook.received
        assert alert["settler"] == market.settler.address
        assert alert["balance_wei"] == str(10 * ETHER) and alert["min_balance_wei"] == str(
            100 * ETHER
        )
        assert "below the minimum" in alert["text"]
        assert metric(hub, "worldland_settlement_alerts_total", 'kind="low-balance"') == 1
        assert metric(hub, "worldland_settler_balance_wei") == 10 * ETHER
        log = hub.log.read_text()
        assert log.count("ALERT low-balance") == 1
        assert "secret-token" not in log
    finally:
        hub.stop()


def test_a_transaction_the_hub_did_not_send_alerts_once(
    market: Market, webhook: Webhook, tmp_path: Path
) -> None:
    renter = market.renter(deposit=10**15)
    hub = settling_hub(
        tmp_path / "hub", market, watch_interval=WATCH, alert_webhook=webhook.url, settle_batch=2
    )
    try:
        with hub.client() as client:
            node = provider(client, hub)
            usage_for(client, hub, [renter], node, 5)  # three transactions of the hub's own
            wait_for(all_confirmed(hub, 5), 20, "the hub's own payments", hub)
        time.sleep(3 * WATCH)
        assert webhook.kinds() == []  # its own transactions are not unexpected
        thief = market.wallet()
        sign_transfer(market.settler, market, thief.address, ETHER)  # the key, used elsewhere
        wait_for(lambda: webhook.kinds() == ["unexpected-outflow"], 10, "the outflow alert", hub)
        time.sleep(10 * WATCH)
        assert webhook.kinds() == ["unexpected-outflow"]
        (alert,) = webhook.received
        assert alert["nonce"] == 3 and alert["settler"] == market.settler.address
        assert "did not" in alert["message"] and "rotate the settler" in alert["message"]
        assert metric(hub, "worldland_settlement_alerts_total", 'kind="unexpected-outflow"') == 1
        assert hub.log.read_text().count("ALERT unexpected-outflow") == 1
    finally:
        hub.stop()
