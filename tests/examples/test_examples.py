"""Every file in examples/ runs in the test suite (the seed examples have their own module)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import polars as pl
from polars.testing import assert_frame_equal

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT / "examples" / "data"


def run_example(*relative: str) -> str:
    """Run an example script with warnings as errors; return its stdout (exit 0 asserted)."""
    done = subprocess.run(
        [sys.executable, "-W", "error", str(ROOT.joinpath("examples", *relative))],
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


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


def test_integrated_top25_reference_example_runs_with_rule_attribution() -> None:
    out = run_example("integrated", "top25_ml_strategy_complete.py")
    assert "126,000 bars, 500 assets" in out
    assert "Exits by rule:" in out
    for rule in ("trailing_stop", "volatility_stop"):
        assert rule in out
    assert "VIX-filtered days: " in out


def test_integrated_top25_respects_vix_filter_and_position_cap() -> None:
    import importlib.util

    path = ROOT / "examples" / "integrated" / "top25_ml_strategy_complete.py"
    spec = importlib.util.spec_from_file_location("top25_example", path)
    assert spec is not None
    assert spec.loader is not None
    example = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(example)

    from tradeloop import Engine, PrecomputedFeatureProvider
    from tradeloop.risk import RiskManager, TimeBasedExit, VolatilityScaledStopLoss

    bars, features = example.build_data()
    provider = PrecomputedFeatureProvider(features)
    risk = RiskManager(feature_provider=provider)
    risk.add_rule(VolatilityScaledStopLoss(2.0, "atr")).add_rule(TimeBasedExit(60))
    result = Engine(
        feed=bars, strategy=example.Top25(), features=provider, risk=risk, initial_cash=1_000_000
    ).run()
    high_vix = set(
        features.filter(pl.col("asset_id").is_null() & (pl.col("vix") > example.MAX_VIX))[
            "timestamp"
        ].dt.replace_time_zone("UTC")
    )
    assert high_vix
    buys = result.orders.filter(pl.col("side") == "buy")["submitted_at"].to_list()
    assert not [t for t in buys if t in high_vix]
    assert result.equity_curve["n_positions"].max() <= example.TOP_N
    assert set(result.trades["exit_reason"].unique()) <= {
        "strategy",
        "volatility_stop",
        "time_exit",
    }


def test_declarative_and_hybrid_numba_example_trade_identically() -> None:
    stdout = run_example("declarative_and_hybrid.py")
    assert "identical fills: True" in stdout


def test_demo_act_two_paper_matches_backtest() -> None:
    stdout = run_example("paper_vs_backtest.py")
    assert "fills identical, one for one: yes" in stdout
