"""Step 5, multi-asset with shared context: per-asset signals, market-wide series once.

Four assets, each with its own ML prediction; VIX, a SPY trend and market breadth live once in
a ``Context`` and are looked up as of each bar, shared by every asset. On VIX > 30 days the
strategy halves every position and buys nothing; on weak breadth it only stands aside.
Design doc 000's section 6 Example 2, verbatim except the package name, with stand-ins for its
loaders and model. Run: ``python examples/05_multi_asset_shared_context.py`` (about a second).
"""

# The design doc code is kept verbatim, so its lint findings are exempted file-wide:
# ruff: noqa: E402, I001

# --- stand-in data (not part of the design doc) ---
# Deterministic stand-ins for the design doc's loaders and model: 30 business days of four
# stocks, VIX above 30 on 2024-01-15..17, a SPY 5-day trend, and market breadth computed from the
# stocks (share of them closing above their 5-day mean).
from tradeloop.extras import require

require("pandas", "this example")  # pip users: it names the extra, tradeloop[pandas]

import numpy as np
import pandas as pd

_dates = pd.date_range("2024-01-01", periods=30, freq="B")
_steps = np.arange(len(_dates))


def load_stock(symbol):
    phase = len(symbol) + ord(symbol[0]) % 5
    close = 100.0 + 8.0 * np.sin(_steps / 4.0 + phase) + 0.3 * _steps
    open_ = np.concatenate(([close[0]], close[:-1]))
    return pd.DataFrame(
        {
            "open": open_,
            "high": np.maximum(open_, close) + 0.5,
            "low": np.minimum(open_, close) - 0.5,
            "close": close,
            "volume": 1_000_000.0,
        },
        index=_dates,
    )


class _StandInModel:
    def predict(self, symbol, frame):
        phase = ord(symbol[1]) % 7
        return 0.5 + 0.45 * np.sin(np.arange(len(frame)) * 0.9 + phase)


my_model = _StandInModel()


def load_vix():
    level = 18.0 + 3.0 * np.sin(_steps / 2.0)
    level[10:13] += 15.0
    return pd.DataFrame({"close": level}, index=_dates)


def load_spy():
    close = pd.Series(400.0 + 2.0 * _steps + 5.0 * np.sin(_steps / 3.0), index=_dates)
    return pd.DataFrame({"close": close, "trend_5d": close.pct_change(5)})


def compute_market_breadth(symbols):
    closes = pd.concat([load_stock(s)["close"].rename(s) for s in symbols], axis=1)
    above = closes > closes.rolling(5, min_periods=1).mean()
    return above.mean(axis=1)


# --- design doc code (verbatim except the package name ml4t.backtest -> tradeloop) ---
# fmt: off
from tradeloop import Engine, Strategy
from tradeloop.data import HistoricalFeed, Context

# Load multiple stocks
stocks = ['AAPL', 'MSFT', 'GOOGL', 'AMZN']
asset_feeds = {}

for symbol in stocks:
    df = load_stock(symbol)
    df['ml_pred'] = my_model.predict(symbol, df)
    asset_feeds[symbol] = HistoricalFeed(df, signal_columns=['ml_pred'])

# Load context (NOT duplicated per stock)
vix = load_vix()['close']
spy_trend = load_spy()['trend_5d']
breadth = compute_market_breadth(stocks)

# Strategy
class MultiAssetMLStrategy(Strategy):
    def on_market_event(self, event, context):
        # Asset-specific
        pred = event.signals['ml_pred']
        position = self.get_position(event.asset_id)

        # Market context (shared across all assets)
        vix = context.get('VIX')
        breadth = context.get('breadth')

        # Regime-dependent logic
        if vix and vix > 30:
            # High vol: close 50% of all positions
            if position > 0:
                self.reduce_position(event.asset_id, 0.5)
            return

        if breadth and breadth < 0.3:
            return  # Weak market, don't enter

        # ML logic
        if pred > 0.8 and position == 0:
            # Position size depends on VIX
            size = 0.02 if vix < 20 else 0.01
            self.buy_percent(event.asset_id, size)

# Run with separate context
engine = Engine(
    feeds=asset_feeds,
    context=Context({
        'VIX': vix,
        'SPY_trend': spy_trend,
        'breadth': breadth,
    }),
    strategy=MultiAssetMLStrategy(),
)

results = engine.run()
# fmt: on


# --- report (not part of the design doc) ---
print(f"Return: {results['total_return']:.2%}")
print(f"Final value: {results['final_value']:,.2f}")
print(f"Context series: {', '.join(results.config['context'])}")
_high_vix_days = {ts.date() for ts, level in vix.items() if level > 30}
_orders = list(results.orders.iter_rows(named=True))
for _side in ("buy", "sell"):
    _all = [o for o in _orders if o["side"] == _side]
    _high = [o for o in _all if o["submitted_at"].date() in _high_vix_days]
    print(f"{_side} orders: {len(_all)}, on VIX > 30 days: {len(_high)}")
