"""Contract tests: the committed build files, deployed on a real anvil chain.

Each test gets freshly deployed contracts (``market``) on the module's chain, so no test sees
another's balances or settlement ids.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest
from eth_account.signers.local import LocalAccount

from hub_stub.chain import Artifact, Contract, Receipt, Rpc, deploy, gpu_type
from tests.support.anvil import RunningAnvil, anvil  # noqa: F401

BUILD = Path(__file__).resolve().parents[2] / "hub_stub" / "contracts"
TOKEN = Artifact.load(BUILD / "TestToken.json")
PAYMENTS = Artifact.load(BUILD / "WorldlandPayments.json")

H100 = gpu_type("NVIDIA H100 80GB HBM3")
H100_RATE = 1_000_000_000_000  # wei per second per GPU (3.6e15 wei an hour)
WITHDRAWAL_DELAY = 3600  # seconds
MINTED = 10**24

# The contract's Refusal enum, in declaration order.
PAID, ALREADY_SETTLED, UNKNOWN_GPU_TYPE, INSUFFICIENT_DEPOSIT, ZERO_PROVIDER = range(5)


@dataclass
class Market:
    """The deployed token and escrow, and who plays which part."""

    rpc: Rpc
    token: Contract
    payments: Contract
    operator: LocalAccount
    settler: LocalAccount
    stranger: LocalAccount
    users: list[LocalAccount]
    providers: list[LocalAccount]
    spare: LocalAccount  # funded with gas only: a new settler or operator

    def deposit(self, user: LocalAccount, amount: int) -> Receipt:
        """Approve the escrow for ``amount`` and deposit it, as a renter's wallet would."""
        self.token.transact(user, "approve", self.payments.address, amount)
        return self.payments.transact(user, "deposit", amount)

    def pay(self, user: LocalAccount, provider: LocalAccount, seconds: int, sid: int) -> Receipt:
        """One H100 ``payment`` from the settler."""
        return self.payments.transact(
            self.settler, "payment", user.address, provider.address, seconds, H100, sid
        )

    def deposit_of(self, user: LocalAccount) -> int:
        return int(self.payments.call("deposits", user.address))

    def earnings_of(self, provider: LocalAccount) -> int:
        return int(self.payments.call("earnings", provider.address))

    def tokens_of(self, address: str) -> int:
        return int(self.token.call("balanceOf", address))


@pytest.fixture
def market(anvil: RunningAnvil) -> Market:  # noqa: F811 - the imported fixture
    accounts = anvil.accounts
    operator, settler, stranger, spare = accounts[:4]
    users, providers = accounts[4:12], accounts[12:20]
    token = deploy(anvil.rpc, TOKEN, operator, "Worldland Test Token", "WLT", 18)
    payments = deploy(
        anvil.rpc, PAYMENTS, operator, token.address, settler.address, WITHDRAWAL_DELAY
    )
    payments.transact(operator, "setRate", H100, H100_RATE)
    for user in users:
        token.transact(operator, "mint", user.address, MINTED)
    return Market(anvil.rpc, token, payments, operator, settler, stranger, users, providers, spare)
