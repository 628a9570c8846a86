"""Every file in examples/ runs in the test suite (the seed examples have their own module)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import polars as pl
from polars.testing import assert_frame_equal

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT / "examples" / "data"


def test_bundled_sample_data_is_reproducible_from_its_script(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, str(DATA / "make_sample.py"), str(tmp_path)],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    for name in ("sample.parquet", "vix.parquet"):
        assert_frame_equal(pl.read_parquet(tmp_path / name), pl.read_parquet(DATA / name))


def test_bundled_ml_strategy_trades_and_respects_the_vix_filter() -> None:
    sys.path.insert(0, str(ROOT / "examples"))
    try:
        from ml_strategy import MLStrategy
    finally:
        sys.path.remove(str(ROOT / "examples"))
    from tradeloop import Context, Engine

    vix = pl.read_parquet(DATA / "vix.parquet")
    result = Engine(
        feed=DATA / "sample.parquet", strategy=MLStrategy(), context=Context(vix), commission=0.0005
    ).run()
    assert result["n_trades"] > 100
    high_vix = set(vix.filter(pl.col("VIX") > 30)["timestamp"].dt.replace_time_zone("UTC"))
    buys = result.orders.filter(pl.col("side") == "buy")["submitted_at"].to_list()
    assert high_vix  # the sample has risk-off days to test against
    assert not [t for t in buys if t in high_vix]
    exits = result.trades.filter(pl.col("exit_reason") == "vix_filter")
    assert exits.height > 0
