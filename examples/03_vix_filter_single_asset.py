"""Step 3, VIX-filtered single asset: market context embedded as just another signal.

For one asset the simplest way to use VIX is to join it onto the bars (``ffill`` closes the
gaps) and list it in ``signals=``: the strategy exits and stands aside when VIX > 30, and
trades its ML prediction otherwise. Prints every fill. Design doc 000's section 6 Example 1,
verbatim except the package name, with stand-ins for its data and model.
Run: ``python examples/03_vix_filter_single_asset.py`` (under a second).
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
# Writes the two parquet files the design doc reads (ten business days; VIX skips 2024-01-10,
# so its left join leaves a gap that its ffill() closes) and defines my_model, a stand-in for a
# trained model that returns a fixed prediction per bar. Values are chosen to check by hand.
from tradeloop.extras import require

require("pandas", "this example")  # pip users: it names the extra, tradeloop[pandas]

import pandas as pd

_dates = pd.date_range("2024-01-02", periods=10, freq="B")
_opens = [99.5, 101.0, 103.0, 102.0, 99.0, 99.0, 102.0, 104.0, 104.5, 105.0]
_closes = [100.0, 102.0, 104.0, 101.0, 98.0, 100.0, 103.0, 105.0, 104.0, 106.0]
pd.DataFrame(
    {
        "open": _opens,
        "high": [max(o, c) + 1.0 for o, c in zip(_opens, _closes, strict=True)],
        "low": [min(o, c) - 1.0 for o, c in zip(_opens, _closes, strict=True)],
        "close": _closes,
        "volume": [2_000_000.0] * 10,
    },
    index=_dates,
).to_parquet("aapl_daily.parquet")
_vix = pd.Series([18.0, 19.0, 22.0, 35.0, 33.0, 25.0, 999.0, 19.0, 18.0, 17.0], index=_dates)
_vix.drop(pd.Timestamp("2024-01-10")).to_frame("close").to_parquet("vix_daily.parquet")


class _StandInModel:
    predictions = (0.85, 0.60, 0.90, 0.90, 0.90, 0.85, 0.70, 0.30, 0.82, 0.50)

    def predict(self, frame):
        return list(self.predictions[: len(frame)])


my_model = _StandInModel()


# --- design doc code (verbatim except the package name ml4t.backtest -> tradeloop) ---
# fmt: off
import pandas as pd
from tradeloop import Engine, Strategy
from tradeloop.data import HistoricalFeed

# Load AAPL data
aapl = pd.read_parquet('aapl_daily.parquet')

# Add ML predictions
aapl['ml_pred'] = my_model.predict(aapl)

# Add VIX context (simple join)
vix = pd.read_parquet('vix_daily.parquet')['close'].rename('VIX')
aapl = aapl.join(vix, how='left').ffill()

# Strategy
class VIXFilteredMLStrategy(Strategy):
    def on_market_event(self, event, context):
        pred = event.signals['ml_pred']
        vix = event.signals['VIX']  # VIX is just another signal

        position = self.get_position(event.asset_id)

        # VIX filter
        if vix > 30:
            if position > 0:
                self.close_position(event.asset_id)  # Exit in high vol
            return  # Don't enter new positions

        # ML logic
        if pred > 0.8 and position == 0:
            self.buy_percent(event.asset_id, 0.95)
        elif pred < 0.4 and position > 0:
            self.close_position(event.asset_id)

# Run
feed = HistoricalFeed(aapl, signal_columns=['ml_pred', 'VIX'])
engine = Engine(feed=feed, strategy=VIXFilteredMLStrategy())
results = engine.run()
# fmt: on


# --- report (not part of the design doc) ---
print(f"Return: {results['total_return']:.2%}")
print(f"Final value: {results['final_value']:,.2f}")
for fill in results.fills.iter_rows(named=True):
    print(f"fill {fill['timestamp']:%Y-%m-%d} {fill['side']} {fill['qty']:g} @ {fill['price']:.2f}")
