"""Deposits, rates and settlement on the real EVM: what the hub's settler can and cannot do."""

from __future__ import annotations

import pytest

from hub_stub.chain import Reverted, TransactionFailed, gpu_type

from .conftest import (
    ALREADY_SETTLED,
    H100,
    H100_RATE,
    INSUFFICIENT_DEPOSIT,
    MINTED,
    UNKNOWN_GPU_TYPE,
    ZERO_PROVIDER,
    Market,
)

ZERO = "0x" + "00" * 20


def test_deposit_moves_tokens_into_escrow(market: Market) -> None:
    user = market.users[0]
    receipt = market.deposit(user, 1_000)
    market.deposit(user, 500)

    assert market.deposit_of(user) == 1_500
    assert market.tokens_of(market.payments.address) == 1_500
    assert market.tokens_of(user.address) == MINTED - 1_500
    [event] = market.payments.events(receipt)
    assert (event.name, event.args) == (
        "Deposited",
        {"user": user.address, "amount": 1_000, "deposit": 1_000},
    )


def test_deposit_beyond_allowance_is_refused_by_the_token_return_value(market: Market) -> None:
    """TestToken answers false (no revert) to an uncovered transferFrom: the escrow must check."""
    user = market.users[0]
    market.token.transact(user, "approve", market.payments.address, 100)
    with pytest.raises(Reverted) as refused:
        market.payments.transact(user, "deposit", 101)
    assert refused.value.error == "TokenCallFailed"
    assert market.deposit_of(user) == 0
    assert market.tokens_of(user.address) == MINTED


def test_rates_are_set_only_by_the_operator(market: Market) -> None:
    a100 = gpu_type("NVIDIA A100-SXM4-80GB")
    receipt = market.payments.transact(market.operator, "setRate", a100, 7)
    assert market.payments.call("ratePerSecond", a100) == 7
    [event] = market.payments.events(receipt)
    assert (event.name, event.args) == ("RateSet", {"gpuType": a100, "weiPerSecond": 7})

    for caller in (market.settler, market.stranger, market.users[0]):
        with pytest.raises(Reverted) as refused:
            market.payments.transact(caller, "setRate", a100, 1)
        assert refused.value.error == "NotOperator"
    assert market.payments.call("ratePerSecond", a100) == 7


def test_operator_hands_over_the_role(market: Market) -> None:
    market.payments.transact(market.operator, "setOperator", market.spare.address)
    assert market.payments.call("operator") == market.spare.address
    with pytest.raises(Reverted, match="NotOperator"):
        market.payments.transact(market.operator, "setRate", H100, 1)
    market.payments.transact(market.spare, "setRate", H100, 1)
    assert market.payments.call("ratePerSecond", H100) == 1


def test_payment_moves_exactly_duration_times_rate(market: Market) -> None:
    user, provider = market.users[0], market.providers[0]
    market.deposit(user, 10**18)
    receipt = market.pay(user, provider, 3_600, 42)

    owed = 3_600 * H100_RATE
    assert market.deposit_of(user) == 10**18 - owed
    assert market.earnings_of(provider) == owed
    assert market.tokens_of(market.payments.address) == 10**18  # still escrowed until withdrawn
    assert market.payments.call("isSettled", 42) is True
    assert market.payments.call("isSettled", 43) is False
    [event] = market.payments.events(receipt)
    assert event.name == "Paid"
    assert event.args == {
        "settlementId": 42,
        "user": user.address,
        "provider": provider.address,
        "gpuType": H100,
        "durationSeconds": 3_600,
        "amount": owed,
    }


def test_duplicate_settlement_id_is_refused_and_costs_nothing(market: Market) -> None:
    user, provider = market.users[0], market.providers[0]
    market.deposit(user, 10**18)
    market.pay(user, provider, 60, 7)
    deposit, earned = market.deposit_of(user), market.earnings_of(provider)

    # Simulated first (the worker's path): refused before anything is sent.
    with pytest.raises(Reverted) as refused:
        market.pay(user, provider, 60, 7)
    assert (refused.value.error, refused.value.values) == ("Refused", (7, ALREADY_SETTLED))
    # Forced on chain with a fixed gas limit: mined, failed, nothing moved.
    with pytest.raises(TransactionFailed):
        market.payments.transact(
            market.settler,
            "payment",
            *(user.address, provider.address, 60, H100, 7),
            gas=200_000,
        )
    # A different provider or duration under the same id is the same settlement.
    with pytest.raises(Reverted, match="Refused"):
        market.pay(user, market.providers[1], 1, 7)
    assert (market.deposit_of(user), market.earnings_of(provider)) == (deposit, earned)
    assert market.earnings_of(market.providers[1]) == 0


def test_only_the_settler_may_pay(market: Market) -> None:
    user, provider = market.users[0], market.providers[0]
    market.deposit(user, 10**18)
    item = (user.address, provider.address, 60, H100, 1)
    for caller in (market.operator, user, provider, market.stranger):
        with pytest.raises(Reverted) as single:
            market.payments.transact(caller, "payment", *item)
        with pytest.raises(Reverted) as batch:
            market.payments.transact(caller, "payments", [item])
        assert single.value.error == batch.value.error == "NotSettler"
    assert market.deposit_of(user) == 10**18
    assert market.payments.call("isSettled", 1) is False


