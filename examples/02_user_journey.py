"""Step 2, the user journey: features computed outside the engine, then a stateful strategy.

Four years of one asset from pandas; momentum features and a logistic "model" score are added
as columns before the run (no look-ahead inside the engine), the strategy enters on a confident
score and exits on a weak one or a -5 %/+15 % move, and ``results.summary()`` prints the report.
Design doc 001's section 5, verbatim except the package name, with stand-ins for its data and
feature code. Run: ``python examples/02_user_journey.py`` (about a second).
"""

# The design doc code is kept verbatim, so its lint findings are exempted file-wide:
# ruff: noqa: E402, I001

# --- work directory (not part of the design doc) ---
# The design doc reads and writes files by bare name: run it in $TRADELOOP_EXAMPLES_DIR when set,
# else in a temporary directory removed at exit, so nothing is written into the repository.
import atexit
import os
import shutil
import tempfile

_workdir = os.environ.get("TRADELOOP_EXAMPLES_DIR")
if _workdir is None:
    _workdir = tempfile.mkdtemp(prefix="tradeloop-example-")
    atexit.register(shutil.rmtree, _workdir, ignore_errors=True)
os.chdir(_workdir)


# --- stand-in data (not part of the design doc) ---
# Writes the parquet file the design doc reads (four years of business-day bars from a seeded
# random walk), and stands in for its feature code: a `my_features` module whose
# compute_technicals adds 5-day momentum and a 20-day mean, and whose compute_ml_signals is a
# logistic score of both; compute_confidence is the score's distance from 0.5, scaled to 0..1.
import sys
import types

from tradeloop.extras import require

require("pandas", "this example")  # pip users: it names the extra, tradeloop[pandas]

import numpy as np
import pandas as pd

_dates = pd.bdate_range("2020-01-01", "2023-12-29")
_rng = np.random.default_rng(2020)
_close = 100.0 * np.exp(np.cumsum(_rng.normal(0.0004, 0.015, len(_dates))))
_open = np.concatenate(([100.0], _close[:-1])) * (1.0 + _rng.normal(0.0, 0.003, len(_dates)))
_wick = 1.0 + np.abs(_rng.normal(0.0, 0.005, len(_dates)))
pd.DataFrame(
    {
        "open": _open,
        "high": np.maximum(_open, _close) * _wick,
        "low": np.minimum(_open, _close) / _wick,
        "close": _close,
        "volume": 5_000_000.0,
    },
    index=_dates,
).to_parquet("aapl_daily_2020_2023.parquet")


def _compute_technicals(df):
    df = df.copy()
    df["ret_5d"] = df["close"].pct_change(5)
    df["sma_20"] = df["close"].rolling(20).mean()
    return df


def _compute_ml_signals(df):
    score = 30.0 * df["ret_5d"] + 20.0 * (df["close"] / df["sma_20"] - 1.0)
    return 1.0 / (1.0 + np.exp(-score))


my_features = types.ModuleType("my_features")
my_features.compute_technicals = _compute_technicals
my_features.compute_ml_signals = _compute_ml_signals
sys.modules["my_features"] = my_features


def compute_confidence(df):
    return (df["ml_pred"] - 0.5).abs() * 2.0


# --- design doc code (verbatim except the package name ml4t.backtest -> tradeloop) ---
# fmt: off
import pandas as pd
from tradeloop import Engine, Strategy
from tradeloop.data import HistoricalFeed
from tradeloop.execution import SimulationBroker

# 1. Load historical OHLCV data
df = pd.read_parquet('aapl_daily_2020_2023.parquet')

# 2. Compute features (outside engine)
from my_features import compute_technicals, compute_ml_signals

df = compute_technicals(df)  # RSI, MACD, etc. (could use VectorBT)
df['ml_pred'] = compute_ml_signals(df)  # Your ML model
df['confidence'] = compute_confidence(df)

# 3. Define strategy
class MLStrategy(Strategy):
    def on_market_event(self, event, context):
        pred = event.signals['ml_pred']
        conf = event.signals['confidence']
        position = self.get_position(event.asset_id)

        if pred > 0.8 and conf > 0.7 and position == 0:
            self.buy_percent(event.asset_id, 0.95)
        elif position > 0:
            pnl = self.get_unrealized_pnl_pct(event.asset_id)
            if pred < 0.4 or pnl < -0.05 or pnl > 0.15:
                self.close_position(event.asset_id)

# 4. Run backtest
feed = HistoricalFeed(df, signal_columns=['ml_pred', 'confidence'])
broker = SimulationBroker(initial_cash=100000)
engine = Engine(feed, MLStrategy(), broker)

results = engine.run()
print(results.summary())
# fmt: on
