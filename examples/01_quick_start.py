"""Step 1, quick start: ML predictions as signals, a strategy of helper calls, one backtest.

Writes a few bars with ``prediction``/``confidence`` columns to parquet, reads them with
``HistoricalFeed(path, signal_columns=...)``, buys 10 % of equity on a confident prediction and
closes on a weak one, and prints the return. Design doc 002's "Quick Start" steps 1-4,
verbatim except the package name (ml4t.backtest -> tradeloop) and the data it elides.
Run: ``python examples/01_quick_start.py`` (under a second).
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
# The design doc elides its columns with "...": here each "..." is "*name" of one of these lists.
# Eight daily bars; every value is chosen so the run can be checked by hand (see the test).
from datetime import datetime, timedelta

timestamps = [datetime(2024, 1, 2) + timedelta(days=i) for i in range(8)]
opens = [99.0, 101.0, 103.5, 103.0, 104.0, 106.5, 106.0, 107.0]
closes = [100.0, 102.0, 104.0, 103.0, 105.0, 107.0, 106.0, 108.0]
highs = [max(o, c) + 1.0 for o, c in zip(opens, closes, strict=True)]
lows = [min(o, c) - 1.0 for o, c in zip(opens, closes, strict=True)]
volumes = [1_000_000.0] * 8
prediction_tail = [0.50, 0.25, 0.60, 0.75, 0.40]
confidence_tail = [0.70, 0.90, 0.50, 0.95, 0.80]


# --- design doc code (verbatim except the package name ml4t.backtest -> tradeloop) ---
# fmt: off
import polars as pl

# Your ML predictions (pre-computed)
data = pl.DataFrame({
    "timestamp": [*timestamps],
    "open": [*opens],
    "high": [*highs],
    "low": [*lows],
    "close": [*closes],
    "volume": [*volumes],
    "prediction": [0.72, 0.45, 0.89, *prediction_tail],  # ML signal: prob of up move
    "confidence": [0.85, 0.60, 0.92, *confidence_tail],  # Model confidence
})

data.write_parquet("ml_data.parquet")

from tradeloop.data import HistoricalFeed

feed = HistoricalFeed(
    "ml_data.parquet",
    asset_id="AAPL",
    signal_columns=["prediction", "confidence"],  # Extract as signals
)

from tradeloop import Strategy

class MLStrategy(Strategy):
    def on_market_event(self, event, context=None):
        # Access ML signals
        prediction = event.signals["prediction"]
        confidence = event.signals["confidence"]

        # Simple logic with helper methods
        if prediction > 0.7 and confidence > 0.8:
            self.buy_percent(event.asset_id, percent=0.10, price=event.close)
        elif prediction < 0.3:
            self.close_position(event.asset_id)

from tradeloop import Engine

engine = Engine(
    feed=feed,
    strategy=MLStrategy(),
    initial_cash=100_000,
)

results = engine.run()
print(f"Return: {results['total_return']:.2%}")
# fmt: on


# --- report (not part of the design doc) ---
print(f"Final value: {results['final_value']:,.2f}")
print(f"Fills: {results.fills.height}")
