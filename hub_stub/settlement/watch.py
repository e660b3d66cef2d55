"""The hot-wallet watch: the settler's gas, transactions the worker did not send, the escrow.

Every ``watch_interval`` seconds (on the worker's thread, after it has followed its own
transactions, so it never mistakes one of them for a stranger's):

* the settler's native balance, against ``min_balance``: one ``low-balance`` alert when it
  falls below, none again until it has been back above;
* the settler's nonce: every nonce the chain has used that the worker did not sign (or
  whose transaction of the worker's was dropped, so another took it) is a transaction made
  with the hot wallet's key outside the hub, i.e. an unexpected outflow: one
  ``unexpected-outflow`` alert per such nonce, remembered in the database across restarts;
* the escrow's token balance, as a gauge (it moves with deposits and withdrawals).
"""

from __future__ import annotations

import logging

from hub_stub.chain import Artifact, Contract
from hub_stub.metrics import HubMetrics
from hub_stub.settlement import ledger
from hub_stub.settlement.alerts import Alerts
from hub_stub.store import Store

log = logging.getLogger("hub_stub.settlement")


class Watch:
    """Checks the hot wallet; see the module docstring."""

    def __init__(
        self,
        store: Store,
        contract: Contract,
        settler: str,
        min_balance: int,
        metrics: HubMetrics,
        alerts: Alerts,
    ) -> None:
        self.store = store
        self.contract = contract
        self.rpc = contract.rpc
        self.settler = settler
        self.min_balance = min_balance
        self.metrics = metrics
        self.alerts = alerts
        self._low = False
        self._last_balance: int | None = None
        self._token: Contract | None = None
        metrics.min_balance.set(min_balance)

    def check(self) -> None:
        """One look at balance, nonces and escrow (chain errors propagate to the worker)."""
        balance = self.rpc.balance(self.settler)
        self.metrics.settler_balance.set(balance)
        self._check_balance(balance)
        self._check_nonces(balance)
        self._last_balance = balance
        token = self._token_contract()
        self.metrics.escrow_balance.set(int(token.call("balanceOf", self.contract.address)))

    def _check_balance(self, balance: int) -> None:
        if balance >= self.min_balance:
            self._low = False
            return
        if not self._low:
            self._low = True
            self.alerts.raise_alert(
                "low-balance",
                f"the settler {self.settler} has {balance} wei for gas, below the minimum "
                f"{self.min_balance} wei: fund it, or settlement stops",
                balance_wei=str(balance),
                min_balance_wei=str(self.min_balance),
            )

    def _check_nonces(self, balance: int) -> None:
        used = self.rpc.nonce(self.settler, "latest")
        first = ledger.watched_nonce(self.store)
        if first is None:  # first look at this settler: what it did before is not ours to judge
            ledger.set_watched_nonce(self.store, used)
            return
        ours = ledger.nonce_states(self.store, self.settler, first, used)
        done = first
        for nonce in range(first, used):
            state = ours.get(nonce)
            if state == "sent":  # ours, mined, its outcome not recorded yet: look again later
                break
            if state is None or state == "dropped":
                self.alerts.raise_alert(
                    "unexpected-outflow",
                    f"the settler {self.settler} sent a transaction the hub did not (nonce "
                    f"{nonce}); balance now {balance} wei"
                    + (f", was {self._last_balance}" if self._last_balance is not None else "")
                    + ": if nobody on the team did, the hot wallet's key is compromised: "
                    "rotate the settler (setSettler) now",
                    nonce=nonce,
                    balance_wei=str(balance),
                )
            done = nonce + 1
        if done != first:
            ledger.set_watched_nonce(self.store, done)

    def _token_contract(self) -> Contract:
        if self._token is None:
            address = str(self.contract.call("token"))
            self._token = Contract(self.rpc, Artifact.bundled("TestToken"), address)
        return self._token
