"""Money out: providers take their earnings, renters what the hub has not settled against them."""

from __future__ import annotations

import pytest

from hub_stub.chain import Reverted

from .conftest import H100, H100_RATE, MINTED, WITHDRAWAL_DELAY, Market


def advance(market: Market, seconds: int) -> None:
    """Move the chain's clock forward and mine a block at the new time."""
    market.rpc.request("evm_increaseTime", seconds)
    market.rpc.request("evm_mine")


def test_provider_withdraws_all_earnings_once(market: Market) -> None:
    user, provider = market.users[0], market.providers[0]
    market.deposit(user, 10**18)
    market.pay(user, provider, 100, 1)
    market.pay(user, provider, 50, 2)

    receipt = market.payments.transact(provider, "withdraw")
    assert market.tokens_of(provider.address) == 150 * H100_RATE
    assert market.earnings_of(provider) == 0
    assert market.tokens_of(market.payments.address) == 10**18 - 150 * H100_RATE
    [event] = market.payments.events(receipt)
    assert (event.name, event.args) == (
        "EarningsWithdrawn",
        {"provider": provider.address, "amount": 150 * H100_RATE},
    )
    with pytest.raises(Reverted, match="NothingToWithdraw"):
        market.payments.transact(provider, "withdraw")
    # A renter's deposit is not earnings: the renter cannot take it through withdraw().
    with pytest.raises(Reverted, match="NothingToWithdraw"):
        market.payments.transact(user, "withdraw")


def test_user_withdraws_only_the_unowed_part_after_the_notice(market: Market) -> None:
    user, provider = market.users[0], market.providers[0]
    market.deposit(user, 1_000 * H100_RATE)
    market.pay(user, provider, 300, 1)

    with pytest.raises(Reverted) as refused:
        market.payments.transact(user, "requestWithdrawal", 1_000 * H100_RATE)
    assert refused.value.error == "InsufficientDeposit"
    assert refused.value.values == (1_000 * H100_RATE, 700 * H100_RATE)
    market.payments.transact(user, "requestWithdrawal", 700 * H100_RATE)
    with pytest.raises(Reverted, match="WithdrawalNotReady"):
        market.payments.transact(user, "withdrawDeposit")

    # GPU time used before the request is settled during the notice period.
    market.pay(user, provider, 200, 2)
    advance(market, WITHDRAWAL_DELAY)
    receipt = market.payments.transact(user, "withdrawDeposit")

    assert market.tokens_of(user.address) == MINTED - 500 * H100_RATE
    assert market.deposit_of(user) == 0
    assert market.earnings_of(provider) == 500 * H100_RATE
    assert market.tokens_of(market.payments.address) == 500 * H100_RATE
    [event] = market.payments.events(receipt)
    assert (event.name, event.args) == (
        "DepositWithdrawn",
        {"user": user.address, "amount": 500 * H100_RATE, "deposit": 0},
    )
    with pytest.raises(Reverted, match="NothingToWithdraw"):
        market.payments.transact(user, "withdrawDeposit")


def test_withdrawal_request_is_replaced_and_cancelled(market: Market) -> None:
    user = market.users[0]
    market.deposit(user, 1_000)
    market.payments.transact(user, "requestWithdrawal", 400)
    advance(market, WITHDRAWAL_DELAY)
    market.payments.transact(user, "requestWithdrawal", 300)  # restarts the notice
    amount, available_at = market.payments.call("withdrawals", user.address)
    assert amount == 300
    with pytest.raises(Reverted) as early:
        market.payments.transact(user, "withdrawDeposit")
    assert early.value.values == (available_at,)

    market.payments.transact(user, "requestWithdrawal", 0)
    advance(market, WITHDRAWAL_DELAY)
    with pytest.raises(Reverted, match="NothingToWithdraw"):
        market.payments.transact(user, "withdrawDeposit")
    assert market.deposit_of(user) == 1_000


def test_settler_rotation(market: Market) -> None:
    user, provider = market.users[0], market.providers[0]
    new = market.spare
    market.deposit(user, 10**18)
    with pytest.raises(Reverted, match="NotOperator"):
        market.payments.transact(market.settler, "setSettler", new.address)
    with pytest.raises(Reverted, match="ZeroAddress"):
        market.payments.transact(market.operator, "setSettler", "0x" + "00" * 20)

    receipt = market.payments.transact(market.operator, "setSettler", new.address)
    [event] = market.payments.events(receipt)
    assert (event.name, event.args) == (
        "SettlerSet",
        {"previousSettler": market.settler.address, "newSettler": new.address},
    )
    assert market.payments.call("settler") == new.address
    with pytest.raises(Reverted, match="NotSettler"):
        market.pay(user, provider, 60, 1)  # the old hot wallet
    market.payments.transact(new, "payment", user.address, provider.address, 60, H100, 1)
    assert market.earnings_of(provider) == 60 * H100_RATE
