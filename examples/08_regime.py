"""Step 8, regime strategy: a market regime label in the context changes the rules.

The context holds two market-wide series: VIX, and a ``regime`` label, "bull" when an
equal-weight index of the five sample assets closes above its 50-day mean and "bear" below
(the label starts on day 50: before that the context gives ``None`` and the strategy waits).
Bull: enter at ml_pred > 0.60 with 20 % of equity. Bear: only at ml_pred > 0.75, with 10 %.
VIX > 30: out of everything. ml_pred < 0.45: out of that asset.
Design doc 002's "Regime-Dependent Trading" (RegimeStrategy). The design doc's version calls
``buy_percent`` on every qualifying bar, which buys another 20 % each time; this one calls
``set_position_percent``, a target, so a bull-sized position is also cut to 10 % in a bear.
Run: ``python examples/08_regime.py`` (about a second).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import polars as pl

from tradeloop import BacktestResult, Context, Engine, MarketEvent, Strategy

DATA = Path(__file__).parent / "data"
TREND_DAYS = 50


def market_context(bars: pl.DataFrame, vix: pl.DataFrame) -> pl.DataFrame:
    """timestamp, VIX, regime ("bull"/"bear"; null for the first TREND_DAYS - 1 days)."""
    index = (
        bars.with_columns(
            (pl.col("close") / pl.col("close").first().over("asset_id")).alias("growth")
        )
        .group_by("timestamp")
        .agg(pl.col("growth").mean().alias("index"))
        .sort("timestamp")
    )
    trend = pl.col("index").rolling_mean(TREND_DAYS)
    regime = pl.when(pl.col("index") > trend).then(pl.lit("bull")).otherwise(pl.lit("bear"))
    labels = index.select("timestamp", pl.when(trend.is_not_null()).then(regime).alias("regime"))
    return vix.join(labels, on="timestamp", how="left")


class RegimeStrategy(Strategy):
    """Aggressive in a bull regime, choosy and small in a bear one, out when VIX spikes."""

    def on_market_event(self, event: MarketEvent, context: Mapping[str, Any]) -> None:
        asset = event.asset_id
        vix = context.get("VIX", 0.0)
        regime = context.get("regime", "unknown")
        prediction = event.signals["ml_pred"]
        if vix > 30:
            self.close_position(asset, reason="vix_risk_off")
        elif regime == "bull" and prediction > 0.60:
            self.set_position_percent(asset, 0.20)
        elif regime == "bear" and prediction > 0.75:
            self.set_position_percent(asset, 0.10)
        elif prediction < 0.45 and self.get_position(asset) > 0:
            self.close_position(asset, reason="signal_exit")


def backtest(bars: pl.DataFrame, context: pl.DataFrame) -> BacktestResult:
    return Engine(
        feed=bars, strategy=RegimeStrategy(), context=Context(context), commission=0.0005
    ).run()


def main() -> None:
    bars = pl.read_parquet(DATA / "sample.parquet")
    context = market_context(bars, pl.read_parquet(DATA / "vix.parquet"))
    result = backtest(bars, context)
    days = context.with_columns(
        pl.when(pl.col("VIX") > 30)
        .then(pl.lit("VIX > 30"))
        .otherwise(pl.col("regime").fill_null("warm-up"))
        .alias("state"),
        pl.col("timestamp").dt.replace_time_zone("UTC"),
    ).join(
        result.equity_curve.select(
            "timestamp", (pl.col("gross_exposure") / pl.col("equity")).alias("invested")
        ),
        on="timestamp",
    )
    per_state = (
        days.group_by("state").agg(pl.len().alias("days"), pl.col("invested").mean()).sort("state")
    )
    print("Regime strategy: bull 20 % at ml_pred > 0.60, bear 10 % at ml_pred > 0.75")
    print("  market state   days   average invested")
    for state, n, invested in per_state.iter_rows():
        print(f"  {state:12s} {n:6d}   {invested:16.1%}")
    reasons = dict(result.orders.group_by("reason").len().iter_rows())
    print(
        f"  orders: {reasons.get('strategy', 0)} sizing, {reasons.get('signal_exit', 0)} "
        f"signal exits, {reasons.get('vix_risk_off', 0)} VIX exits"
    )
    print(f"  final value {result['final_value']:,.2f}   return {result['total_return']:.2%}")


if __name__ == "__main__":
    main()
