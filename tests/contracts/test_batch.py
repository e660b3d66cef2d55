"""Many payments in one transaction, and what batching saves in gas (printed, not asserted:
the figures belong to the settlement benchmark; run with ``-s`` to see them)."""

from __future__ import annotations

from eth_account.signers.local import LocalAccount

from .conftest import H100, H100_RATE, Market

BATCH = 50
SECONDS = 60


def items(
    pairs: list[tuple[LocalAccount, LocalAccount]], first_id: int, step: int = 1
) -> list[tuple[str, str, int, bytes, int]]:
    """``BATCH`` one-minute H100 intervals, round robin over ``pairs``."""
    rows = []
    for i in range(BATCH):
        user, provider = pairs[i % len(pairs)]
        rows.append((user.address, provider.address, SECONDS, H100, first_id + i * step))
    return rows


def test_batch_of_many_payments_in_one_transaction(market: Market) -> None:
    pairs = list(zip(market.users, market.providers, strict=True))
    for user in market.users:
        market.deposit(user, 10**18)
    receipt = market.payments.transact(market.settler, "payments", items(pairs, 1_000))

    events = market.payments.events(receipt)
    assert [e.name for e in events] == ["Paid"] * BATCH
    assert [e.args["settlementId"] for e in events] == list(range(1_000, 1_000 + BATCH))
    per_pair = BATCH // len(pairs) + 1  # 50 over 8 pairs: the first two pairs get 7, others 6
    for index, (user, provider) in enumerate(pairs):
        count = per_pair if index < BATCH % len(pairs) else per_pair - 1
        assert market.deposit_of(user) == 10**18 - count * SECONDS * H100_RATE
        assert market.earnings_of(provider) == count * SECONDS * H100_RATE
    assert all(market.payments.call("isSettled", 1_000 + i) for i in range(BATCH))


def test_gas_per_payment_single_versus_batched(market: Market) -> None:
    """Steady state: deposits, earnings and the id bitmap word already hold values."""
    pairs = list(zip(market.users, market.providers, strict=True))
    for user in market.users:
        market.deposit(user, 10**18)
    market.payments.transact(market.settler, "payments", items(pairs, 0)[: len(pairs)])

    def single(batch: list[tuple[str, str, int, bytes, int]]) -> float:
        gas = [market.payments.transact(market.settler, "payment", *i).gas_used for i in batch]
        return sum(gas) / len(gas)

    def batched(batch: list[tuple[str, str, int, bytes, int]]) -> float:
        receipt = market.payments.transact(market.settler, "payments", batch)
        assert [e.name for e in market.payments.events(receipt)] == ["Paid"] * len(batch)
        return receipt.gas_used / len(batch)

    one_pair = pairs[:1]
    rows = [
        ("one renter-provider pair", single(items(one_pair, 10)), batched(items(one_pair, 60))),
        ("8 pairs, round robin", single(items(pairs, 110)), batched(items(pairs, 160))),
        (
            "8 pairs, ids 256 apart (a fresh bitmap word each)",
            single(items(pairs, 1 << 16, 256)),
            batched(items(pairs, 1 << 24, 256)),
        ),
    ]
    print(f"\ngas per payment, {BATCH} one-minute intervals (single tx vs one batch tx):")
    for label, one, many in rows:
        print(f"  {label:50} single {one:8.0f}  batched {many:8.0f}  ratio {one / many:5.1f}x")
