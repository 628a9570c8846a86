"""Seed 002 (ML Signal Integration Guide), "Advanced Patterns": KellyStrategy, EnsembleStrategy,
RegimeStrategy and StopLossStrategy, each run over the same stand-in bars, signals and context.
Verbatim seed classes. RebalanceStrategy is left out: its data methods are the reader's to write.
"""

# --- stand-in data (not part of the seed) ---
# The seed shows the four strategy classes without data or a run. Here: 80 daily bars of one
# asset (up 1 %/day, then down 1 %/day, then up 0.5 %/day), smooth deterministic ML signals,
# and 002's context dict with a VIX spike above 30 (bars 30-33) and a bull-then-bear regime.
import math
from datetime import datetime, timedelta

import polars as pl

from tradeloop import BacktestEngine, Strategy
from tradeloop.data import HistoricalDataFeed

_n = 80
_closes = []
_price = 100.0
for _i in range(_n):
    _price *= 1.01 if _i < 25 else (0.99 if _i < 50 else 1.005)
    _closes.append(round(_price, 4))
_opens = [100.0, *_closes[:-1]]
bars = pl.DataFrame(
    {
        "timestamp": [datetime(2024, 1, 1) + timedelta(days=i) for i in range(_n)],
        "open": _opens,
        "high": [max(o, c) * 1.002 for o, c in zip(_opens, _closes, strict=True)],
        "low": [min(o, c) * 0.998 for o, c in zip(_opens, _closes, strict=True)],
        "close": _closes,
        "volume": [1_000_000.0] * _n,
        "prediction": [0.55 + 0.35 * math.sin(0.7 * i) for i in range(_n)],
        "confidence": [0.60 + 0.30 * math.cos(0.5 * i) for i in range(_n)],
        "model_a_pred": [0.50 + 0.30 * math.sin(0.6 * i) for i in range(_n)],
        "model_b_pred": [0.50 + 0.30 * math.sin(0.6 * i + 1.0) for i in range(_n)],
        "model_c_pred": [0.50 + 0.30 * math.sin(0.6 * i + 2.0) for i in range(_n)],
    }
)
context_data = {
    ts: {
        "VIX": 18.0 + 6.0 * math.sin(i / 6.0) + (20.0 if 30 <= i <= 33 else 0.0),
        "regime": "bull" if i < 40 else "bear",
    }
    for i, ts in enumerate(bars["timestamp"])
}


# --- seed code (verbatim except the package name ml4t.backtest -> tradeloop) ---
# fmt: off
class KellyStrategy(Strategy):
    def on_market_event(self, event, context=None):
        prediction = event.signals.get("prediction", 0.0)
        confidence = event.signals.get("confidence", 0.0)

        # Only trade high-conviction signals
        if prediction > 0.65 and confidence > 0.70:
            # Size by confidence: high confidence → larger position
            self.size_by_confidence(
                asset_id=event.asset_id,
                confidence=confidence,
                max_percent=0.25,  # Never exceed 25% of portfolio
                price=event.close,
            )


class EnsembleStrategy(Strategy):
    def on_market_event(self, event, context=None):
        # Multiple ML models
        model_a = event.signals.get("model_a_pred", 0.0)
        model_b = event.signals.get("model_b_pred", 0.0)
        model_c = event.signals.get("model_c_pred", 0.0)

        # Ensemble vote (majority)
        signals = [model_a, model_b, model_c]
        bullish_votes = sum(1 for s in signals if s > 0.5)

        # Require 2/3 agreement
        if bullish_votes >= 2:
            avg_confidence = sum(signals) / len(signals)
            self.size_by_confidence(
                asset_id=event.asset_id,
                confidence=avg_confidence,
                max_percent=0.15,
                price=event.close,
            )


class RegimeStrategy(Strategy):
    def on_market_event(self, event, context=None):
        # Get market regime from context
        vix = context.get("VIX", 0.0) if context else 0.0
        regime = context.get("regime", "unknown") if context else "unknown"

        prediction = event.signals.get("prediction", 0.0)

        # Risk-off during high volatility
        if vix > 30:
            self.close_position(event.asset_id)
            return

        # Aggressive in bull markets
        if regime == "bull" and prediction > 0.60:
            self.buy_percent(event.asset_id, percent=0.20, price=event.close)

        # Conservative in bear markets (higher threshold)
        elif regime == "bear" and prediction > 0.75:
            self.buy_percent(event.asset_id, percent=0.10, price=event.close)


class StopLossStrategy(Strategy):
    def __init__(self, profit_target=0.15, stop_loss=-0.05):
        super().__init__()
        self.profit_target = profit_target
        self.stop_loss = stop_loss

    def on_market_event(self, event, context=None):
        position = self.get_position(event.asset_id)

        # Check exit conditions if in position
        if position != 0:
            pnl_pct = self.get_unrealized_pnl_pct(event.asset_id)

            if pnl_pct and pnl_pct >= self.profit_target:
                self.close_position(event.asset_id)
                return  # Exit taken

            if pnl_pct and pnl_pct <= self.stop_loss:
                self.close_position(event.asset_id)
                return  # Stop loss hit

        # Entry logic
        prediction = event.signals.get("prediction", 0.0)
        if position == 0 and prediction > 0.70:
            self.buy_percent(event.asset_id, percent=0.12, price=event.close)
# fmt: on


# --- stand-in runner (not part of the seed) ---
# One run per strategy over the same bars and context, with 002's BacktestEngine spelling.
for strategy in (KellyStrategy(), EnsembleStrategy(), RegimeStrategy(), StopLossStrategy()):
    engine = BacktestEngine(
        data_feed=HistoricalDataFeed(
            bars,
            signal_columns=[
                "prediction",
                "confidence",
                "model_a_pred",
                "model_b_pred",
                "model_c_pred",
            ],
            asset_id="AAPL",
        ),
        strategy=strategy,
        context_data=context_data,
        initial_capital=100_000,
    )
    results = engine.run()
    print(
        f"{type(strategy).__name__}: Return: {results['total_return']:.2%}, "
        f"fills: {results.fills.height}, round trips: {results.trades.height}"
    )
