"""One user file, every runtime: the strategy, its parameters, its risk rules, its live model
and its costs, defined once. Nothing here is rewritten between a backtest and live trading:

    tradeloop backtest --data examples/data/sample.parquet --strategy examples/ml_setup.py:setup
    tradeloop sweep --data examples/data/sample.parquet --strategy examples/ml_setup.py:setup \\
        --grid entry=0.6,0.7 --grid exit=0.3,0.4
    tradeloop paper --config deploy/paper.toml           # [run] strategy = this setup
    tradeloop live --config deploy/live-binance.toml --confirm-live        # or live-alpaca

The model is a stand-in for yours: a pure function of the bar it is handed (where the close
sits in the bar's range), computed the same way in a replay and on every live bar, so the
backtest measures the very numbers the live run will trade on. Swap in a call to your model
server: an ``async def`` works in paper and live runs (it is asked for every asset of a bar
concurrently, within ``timeout_s``; a replay needs a plain function, e.g. the same model
loaded in process). A function of the bar alone keeps no state, so a daemon restart or a
sweep worker running many combinations can never see a different number.
"""

from __future__ import annotations

from datetime import datetime

from ml_strategy import MLStrategy  # the strategy file beside this one
from tradeloop import CallableFeatureProvider, RiskManager, Setup
from tradeloop.risk import MaxPositionSize, StopLoss


def bar_strength(asset_id: str, timestamp: datetime, bar: dict[str, float]) -> dict[str, float]:
    """The stand-in model: 1.0 when a bar closes at its high, 0.0 at its low."""
    span = bar["high"] - bar["low"]
    return {"model_score": 0.5 if span <= 0 else (bar["close"] - bar["low"]) / span}


model = CallableFeatureProvider(bar_strength, asset_features=["model_score"])

risk = RiskManager()
risk.add_rule(StopLoss(0.05))  # exit a position 5 % below its entry
risk.add_rule(MaxPositionSize(0.35))  # no asset above 35 % of equity

setup = Setup(
    MLStrategy,
    params={"entry": 0.8, "exit": 0.2, "signal": "model_score"},
    risk=risk,
    features=model,
    commission=0.0005,
)
