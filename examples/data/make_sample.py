"""Regenerate the bundled sample data: examples/data/sample.parquet and vix.parquet.

Five synthetic assets, two years of daily bars with ``ml_pred``/``confidence`` signals, and a
VIX-like context series (see ``tradeloop.data.synthetic``). Run:
``python examples/data/make_sample.py [OUTPUT_DIR]`` (default: this folder).
"""

import sys
from pathlib import Path

from tradeloop.data.synthetic import synthetic_market

if __name__ == "__main__":
    out = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).parent
    bars, vix = synthetic_market(n_assets=5, n_bars=504, seed=7)
    bars.write_parquet(out / "sample.parquet")
    vix.write_parquet(out / "vix.parquet")
    print(f"wrote {bars.height} bars and {vix.height} VIX rows to {out}")
