"""The parity matrix's strategies, as a user would write them: one file of ``Setup``s.

Self-contained on purpose (tradeloop, numpy, polars only): the paper daemon loads it by path
(``[run] strategy = ".../parity_setups.py:per_event"``), the test process imports it. Every
strategy records what each of its callbacks saw, one JSON line per call, into
``$TRADELOOP_PARITY_LOG/<name>.jsonl`` when that variable is set: the matrix compares those
files line by line across runtimes.

The data are synthetic and deterministic (``synthetic_market``): 4 assets × 90 daily bars, a
VIX series, and a ``breadth`` context series that starts only at bar 30 (``None`` before).
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from tradeloop import (
    CallableFeatureProvider,
    Fill,
    MarketEvent,
    PercentSizer,
    PrecomputedFeatureProvider,
    RiskManager,
    Rule,
    SignalStrategy,
    Strategy,
    TimestampBatch,
)
from tradeloop.broker.orders import Order
from tradeloop.clock import utc_ns
from tradeloop.data.synthetic import synthetic_market
from tradeloop.risk import DynamicTrailingStop, StopLoss, TakeProfit, VolatilityScaledStopLoss
from tradeloop.setup import Setup

BARS, VIX = synthetic_market(n_assets=4, n_bars=90, seed=5)
TIMES = VIX["timestamp"].to_list()
CONTEXT = VIX.with_columns(
    pl.Series("breadth", [None] * 30 + [0.3 + 0.4 * ((i * 7) % 10) / 10 for i in range(60)])
)
COSTS = {"initial_cash": 100_000.0, "commission": 0.0005}


def _features() -> pl.DataFrame:
    """Per asset: a 5-bar range ``atr`` and a 5-bar momentum ``mom``; market-wide (a null
    asset): ``risk_on`` from VIX. Each row is known at its bar's close."""
    parts = []
    for (asset,), frame in BARS.sort("timestamp").partition_by("asset_id", as_dict=True).items():
        rng = (frame["high"] - frame["low"]).rolling_mean(5)
        parts.append(
            frame.select(
                "timestamp",
                pl.lit(str(asset)).alias("asset_id"),
                rng.alias("atr"),
                (pl.col("close") / pl.col("close").shift(5) - 1.0).alias("mom"),
                pl.lit(None, pl.Float64).alias("risk_on"),
            )
        )
    market = VIX.select(
        "timestamp",
        pl.lit(None, pl.String).alias("asset_id"),
        pl.lit(None, pl.Float64).alias("atr"),
        pl.lit(None, pl.Float64).alias("mom"),
        (pl.col("VIX") < 20).cast(pl.Float64).alias("risk_on"),
    )
    frame = pl.concat([*parts, market])
    return frame.filter(~pl.all_horizontal(pl.col("atr", "mom", "risk_on").is_null()))


FEATURES = _features()
_ATR = {
    (row["asset_id"], utc_ns(row["timestamp"])): row["atr"]
    for row in FEATURES.filter(pl.col("asset_id").is_not_null()).iter_rows(named=True)
}


def _clean(value: Any) -> Any:
    if isinstance(value, float) and value != value:
        return "nan"
    if isinstance(value, np.floating):
        return _clean(float(value))
    return value


class Recorder(Strategy):
    """Writes every callback's inputs as JSON lines (when TRADELOOP_PARITY_LOG is set)."""

    name = "recorder"

    def __init__(self) -> None:
        super().__init__()
        folder = os.environ.get("TRADELOOP_PARITY_LOG")
        self._log = None if folder is None else (Path(folder) / f"{self.name}.jsonl").open("a")

    def record(self, kind: str, **what: Any) -> None:
        if self._log is not None:
            clean = {k: _clean(v) for k, v in what.items()}
            self._log.write(json.dumps({"kind": kind, **clean}, sort_keys=True) + "\n")
            self._log.flush()

    def on_end(self) -> None:
        if self._log is not None:
            self._log.close()
            self._log = None

    def saw_event(self, event: MarketEvent, context: Mapping[str, Any]) -> None:
        self.record(
            "event",
            ts=event.ts_ns,
            asset=event.asset_id,
            bar=[event.open, event.high, event.low, event.close, event.volume],
            signals=json.dumps({k: _clean(v) for k, v in sorted(event.signals.items())}),
            context=json.dumps({k: _clean(v) for k, v in sorted(context.items())}),
            position=self.get_position(event.asset_id),
            cash=self.get_cash(),
        )

    def on_fill(self, fill: Fill) -> None:
        self.record(
            "fill",
            ts=fill.ts_ns,
            asset=fill.asset_id,
            side=str(fill.side),
            qty=fill.qty,
            price=fill.price,
            reason=fill.reason,
        )

    def on_order(self, order: Order) -> None:
        self.record(
            "order",
            id=order.id,
            asset=order.asset_id,
            status=str(order.status),
            qty=order.qty,
            filled=order.filled_qty,
        )


