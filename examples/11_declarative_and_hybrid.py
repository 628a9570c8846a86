"""Step 11, a declarative strategy (compiled to one numba kernel) and its hybrid-numba twin.

The hybrid twin is design doc 001's level 3: an ordinary Strategy that calls its own
``@njit(cache=True)`` functions for the decision and Python helpers for the orders. Both trade
the same rules, so their fills are identical; the declarative one runs as a compiled replay.
Run: ``python examples/11_declarative_and_hybrid.py`` (the first run compiles for ~10 s, then
about a second).
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

import polars as pl
from numba import njit

from tradeloop import (
    BacktestResult,
    Context,
    Engine,
    MarketEvent,
    PercentSizer,
    Rule,
    SignalStrategy,
    Strategy,
)
from tradeloop.data.synthetic import synthetic_market

declarative = SignalStrategy(
    entry_rules=[
        Rule.signal_above("ml_pred", 0.6),
        Rule.context_below("VIX", 30),
        Rule.not_in_position(),
    ],
    exit_rules=[
        Rule.signal_below("ml_pred", 0.45),
        Rule.stop_loss(0.05),
        Rule.take_profit(0.15),
        Rule.context_above("VIX", 35),
    ],
    position_sizer=PercentSizer(0.3),
)


@njit(cache=True)
def should_enter(ml_pred: float, vix: float) -> bool:
    return ml_pred > 0.6 and vix < 30.0


@njit(cache=True)
def exit_code(ml_pred: float, pnl_pct: float, vix: float) -> int:
    """0 hold, else which exit fired (1 signal, 2 stop, 3 target, 4 VIX)."""
    if ml_pred < 0.45:
        return 1
    if pnl_pct <= -0.05:
        return 2
    if pnl_pct >= 0.15:
        return 3
    if vix > 35.0:
        return 4
    return 0


REASONS = ("", "signal_below(ml_pred<0.45)", "stop_loss", "take_profit", "context_above(VIX>35)")


class HybridStrategy(Strategy):
    """Python gathers state and places orders; compiled functions decide."""

    def on_market_event(self, event: MarketEvent, context: Mapping[str, Any]) -> None:
        asset = event.asset_id
        if self.get_open_orders(asset):
            return
        vix = context.get("VIX", float("nan"))
        if self.get_position(asset) == 0:
            if should_enter(event.signals["ml_pred"], vix):
                self.buy_percent(asset, 0.3)
            return
        code = exit_code(event.signals["ml_pred"], self.get_unrealized_pnl_pct(asset) or 0.0, vix)
        if code:
            self.close_position(asset, reason=REASONS[code])


def market() -> tuple[pl.DataFrame, pl.DataFrame]:
    """Twenty synthetic assets, 1,000 daily bars with ml_pred, and a VIX series."""
    return synthetic_market(n_assets=20, n_bars=1_000, seed=11)


def backtest(strategy: Strategy, bars: pl.DataFrame, vix: pl.DataFrame) -> BacktestResult:
    return Engine(feed=bars, strategy=strategy, context=Context(vix), commission=0.0005).run()


def main() -> None:
    bars, vix = market()
    results = {}
    for name, strategy in (("declarative", declarative), ("hybrid", HybridStrategy())):
        started = time.perf_counter()
        results[name] = backtest(strategy, bars, vix)
        print(
            f"{name:12s} final value {results[name]['final_value']:>12,.2f}  "
            f"fills {results[name].fills.height:5d}  {time.perf_counter() - started:.2f} s"
        )
    same = results["declarative"].fills.equals(results["hybrid"].fills)
    print(f"identical fills: {same}")
    if not same:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
