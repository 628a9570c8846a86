"""Walk-forward: window bounds by hand, and a whole walk-forward redone by hand with Engine.

The reference slices the bars with ``HistoricalFeed(start=, end=)`` (not the workers' own
slicing), scores every combination on each train window itself, picks the best by hand and
chains the test runs' cash itself.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import polars as pl
import pytest
from polars.testing import assert_frame_equal

from tests.tradeloop.research.factories import BARS, GRID, VIX, Threshold
from tradeloop import Context, Engine, HistoricalFeed, walk_forward
from tradeloop.errors import ConfigError
from tradeloop.research import Window, expand_grid, rolling_windows
from tradeloop.research.walkforward import OUT_OF_SAMPLE_METRICS

DAY_NS = 86_400 * 1_000_000_000
T0 = 1_700_000_000 * 1_000_000_000


def days(*offsets: int) -> np.ndarray:
    return np.array([T0 + d * DAY_NS for d in offsets], dtype=np.int64)


def test_rolling_windows_by_count_tile_the_data_and_cut_the_last_test_short() -> None:
    ts = days(*range(11))
    d = ts.tolist()
    assert rolling_windows(ts, train=4, test=2) == [
        Window(0, d[0], d[3], d[4], d[5]),
        Window(1, d[2], d[5], d[6], d[7]),
        Window(2, d[4], d[7], d[8], d[9]),
        Window(3, d[6], d[9], d[10], d[10]),  # only one timestamp left to test on
    ]
    assert rolling_windows(ts, train=4, test=2, step=3) == [
        Window(0, d[0], d[3], d[4], d[5]),
        Window(1, d[3], d[6], d[7], d[8]),
        Window(2, d[6], d[9], d[10], d[10]),
    ]
    assert rolling_windows(ts, train=11, test=2) == []


def test_rolling_windows_by_span_skip_a_window_that_falls_in_a_gap() -> None:
    ts = days(0, 1, 2, 3, 4, 7, 8, 9, 10, 11)  # no bars on days 5 and 6
    d = {offset: T0 + offset * DAY_NS for offset in range(12)}
    # anchors every 2 days from day 0: train [a, a+3d), test [a+3d, a+5d)
    assert rolling_windows(ts, timedelta(days=3), timedelta(days=2)) == [
        Window(0, d[0], d[2], d[3], d[4]),
        # anchor day 2: its test period, days 5-6, has no bars: skipped
        Window(1, d[4], d[4], d[7], d[8]),
        Window(2, d[7], d[8], d[9], d[10]),
        Window(3, d[8], d[10], d[11], d[11]),
    ]


@pytest.mark.parametrize(
    ("train", "test", "step", "message"),
    [
        (4, 2, 1, "would overlap"),
        (4, timedelta(days=2), None, "all be counts"),
        (0, 2, None, ">= 1"),
        (timedelta(0), timedelta(days=1), None, "positive"),
    ],
)
def test_rolling_windows_bad_lengths_raise_config_error(
    train: Any, test: Any, step: Any, message: str
) -> None:
    with pytest.raises(ConfigError, match=message):
        rolling_windows(days(*range(10)), train, test, step)


def _run(params: dict[str, Any], start: datetime, end: datetime, cash: float) -> Any:
    feed = HistoricalFeed(BARS, start=start, end=end)
    strategy = Threshold(**params)
    return Engine(
        feed=feed, strategy=strategy, context=Context(VIX), initial_cash=cash, commission=0.001
    ).run()


def by_hand(train: int, test: int, metric: str, maximize: bool) -> dict[str, Any]:
    """The walk-forward redone from scratch: windows, picks, chained test runs."""
    stamps = BARS["timestamp"].unique().sort().to_list()
    combinations = expand_grid(GRID)
    picks, curves, cash = [], [], 25_000.0
    for first in range(0, len(stamps) - train, test):
        train_stamps = stamps[first : first + train]
        test_stamps = stamps[first + train : first + train + test]
        scores = [
            _run(params, train_stamps[0], train_stamps[-1], 25_000.0)[metric]
            for params in combinations
        ]
        signed = [s if maximize else -s for s in scores]
        best = max(
            (i for i in range(len(scores)) if not math.isnan(signed[i])),
            key=lambda i: (signed[i], -i),
        )
        result = _run(combinations[best], test_stamps[0], test_stamps[-1], cash)
        picks.append(
            (test_stamps[0], test_stamps[-1], combinations[best], scores[best], cash, result)
        )
        curves.append(result.equity_curve.select("timestamp", "equity"))
        cash = result["final_value"]
    return {"picks": picks, "curves": curves}


@pytest.mark.parametrize(
    ("metric", "maximize", "executor"),
    [("sharpe", True, "local"), ("total_return", False, "inline")],
)
def test_walk_forward_equals_the_walk_forward_done_by_hand(
    metric: str, maximize: bool, executor: str
) -> None:
    result = walk_forward(
        Threshold,
        GRID,
        BARS,
        train=60,
        test=30,
        metric=metric,
        maximize=maximize,
        context=VIX,
        executor=executor,
        progress=False,
        initial_cash=25_000.0,
        commission=0.001,
    )
    expected = by_hand(60, 30, metric, maximize)
    windows = result.windows
    assert windows.height == len(expected["picks"]) == 4  # starts 0, 30, 60, 90 of 160
    for row, (test_start, test_end, params, score, cash, tested) in zip(
        windows.iter_rows(named=True), expected["picks"], strict=True
    ):
        assert (row["test_start"], row["test_end"]) == (
            test_start.replace(tzinfo=UTC),
            test_end.replace(tzinfo=UTC),
        )
        assert {name: row[name] for name in GRID} == params
        assert row[f"train_{metric}"] == score
        assert row["start_equity"] == cash
        for name in (metric, *OUT_OF_SAMPLE_METRICS):  # each window's own out-of-sample run
            assert row[f"test_{name}"] == pytest.approx(tested[name], nan_ok=True), name
    assert len({tuple(p[2].values()) for p in expected["picks"]}) > 1  # the choice varies
    stitched = pl.concat(expected["curves"])
    assert_frame_equal(result.equity_curve.drop("window"), stitched, check_exact=True)
    assert result.train.height == 4 * 6


def test_walk_forward_stitched_equity_compounds_across_windows() -> None:
    result = walk_forward(
        Threshold, GRID, BARS, train=60, test=30, context=VIX, executor="inline", progress=False
    )
    curve, windows = result.equity_curve, result.windows
    firsts = curve.group_by("window", maintain_order=True).first()["equity"].to_list()
    lasts = curve.group_by("window", maintain_order=True).last()["equity"].to_list()
    # a test window opens flat with the previous window's closing equity as its cash
    assert firsts == [100_000.0, *lasts[:-1]]
    assert windows["start_equity"].to_list() == firsts
    assert windows["end_equity"].to_list() == lasts
    assert curve["timestamp"].is_sorted()
    assert curve["timestamp"].n_unique() == curve.height
    growth = math.prod(1.0 + r for r in windows["test_return"].to_list())
    assert result.total_return == pytest.approx(growth - 1.0, rel=1e-12)
    assert result.total_return == pytest.approx(lasts[-1] / 100_000.0 - 1.0, rel=1e-12)


BUILT: list[dict[str, Any]] = []


class Counted(Threshold):
    """Threshold, noting every construction (a run started)."""

    def __init__(self, **params: Any) -> None:
        BUILT.append(params)
        super().__init__(**params)


def test_walk_forward_unknown_metric_and_too_little_data_raise_config_error() -> None:
    with pytest.raises(ConfigError, match=r"no metric 'sharp'; metrics are: .*sharpe"):
        walk_forward(Counted, GRID, BARS, train=100, test=60, metric="sharp", executor="inline")
    assert BUILT == []  # refused before any train run
    with pytest.raises(ConfigError, match="no walk-forward window fits"):
        walk_forward(Threshold, GRID, BARS, train=160, test=10, executor="inline")