class PerEvent(Recorder):
    """Buys 20 % on a confident prediction when VIX is calm, sells on a weak one."""

    name = "per_event"

    def __init__(self, entry: float = 0.62, exit: float = 0.4) -> None:
        super().__init__()
        self.entry, self.exit = entry, exit

    def on_market_event(self, event: MarketEvent, context: Mapping[str, Any]) -> None:
        self.saw_event(event, context)
        held = self.get_position(event.asset_id)
        pred = event.signals["ml_pred"]
        if held == 0 and pred > self.entry and context["VIX"] < 24:
            self.buy_percent(event.asset_id, 0.2)
        elif held > 0 and pred < self.exit:
            self.close_position(event.asset_id)


class Batch(Recorder):
    """Every 5th timestamp: equal weight in the two best predictions."""

    name = "batch"

    def __init__(self) -> None:
        super().__init__()
        self.count = 0

    def on_timestamp_batch(self, batch: TimestampBatch, context: Mapping[str, Any]) -> None:
        self.record(
            "batch",
            ts=utc_ns(batch.timestamp),
            assets=batch.asset_ids,
            close=batch.close.tolist(),
            signals=json.dumps(
                {k: [_clean(x) for x in v.tolist()] for k, v in sorted(batch.signals.items())}
            ),
            context=json.dumps({k: _clean(v) for k, v in sorted(context.items())}),
        )
        self.count += 1
        if self.count % 5:
            return
        best = np.argsort(-batch.signals["ml_pred"])[:2]
        self.rebalance_to_weights({batch.asset_ids[i]: 0.45 for i in best.tolist()})


class FeatureUser(Recorder):
    """Buys 25 % when ``ml_pred`` is high and momentum positive; the risk rules do the exits."""

    name = "precomputed"

    def on_market_event(self, event: MarketEvent, context: Mapping[str, Any]) -> None:
        self.saw_event(event, context)
        mom = event.signals.get("mom", float("nan"))
        flat = self.get_position(event.asset_id) == 0
        calm = context.get("risk_on", 1.0) > 0.5
        if flat and event.signals["ml_pred"] > 0.6 and mom == mom and mom > 0 and calm:
            self.buy_percent(event.asset_id, 0.25)


class CallableATR(Recorder):
    """Buys 20 % on a high prediction, sells on a low one; a 0.8 × ATR stop (ATR from a
    callable provider) exits in between."""

    name = "callable_atr"

    def on_market_event(self, event: MarketEvent, context: Mapping[str, Any]) -> None:
        self.saw_event(event, context)
        held = self.get_position(event.asset_id)
        if held == 0 and event.signals["ml_pred"] > 0.6:
            self.buy_percent(event.asset_id, 0.2)
        elif held > 0 and event.signals["ml_pred"] < 0.35:
            self.close_position(event.asset_id)


class LateContext(Recorder):
    """Trades only once the ``breadth`` series exists (it is None for the first 30 bars)."""

    name = "late_context"

    def on_market_event(self, event: MarketEvent, context: Mapping[str, Any]) -> None:
        self.saw_event(event, context)
        breadth = context["breadth"]
        held = self.get_position(event.asset_id)
        if breadth is None:
            return
        if held == 0 and breadth > 0.5 and event.signals["ml_pred"] > 0.55:
            self.buy(event.asset_id, 20)
        elif held > 0 and breadth < 0.4:
            self.close_position(event.asset_id)


