"""Step 4, the complete single-asset example: confidence sizing, context, P&L exits.

A year of one asset written to parquet, market context given as the design documents'
``{timestamp: {"VIX": ..., "regime": ...}}`` dict, entries sized by model confidence
(``size_by_confidence``) only while VIX < 30, and exits at +15 % / -5 % unrealised P&L.
Design doc 002's "Complete Working Example", verbatim except the package name.
Run: ``python examples/04_complete_example.py`` (under a second).
"""

# The design doc code is kept verbatim, so its lint findings are exempted file-wide:
# ruff: noqa: E402, I001, SIM102

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


# --- design doc code (verbatim except the package name ml4t.backtest -> tradeloop) ---
# fmt: off
"""Complete ML Strategy Example."""
import polars as pl
from datetime import datetime
from tradeloop import Engine, Strategy
from tradeloop.data import HistoricalFeed

# 1. Generate ML predictions (normally from your trained model)
data = pl.DataFrame({
    "timestamp": pl.datetime_range(
        datetime(2023, 1, 1, 9, 30),
        datetime(2023, 12, 31, 16, 0),
        interval="1d",
        eager=True,
    )[:252],
    "open": [100 + i * 0.1 for i in range(252)],
    "high": [100.5 + i * 0.1 for i in range(252)],
    "low": [99.5 + i * 0.1 for i in range(252)],
    "close": [100 + i * 0.1 for i in range(252)],
    "volume": [1_000_000] * 252,

    # ML signals (normally from your model.predict())
    "prediction": [0.6 + (i % 10) * 0.04 for i in range(252)],
    "confidence": [0.7 + (i % 5) * 0.05 for i in range(252)],
})

data.write_parquet("ml_data.parquet")

# 2. Create context data
context_data = {
    ts: {
        "VIX": 15.0 + i % 20,
        "regime": "bull" if i < 150 else "bear",
    }
    for i, ts in enumerate(data["timestamp"])
}

# 3. Define ML strategy
class MyMLStrategy(Strategy):
    def on_market_event(self, event, context=None):
        # Extract signals
        prediction = event.signals.get("prediction", 0.0)
        confidence = event.signals.get("confidence", 0.0)

        # Extract context
        vix = context.get("VIX", 0.0) if context else 0.0

        # Get position
        position = self.get_position(event.asset_id)

        # Exit logic
        if position != 0:
            pnl_pct = self.get_unrealized_pnl_pct(event.asset_id)
            if pnl_pct and pnl_pct >= 0.15:  # 15% profit
                self.close_position(event.asset_id)
                return
            if pnl_pct and pnl_pct <= -0.05:  # 5% loss
                self.close_position(event.asset_id)
                return

        # Entry logic
        if position == 0 and vix < 30:
            if prediction > 0.65 and confidence > 0.75:
                self.size_by_confidence(
                    asset_id=event.asset_id,
                    confidence=confidence,
                    max_percent=0.20,
                    price=event.close,
                )

# 4. Create data feed
feed = HistoricalFeed(
    "ml_data.parquet",
    asset_id="AAPL",
    signal_columns=["prediction", "confidence"],
)

# 5. Run backtest
engine = Engine(
    feed=feed,
    strategy=MyMLStrategy(),
    context=context_data,
    initial_cash=100_000,
)

results = engine.run()
print(f"Return: {results['total_return']:.2%}")
print(f"Final Value: ${results['final_value']:,.2f}")
# fmt: on