def test_insufficient_deposit_reverts_payment_and_the_id_stays_retryable(market: Market) -> None:
    user, provider = market.users[0], market.providers[0]
    market.deposit(user, 59 * H100_RATE)
    with pytest.raises(Reverted) as refused:
        market.pay(user, provider, 60, 9)
    assert (refused.value.error, refused.value.values) == ("Refused", (9, INSUFFICIENT_DEPOSIT))
    assert market.payments.call("isSettled", 9) is False
    assert market.deposit_of(user) == 59 * H100_RATE

    market.deposit(user, H100_RATE)  # the renter tops up; the worker retries the same id
    market.pay(user, provider, 60, 9)
    assert market.deposit_of(user) == 0
    assert market.earnings_of(provider) == 60 * H100_RATE


def test_unpriced_gpu_type_and_zero_provider_are_refused(market: Market) -> None:
    user, provider = market.users[0], market.providers[0]
    market.deposit(user, 10**18)
    unpriced = gpu_type("NVIDIA GeForce RTX 4090")
    with pytest.raises(Reverted) as refused:
        market.payments.transact(
            market.settler, "payment", user.address, provider.address, 60, unpriced, 1
        )
    assert refused.value.values == (1, UNKNOWN_GPU_TYPE)
    with pytest.raises(Reverted) as refused:
        market.payments.transact(market.settler, "payment", user.address, ZERO, 60, H100, 1)
    assert refused.value.values == (1, ZERO_PROVIDER)
    # Unpricing a type (rate 0) stops its payments too.
    market.payments.transact(market.operator, "setRate", H100, 0)
    with pytest.raises(Reverted, match="Refused"):
        market.pay(user, provider, 60, 1)
    assert market.deposit_of(user) == 10**18


def test_batch_reports_each_refusal_without_reverting_the_others(market: Market) -> None:
    rich, broke = market.users[0], market.users[1]
    provider = market.providers[0]
    market.deposit(rich, 10**18)
    market.deposit(broke, 10 * H100_RATE)
    market.pay(rich, provider, 1, 100)  # already settled before the batch
    unpriced = gpu_type("Tesla T4")
    items = [
        (rich.address, provider.address, 60, H100, 101),
        (broke.address, provider.address, 60, H100, 102),  # insufficient deposit
        (rich.address, provider.address, 60, H100, 100),  # paid before
        (rich.address, provider.address, 60, unpriced, 103),
        (rich.address, ZERO, 60, H100, 104),
        (broke.address, provider.address, 10, H100, 105),  # what broke can pay
        (rich.address, provider.address, 30, H100, 101),  # duplicate within the batch
    ]
    receipt = market.payments.transact(market.settler, "payments", items)

    outcome = [
        (e.args["settlementId"], e.name, e.args.get("reason"))
        for e in market.payments.events(receipt)
    ]
    assert outcome == [
        (101, "Paid", None),
        (102, "PaymentRefused", INSUFFICIENT_DEPOSIT),
        (100, "PaymentRefused", ALREADY_SETTLED),
        (103, "PaymentRefused", UNKNOWN_GPU_TYPE),
        (104, "PaymentRefused", ZERO_PROVIDER),
        (105, "Paid", None),
        (101, "PaymentRefused", ALREADY_SETTLED),
    ]
    assert market.deposit_of(rich) == 10**18 - 61 * H100_RATE
    assert market.deposit_of(broke) == 0
    assert market.earnings_of(provider) == 71 * H100_RATE
    settled = {sid: market.payments.call("isSettled", sid) for sid in range(100, 106)}
    assert settled == {100: True, 101: True, 102: False, 103: False, 104: False, 105: True}

    # The refused row is retried with its own id once the renter has deposited.
    market.deposit(broke, 60 * H100_RATE)
    retry = market.payments.transact(
        market.settler, "payments", [(broke.address, provider.address, 60, H100, 102)]
    )
    assert [e.name for e in market.payments.events(retry)] == ["Paid"]
    assert market.earnings_of(provider) == 131 * H100_RATE


def test_largest_duration_and_rate_are_refused_not_overflowed(market: Market) -> None:
    """uint64 seconds x uint128 rate always fits: a batch never reverts on arithmetic."""
    user, provider = market.users[0], market.providers[0]
    market.deposit(user, 10**18)
    market.payments.transact(market.operator, "setRate", H100, 2**128 - 1)
    receipt = market.payments.transact(
        market.settler, "payments", [(user.address, provider.address, 2**64 - 1, H100, 1)]
    )
    [event] = market.payments.events(receipt)
    assert (event.name, event.args["reason"]) == ("PaymentRefused", INSUFFICIENT_DEPOSIT)
    assert market.deposit_of(user) == 10**18
