"""examples/11_declarative_and_hybrid.py: both twins trade exactly the rules, recomputed."""

from __future__ import annotations

from pathlib import Path
from types import ModuleType

import polars as pl
import pytest

from tests.examples.ledger import Ledger, by_timestamp, whole_shares
from tests.examples.running import load_example, run_script

NAME = "11_declarative_and_hybrid.py"


@pytest.fixture(scope="module")
def example() -> ModuleType:
    return load_example(NAME)


def test_declarative_and_hybrid_runs_as_a_script_and_reports_identical_fills(
    tmp_path: Path,
) -> None:
    run = run_script(NAME, tmp_path)
    run.assert_ok()
    assert "identical fills: True" in run.stdout


def test_declarative_and_hybrid_orders_are_the_rules_recomputed_from_the_data(
    example: ModuleType,
) -> None:
    bars, vix = example.market()
    declarative = example.backtest(example.declarative, bars, vix)
    hybrid = example.backtest(example.HybridStrategy(), bars, vix)
    assert declarative.fills.equals(hybrid.fills)

    # Entry when flat: ml_pred > 0.6 and VIX < 30, 30 % of equity in whole shares at the close.
    # Exit when long, first that applies: ml_pred < 0.45, P&L <= -5 %, P&L >= +15 %, VIX > 35,
    # with P&L the close against the average fill price. Positions and cash from the fills.
    levels = dict(vix.select(pl.col("timestamp").dt.replace_time_zone("UTC"), "VIX").iter_rows())
    ledger = Ledger(hybrid.fills, 100_000.0)
    expected = []
    for ts, rows in by_timestamp(bars):
        ledger.advance(ts)
        ledger.mark({r["asset_id"]: r["close"] for r in rows})
        level = levels[ts]
        for r in rows:
            asset, pred, held = r["asset_id"], r["ml_pred"], ledger.held(r["asset_id"])
            if held == 0:
                if pred > 0.6 and level < 30:
                    qty = whole_shares(0.3 * ledger.equity(), r["close"])
                    expected.append((ts, asset, "buy", qty, "strategy"))
                continue
            pnl = r["close"] / ledger.avg_price[asset] - 1.0
            for fired, reason in (
                (pred < 0.45, "signal_below(ml_pred<0.45)"),
                (pnl <= -0.05, "stop_loss"),
                (pnl >= 0.15, "take_profit"),
                (level > 35, "context_above(VIX>35)"),
            ):
                if fired:
                    expected.append((ts, asset, "sell", held, reason))
                    break
    columns = ("submitted_at", "asset_id", "side", "qty", "reason")
    assert sorted(hybrid.orders.select(columns).iter_rows()) == sorted(expected)
    # Entries, and exits by signal, stop and VIX (the signal exit pre-empts every +15 %).
    assert {"strategy", *example.REASONS[1:3], example.REASONS[4]} <= {e[4] for e in expected}