class OnFillOrders(Recorder):
    """A buy-stop entry above the close; each entry fill places a limit exit 1 % higher;
    orders still open after 5 bars are cancelled."""

    name = "on_fill_orders"

    def __init__(self) -> None:
        super().__init__()
        self.placed: dict[int, int] = {}
        self.bars: dict[str, int] = {}

    def on_market_event(self, event: MarketEvent, context: Mapping[str, Any]) -> None:
        self.saw_event(event, context)
        n = self.bars[event.asset_id] = self.bars.get(event.asset_id, 0) + 1
        for order in self.get_open_orders(event.asset_id):
            if n - self.placed.get(order.id, n) >= 5:
                self.cancel(order)
        if (
            self.get_position(event.asset_id) == 0
            and not self.get_open_orders(event.asset_id)
            and event.signals["ml_pred"] > 0.55
        ):
            order = self.buy(event.asset_id, 10, stop=round(event.close * 1.004, 2))
            self.placed[order.id] = n

    def on_fill(self, fill: Fill) -> None:
        super().on_fill(fill)
        if fill.side == "buy" and fill.reason == "strategy":
            order = self.sell(fill.asset_id, fill.qty, limit=round(fill.price * 1.01, 2))
            self.placed[order.id] = self.bars.get(fill.asset_id, 0)


class OrderGroups(Recorder):
    """Issue 13's orders on every runtime: a flat asset with ``ml_pred`` > 0.55 is bought with a
    bracket (stop 2 % below the fill, target 3 % above), except AAA, bought plainly and then
    protected by a 4 % trailing sell stop placed at its fill."""

    name = "order_groups"

    def on_market_event(self, event: MarketEvent, context: Mapping[str, Any]) -> None:
        self.saw_event(event, context)
        asset = event.asset_id
        if self.get_position(asset) != 0 or self.get_open_orders(asset):
            return
        if event.signals["ml_pred"] <= 0.55:
            return
        if asset == "AAA":
            self.buy(asset, 10)
        else:
            self.buy(asset, 10, stop_loss_pct=0.02, take_profit_pct=0.03)

    def on_fill(self, fill: Fill) -> None:
        super().on_fill(fill)
        if fill.asset_id == "AAA" and fill.side == "buy":
            self.sell(fill.asset_id, fill.qty, trail_percent=0.04)


def _atr(asset_id: str, timestamp: datetime) -> dict[str, float]:
    value = _ATR.get((asset_id, utc_ns(timestamp)))
    return {} if value is None or value != value else {"atr": value}


def _market(timestamp: datetime) -> dict[str, float]:
    return {"day_of_week": float(timestamp.weekday())}


def _risk(*rules: Any, provider: Any = None) -> RiskManager:
    risk = RiskManager(feature_provider=provider)
    for rule in rules:
        risk.add_rule(rule)
    return risk


CALLABLE = CallableFeatureProvider(_atr, _market, asset_features=["atr"])
PRECOMPUTED = PrecomputedFeatureProvider(FEATURES)

per_event = Setup(PerEvent, risk=_risk(StopLoss(0.03)), context=CONTEXT, **COSTS)
batch = Setup(Batch, risk=_risk(TakeProfit(0.05)), context=CONTEXT, **COSTS)
callable_atr = Setup(
    CallableATR,
    risk=_risk(
        VolatilityScaledStopLoss(atr_multiplier=0.8, volatility_key="atr"), provider=CALLABLE
    ),
    context=CONTEXT,
    **COSTS,
)
precomputed = Setup(
    FeatureUser,
    features=PRECOMPUTED,
    risk=_risk(DynamicTrailingStop(initial_trail_pct=0.04)),
    context=CONTEXT,
    **COSTS,
)
late_context = Setup(LateContext, context=CONTEXT, **COSTS)
order_groups = Setup(OrderGroups, context=CONTEXT, **COSTS)
on_fill_orders = Setup(OnFillOrders, context=CONTEXT, **COSTS)
declarative = Setup(
    SignalStrategy,
    params={
        "entry_rules": [
            Rule.signal_above("ml_pred", 0.62),
            Rule.context_below("VIX", 24),
            Rule.not_in_position(),
        ],
        "exit_rules": [Rule.signal_below("ml_pred", 0.4), Rule.stop_loss(0.05)],
        "position_sizer": PercentSizer(0.2),
    },
    context=CONTEXT,
    **COSTS,
)

SETUPS = {
    "per_event": per_event,
    "batch": batch,
    "callable_atr": callable_atr,
    "precomputed": precomputed,
    "late_context": late_context,
    "on_fill_orders": on_fill_orders,
    "order_groups": order_groups,
    "declarative": declarative,
}
