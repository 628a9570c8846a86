"""Step 9, rebalance to weights: once a month, weight every asset by its signal's strength.

``on_timestamp_batch`` sees all assets of a timestamp at once (numpy columns), which is where
cross-sectional logic belongs. On the first bar of each month the strategy weights each
asset by how far its ml_pred is above 0.5 (95 % of equity in all, at most 40 % in one asset,
the rest cash) and calls ``rebalance_to_weights``: every named asset is traded toward its
weight, held assets not named go to zero, and sells are placed first so their proceeds fund
the buys at the next open. Design doc 002's "Portfolio Rebalancing Strategy", on the bundled
sample. Run: ``python examples/09_rebalance_to_weights.py`` (about a second).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from tradeloop import BacktestResult, Engine, Strategy, TimestampBatch

DATA = Path(__file__).parent / "data"
INVESTED, MAX_WEIGHT = 0.95, 0.40


def signal_weights(asset_ids: list[str], ml_pred: np.ndarray) -> dict[str, float]:
    """Weights proportional to ``ml_pred - 0.5`` where positive, capped; {} if none is."""
    strength = np.clip(ml_pred - 0.5, 0.0, None)
    total = strength.sum()
    if total == 0:
        return {}
    weights = np.minimum(INVESTED * strength / total, MAX_WEIGHT)
    return {a: float(w) for a, w in zip(asset_ids, weights, strict=True) if w > 0}


class MonthlyRebalance(Strategy):
    """On the first bar of every month, rebalance to the signal-strength weights."""

    def __init__(self) -> None:
        super().__init__()
        self.month: tuple[int, int] | None = None
        self.rebalances: list[tuple[datetime, dict[str, float]]] = []

    def on_timestamp_batch(self, batch: TimestampBatch, context: Mapping[str, Any]) -> None:
        month = (batch.timestamp.year, batch.timestamp.month)
        if month == self.month:
            return
        self.month = month
        weights = signal_weights(list(batch.asset_ids), batch.signals["ml_pred"])
        self.rebalance_to_weights(weights)
        self.rebalances.append((batch.timestamp, weights))


def backtest(bars: pl.DataFrame) -> tuple[BacktestResult, MonthlyRebalance]:
    strategy = MonthlyRebalance()
    result = Engine(feed=bars, strategy=strategy, commission=0.0005).run()
    return result, strategy


def main() -> None:
    bars = pl.read_parquet(DATA / "sample.parquet")
    result, strategy = backtest(bars)
    assets = sorted(bars["asset_id"].unique())
    print("Monthly rebalance to signal-strength weights (95 % invested, at most 40 % each)")
    print("  date        " + "".join(f"{a:>7s}" for a in assets) + "   cash")
    for ts, weights in strategy.rebalances:
        row = "".join(f"{weights.get(a, 0.0):7.1%}" for a in assets)
        print(f"  {ts:%Y-%m-%d}  {row}  {1 - sum(weights.values()):5.1%}")
    sells = result.orders.filter(pl.col("side") == "sell").height
    buys = result.orders.height - sells
    print(f"  orders: {buys} buys, {sells} sells over {len(strategy.rebalances)} rebalances")
    print(
        f"  final value {result['final_value']:,.2f}   return {result['total_return']:.2%}   "
        f"commission {result['commission']:,.2f}"
    )


if __name__ == "__main__":
    main()
