"""Settlement throughput and gas: usage intervals settled per second, gas per interval,
batched (``--settle-batch 200``) against one transaction per interval (``--settle-batch 1``).

Target (issue 16): >= 200 intervals/s settled with batching on a 2-core machine, and gas per
interval at least 5x lower than unbatched.

Everything is real: anvil (automine, or ``--block-time``), the contracts as deployed, a hub
subprocess. The usage is recorded first through ``POST /v1/usage`` by a hub without
settlement; the same data directory is then served with settlement on, and the clock runs
from the first row priced to the last row confirmed (the hub's own timestamps). Gas is the
sum of the worker's receipts' ``gasUsed`` over the intervals they paid. Run:
``.venv/bin/python bench/settlement.py``.
"""

from __future__ import annotations

import argparse
import sqlite3
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.settlement.conftest import (
    Market,
    new_market,
    place_pod,
    post_usage,
    provider,
    settle_args,
)
from tests.support.anvil import start_anvil
from tests.support.hub import start_hub

RENTERS = 8
PROVIDERS = 4


def record_usage(data: Path, market: Market, intervals: int) -> None:
    """``intervals`` one-minute intervals over RENTERS pods on PROVIDERS nodes, in the ledger."""
    hub = start_hub(data)
    try:
        with hub.client() as client:
            nodes = [provider(client, hub) for _ in range(PROVIDERS)]
            per_renter = intervals // RENTERS
            for index in range(RENTERS):
                renter = market.renter(deposit=10**18)
                node = nodes[index % PROVIDERS]
                pod = place_pod(client, hub, renter.address, node)
                post_usage(client, node, pod, per_renter)
    finally:
        hub.stop()


def settle(
    data: Path, market: Market, intervals: int, batch: int, confirmations: int
) -> dict[str, float]:
    """Serve ``data`` with settlement on until every row is confirmed; the figures."""
    args = settle_args(market, settle_batch=batch, confirmations=confirmations, watch_interval=60)
    hub = start_hub(data, extra_args=args)
    database = data / "hub.sqlite3"
    try:
        deadline = time.monotonic() + 600
        while time.monotonic() < deadline:
            with sqlite3.connect(f"file:{database}?mode=ro", uri=True) as db:
                done = db.execute(
                    "SELECT count(*) FROM settlements WHERE state = 'confirmed'"
                ).fetchone()[0]
            db.close()
            if done == intervals:
                break
            time.sleep(0.2)
        else:
            raise SystemExit(f"only {done} of {intervals} rows confirmed in 600 s")
    finally:
        hub.stop()
    with sqlite3.connect(database) as db:
        first, last = db.execute(
            "SELECT min(priced_at), max(updated_at) FROM settlements"
        ).fetchone()
        txs, gas = db.execute(
            "SELECT count(*), sum(gas_used) FROM settle_txs WHERE state = 'final'"
        ).fetchone()
    db.close()
    seconds = last - first
    return {
        "intervals": intervals,
        "transactions": txs,
        "seconds": seconds,
        "per_second": intervals / seconds,
        "gas_per_interval": gas / intervals,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--intervals", type=int, default=4000, help="batched run (4000)")
    parser.add_argument("--unbatched", type=int, default=200, help="one-per-tx run (200)")
    parser.add_argument("--batch", type=int, default=200, help="rows per transaction (200)")
    parser.add_argument("--confirmations", type=int, default=1, help="(1: mined is final)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="settle-bench-") as tmp:
        work = Path(tmp)
        anvil = start_anvil(work / "anvil")
        try:
            results = {}
            for label, count, batch in (
                (f"batched ({args.batch} per tx)", args.intervals, args.batch),
                ("one tx per interval", args.unbatched, 1),
            ):
                market = new_market(anvil, work)
                data = work / f"hub-{batch}"
                record_usage(data, market, count)
                results[label] = settle(data, market, count, batch, args.confirmations)
        finally:
            anvil.stop()
    print(f"settlement on anvil (automine), {RENTERS} renters on {PROVIDERS} nodes, "
          f"{args.confirmations} confirmation(s)")  # fmt: skip
    header = f"{'intervals':>9} {'txs':>6} {'seconds':>8} {'intervals/s':>12} {'gas/interval':>13}"
    print(f"{'mode':28} {header}")
    for label, r in results.items():
        print(
            f"{label:28} {r['intervals']:9.0f} {r['transactions']:6.0f} {r['seconds']:8.2f} "
            f"{r['per_second']:12.1f} {r['gas_per_interval']:13.0f}"
        )
    batched, single = results.values()
    ratio = single["gas_per_interval"] / batched["gas_per_interval"]
    print(f"gas per interval: {ratio:.1f}x lower batched (target >= 5x); "
          f"batched throughput {batched['per_second']:.0f}/s (target >= 200/s)")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
