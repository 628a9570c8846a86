"""Step 6, confidence sizing: the position follows the model's confidence, not a fixed size.

``size_by_confidence(asset, confidence, max_percent)`` aims at ``max_percent × confidence`` of
portfolio value and counts open orders, so calling it on every qualifying bar trims or tops up
toward that target instead of stacking buys. Five assets of the bundled sample: long when
ml_pred > 0.65 and confidence > 0.70 (at most 20 % each), out when ml_pred < 0.45.
Design doc 002's "Confidence-Based Position Sizing" (KellyStrategy), plus an exit.
Run: ``python examples/06_confidence_sizing.py`` (about a second).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

import polars as pl

from tradeloop import BacktestResult, Engine, MarketEvent, Strategy

DATA = Path(__file__).parent / "data"
MAX_PERCENT = 0.20


class KellyStrategy(Strategy):
    """Hold ``MAX_PERCENT × confidence`` of equity while the model is bullish and sure."""

    def __init__(self) -> None:
        super().__init__()
        self.entries: list[tuple[datetime, str, float, float]] = []  # time, asset, conf, shares
        self.resized = {"buy": 0, "sell": 0}

    def on_market_event(self, event: MarketEvent, context: Mapping[str, Any]) -> None:
        asset = event.asset_id
        prediction, confidence = event.signals["ml_pred"], event.signals["confidence"]
        held = self.get_position(asset)
        if prediction > 0.65 and confidence > 0.70:
            order = self.size_by_confidence(asset, confidence, max_percent=MAX_PERCENT)
            if order is not None and held == 0:
                self.entries.append((event.timestamp, asset, confidence, order.qty))
            elif order is not None:
                self.resized[order.side.value] += 1
        elif prediction < 0.45 and held > 0:
            self.close_position(asset, reason="signal_exit")


def backtest(bars: pl.DataFrame) -> tuple[BacktestResult, KellyStrategy]:
    strategy = KellyStrategy()
    result = Engine(feed=bars, strategy=strategy, commission=0.0005).run()
    return result, strategy


def main() -> None:
    bars = pl.read_parquet(DATA / "sample.parquet")
    result, strategy = backtest(bars)
    exits = result.orders.filter(pl.col("reason") == "signal_exit").height
    print("Confidence sizing: target = 20 % of equity × confidence, resized on every signal")
    print(
        f"  final value {result['final_value']:,.2f}   return {result['total_return']:.2%}   "
        f"round trips {result['n_trades']:.0f}"
    )
    print(
        f"  orders: {len(strategy.entries)} entries, {sum(strategy.resized.values())} resizes "
        f"({strategy.resized['buy']} up, {strategy.resized['sell']} down), {exits} exits"
    )
    print("  first entries:")
    for ts, asset, confidence, shares in strategy.entries[:5]:
        print(
            f"    {ts:%Y-%m-%d}  {asset}  confidence {confidence:.2f}  "
            f"target {MAX_PERCENT * confidence:6.2%}  {shares:,.0f} sh"
        )


if __name__ == "__main__":
    main()
