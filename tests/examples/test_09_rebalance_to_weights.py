"""examples/09_rebalance_to_weights.py: dates, weights and orders recomputed in plain Python."""

from __future__ import annotations

import re
from pathlib import Path

import polars as pl
import pytest

from tests.examples.ledger import Ledger, by_timestamp, whole_shares
from tests.examples.running import DATA, load_example, number, run_script


def weights_by_hand(rows: list[dict[str, float]]) -> dict[str, float]:
    """Strength = ml_pred - 0.5 where positive; 95 % split by strength, capped at 40 %."""
    strength = {r["asset_id"]: r["ml_pred"] - 0.5 for r in rows if r["ml_pred"] > 0.5}
    total = sum(strength.values())
    return {a: min(0.95 * s / total, 0.40) for a, s in strength.items()}


def test_rebalance_to_weights_trades_monthly_to_the_recomputed_weights(tmp_path: Path) -> None:
    run = run_script("09_rebalance_to_weights.py", tmp_path)
    run.assert_ok()
    bars = pl.read_parquet(DATA / "sample.parquet")
    result, _ = load_example("09_rebalance_to_weights.py").backtest(bars)

    # On the first bar of each calendar month, every asset goes to its weight × equity in
    # whole shares at the close; held assets without a weight go to zero.
    ledger = Ledger(result.fills, 100_000.0)
    expected, table, month = [], [], None
    for ts, rows in by_timestamp(bars):
        booked = ledger.advance(ts)
        sides = [f["side"] for f in booked]
        assert sides == sorted(sides, reverse=True)  # sells fill before buys
        assert ledger.cash >= 0
        ledger.mark({r["asset_id"]: r["close"] for r in rows})
        if (ts.year, ts.month) == month:
            continue
        month = (ts.year, ts.month)
        weights = weights_by_hand(rows)
        table.append((ts, weights))
        equity = ledger.equity()
        for r in rows:
            asset, held = r["asset_id"], ledger.held(r["asset_id"])
            delta = whole_shares(weights.get(asset, 0.0) * equity, r["close"]) - held
            if delta:
                expected.append((ts, asset, "buy" if delta > 0 else "sell", abs(delta)))
    actual = result.orders.select("submitted_at", "asset_id", "side", "qty").iter_rows()
    assert sorted(actual) == sorted(expected)
    assert len(table) == 17  # 2022-01 .. 2023-05
    assert any(len(w) == 5 for _, w in table)  # some months hold every asset...
    assert any(max(w.values()) == 0.40 for _, w in table)  # ...and some hit the cap

    assets = ["AAA", "BBB", "CCC", "DDD", "EEE"]
    printed = re.findall(r"^  (\d{4}-\d\d-\d\d)((?: +[\d.]+%){6})$", run.stdout, re.MULTILINE)
    assert [(d, [float(x) for x in cells.replace("%", "").split()]) for d, cells in printed] == [
        (
            f"{ts:%Y-%m-%d}",
            [round(100 * w.get(a, 0.0), 1) for a in assets]
            + [round(100 * (1 - sum(w.values())), 1)],
        )
        for ts, w in table
    ]
    assert number(r"final value ([\d,.]+)", run.stdout) == pytest.approx(
        result["final_value"], abs=0.005
    )
