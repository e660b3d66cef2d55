"""Settlement as the hub holds it: the worker, the watch, the alerts and the API's reads."""

from __future__ import annotations

from hub_stub.chain import Artifact, Contract, Rpc
from hub_stub.metrics import HubMetrics
from hub_stub.settlement import ledger
from hub_stub.settlement.alerts import Alerts
from hub_stub.settlement.config import SettlementConfig
from hub_stub.settlement.reads import ChainReads
from hub_stub.settlement.sender import Sender
from hub_stub.settlement.watch import Watch
from hub_stub.settlement.worker import Worker
from hub_stub.signer import KeyFileSigner, Signer
from hub_stub.store import Store


class Settlement:
    """Built with the hub (checks the key file and the database's contract at once),
    started and stopped with the server (:meth:`start`, :meth:`stop`)."""

    def __init__(
        self,
        store: Store,
        config: SettlementConfig,
        metrics: HubMetrics,
        signer: Signer | None = None,
    ) -> None:
        self.config = config
        # The one place a signer is chosen: pass another (an HSM's, Vault's) to replace the
        # key file.
        self.signer = signer or KeyFileSigner.from_file(config.key_file)
        ledger.pin_contract(store, config.contract, self.signer.address)
        self.rpc = Rpc(config.rpc_url, timeout=config.rpc_timeout)
        contract = Contract(self.rpc, Artifact.bundled("WorldlandPayments"), config.contract)
        context = {"settler": self.signer.address, "contract": contract.address}
        self.alerts = Alerts(config.alert_webhook, metrics, context)
        sender = Sender(store, contract, self.signer, config, metrics)
        watch = Watch(
            store, contract, self.signer.address, config.min_balance, metrics, self.alerts
        )
        self.worker = Worker(store, contract, sender, watch, config, metrics)
        self.reads = ChainReads(config)
        metrics.settlement_enabled.set(1)

    def start(self) -> None:
        self.worker.start()

    def stop(self) -> None:
        self.worker.stop()
        self.alerts.close()
        self.rpc.close()
        self.reads.close()
