"""examples/ml_strategy.py (the `make demo` and daemon strategy): its rule, recomputed."""

from __future__ import annotations

import sys

import polars as pl

from tests.examples.ledger import Ledger, by_timestamp, whole_shares
from tests.examples.running import DATA, EXAMPLES
from tradeloop import Context, Engine


def test_bundled_ml_strategy_orders_are_its_rule_recomputed_from_the_sample() -> None:
    sys.path.insert(0, str(EXAMPLES))
    try:
        from ml_strategy import MLStrategy
    finally:
        sys.path.remove(str(EXAMPLES))
    bars, vix = pl.read_parquet(DATA / "sample.parquet"), pl.read_parquet(DATA / "vix.parquet")
    result = Engine(feed=bars, strategy=MLStrategy(), context=Context(vix), commission=0.0005).run()

    # VIX > 30: close what is held ("vix_filter") and buy nothing; else ml_pred > 0.65 while
    # flat buys 30 % of equity (whole shares at the close); ml_pred < 0.45 while long closes.
    levels = dict(vix.select(pl.col("timestamp").dt.replace_time_zone("UTC"), "VIX").iter_rows())
    ledger = Ledger(result.fills, 100_000.0)
    expected = []
    for ts, rows in by_timestamp(bars):
        ledger.advance(ts)
        ledger.mark({r["asset_id"]: r["close"] for r in rows})
        for r in rows:
            held = ledger.held(r["asset_id"])
            if levels[ts] > 30:
                if held > 0:
                    expected.append((ts, r["asset_id"], "sell", held, "vix_filter"))
            elif r["ml_pred"] > 0.65 and held == 0:
                qty = whole_shares(0.30 * ledger.equity(), r["close"])
                expected.append((ts, r["asset_id"], "buy", qty, "strategy"))
            elif held > 0 and r["ml_pred"] < 0.45:
                expected.append((ts, r["asset_id"], "sell", held, "signal_exit"))
    columns = ("submitted_at", "asset_id", "side", "qty", "reason")
    assert sorted(result.orders.select(columns).iter_rows()) == sorted(expected)
    assert {e[4] for e in expected} == {"strategy", "vix_filter", "signal_exit"}
    assert result["n_trades"] > 100
