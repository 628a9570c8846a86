"""Regenerate the bundled sample data: examples/data/sample.parquet and vix.parquet.

Five synthetic assets, two years of daily bars with ``ml_pred``/``confidence`` signals, and a
VIX-like context series. Run: ``python examples/data/make_sample.py``.
"""

from pathlib import Path

from tradeloop.data.synthetic import synthetic_market

HERE = Path(__file__).parent

if __name__ == "__main__":
    bars, vix = synthetic_market(n_assets=5, n_bars=504, seed=7)
    bars.write_parquet(HERE / "sample.parquet")
    vix.write_parquet(HERE / "vix.parquet")
    print(f"wrote {bars.height} bars and {vix.height} VIX rows to {HERE}")
