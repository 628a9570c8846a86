"""Step 7, ensemble vote: three models as three signals, a majority decides.

Each asset carries three predictions (``model_a_pred``, ``model_b_pred``, ``model_c_pred``); a
model votes long when its prediction is above 0.5. Two or more long votes while flat: enter,
sized by the models' average (``size_by_confidence``, at most 15 % each); two or more votes
against while long: exit. The three models are stand-ins built from the bundled sample's
ml_pred plus independent noise, so they mostly agree, but not always.
Design doc 002's "Multi-Signal Decision Logic" (EnsembleStrategy), plus an exit.
Run: ``python examples/07_ensemble_vote.py`` (about a second).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from tradeloop import BacktestResult, Engine, MarketEvent, Strategy

DATA = Path(__file__).parent / "data"
MODELS = ("model_a_pred", "model_b_pred", "model_c_pred")


def with_three_models(bars: pl.DataFrame, noise: float = 0.15, seed: int = 3) -> pl.DataFrame:
    """Add three stand-in model predictions: ml_pred plus independent noise, clipped to 0..1."""
    rng = np.random.default_rng(seed)
    base = bars["ml_pred"].to_numpy()
    return bars.with_columns(
        pl.Series(name, np.clip(base + rng.normal(0.0, noise, base.size), 0.0, 1.0))
        for name in MODELS
    )


class EnsembleStrategy(Strategy):
    """Long on a 2-of-3 bullish vote, flat on a 2-of-3 bearish one."""

    def on_market_event(self, event: MarketEvent, context: Mapping[str, Any]) -> None:
        predictions = [event.signals[name] for name in MODELS]
        bullish_votes = sum(1 for p in predictions if p > 0.5)
        held = self.get_position(event.asset_id)
        if bullish_votes >= 2 and held == 0:
            average = sum(predictions) / len(predictions)
            self.size_by_confidence(event.asset_id, average, max_percent=0.15)
        elif bullish_votes <= 1 and held > 0:
            self.close_position(event.asset_id, reason="majority_exit")


def backtest(bars: pl.DataFrame) -> BacktestResult:
    return Engine(feed=bars, strategy=EnsembleStrategy(), commission=0.0005).run()


def main() -> None:
    bars = with_three_models(pl.read_parquet(DATA / "sample.parquet"))
    votes = bars.select(pl.sum_horizontal(pl.col(name) > 0.5 for name in MODELS).alias("votes"))
    share = votes["votes"].value_counts().sort("votes")
    result = backtest(bars)
    entries = result.orders.filter(pl.col("reason") == "strategy").height
    exits = result.orders.filter(pl.col("reason") == "majority_exit").height
    print("Ensemble vote: three models, long on a 2-of-3 majority")
    print("  bullish votes per bar:")
    for n, count in share.iter_rows():
        print(f"    {n} of 3: {count:5,d} bars ({count / bars.height:.1%})")
    print(f"  orders: {entries} entries, {exits} exits")
    print(
        f"  final value {result['final_value']:,.2f}   return {result['total_return']:.2%}   "
        f"win rate {result['win_rate']:.1%}"
    )


if __name__ == "__main__":
    main()
