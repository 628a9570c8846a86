"""examples/ml_setup.py (the setup the deploy configs name): its model and its decisions,
recomputed by hand from the sample, and the same setup through every way of running it."""

from __future__ import annotations

import math

import polars as pl

from tests.examples.running import DATA, EXAMPLES
from tradeloop import Engine
from tradeloop.plugins import load_setup

SETUP = f"{EXAMPLES / 'ml_setup.py'}:setup"


def test_ml_setup_model_scores_where_the_close_sits_in_the_range() -> None:
    setup = load_setup(SETUP)
    model = setup.features
    assert model is not None
    bar = {"open": 10.0, "high": 12.0, "low": 8.0, "close": 11.0, "volume": 1.0}
    assert model.get_features("X", None, bar) == {"model_score": 0.75}  # type: ignore[attr-defined,arg-type]
    flat = {**bar, "high": 10.0, "low": 10.0, "close": 10.0}
    assert model.get_features("X", None, flat) == {"model_score": 0.5}  # type: ignore[attr-defined,arg-type]


def test_ml_setup_entries_follow_strong_bars_and_exits_weak_bars_or_the_stop() -> None:
    """Every strategy buy was decided on a bar closing in the top fifth of its range while
    flat; every signal exit on one in the bottom fifth; the stop sells 5 % under the entry."""
    bars = pl.read_parquet(DATA / "sample.parquet")
    result = Engine(bars, load_setup(SETUP)).run()
    score = bars.select(
        "asset_id",
        pl.col("timestamp").dt.replace_time_zone("UTC").alias("ts"),
        ((pl.col("close") - pl.col("low")) / (pl.col("high") - pl.col("low"))).alias("score"),
    )
    scores = {(r["asset_id"], r["ts"]): r["score"] for r in score.iter_rows(named=True)}
    orders = result.orders.filter(pl.col("reason").is_in(["strategy", "signal_exit"]))
    for order in orders.iter_rows(named=True):
        value = scores[(order["asset_id"], order["submitted_at"])]
        if order["side"] == "buy":
            assert value > 0.8, order
        else:
            assert value < 0.2, order
    stops = result.fills.filter(pl.col("reason") == "stop_loss")
    trades = result.trades.filter(pl.col("exit_reason") == "stop_loss")
    assert stops.height > 0
    for trade in trades.iter_rows(named=True):
        assert trade["exit_price"] <= trade["entry_price"] * 0.95 + 1e-9
    assert math.isclose(result.config["periods_per_year"], 252.0)
    assert result.config["commission"] == "PercentCommission(rate=0.0005)"
    assert result.config["risk_rules"] == ["stop_loss"]
    assert result.config["risk_guards"] == ["max_position_size"]
