"""``tradeloop backtest --param/--start/--end``: the same numbers as the Engine given the same."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import polars as pl
import pytest

from tests.examples.running import load_example
from tests.tradeloop.test_cli import SAMPLE, STRATEGY, VIX
from tradeloop import Context, Engine
from tradeloop.cli import main
from tradeloop.data import HistoricalFeed


@pytest.fixture(scope="module")
def ml_strategy() -> type:
    strategy: type = load_example("ml_strategy.py").MLStrategy
    return strategy


def backtest_json(capsys: pytest.CaptureFixture[str], *flags: str) -> dict[str, float]:
    args = ["backtest", "--data", str(SAMPLE), "--strategy", STRATEGY, "--context", str(VIX)]
    assert main([*args, "--json", "--no-progress", *flags]) == 0
    metrics: dict[str, float] = json.loads(capsys.readouterr().out)["metrics"]
    return metrics


def test_backtest_param_reaches_the_strategy_constructor(
    capsys: pytest.CaptureFixture[str], ml_strategy: type
) -> None:
    got = backtest_json(capsys, "--param", "entry=0.8", "--param", "max_vix=25")
    context = Context(pl.read_parquet(VIX))
    direct = Engine(feed=SAMPLE, strategy=ml_strategy(entry=0.8, max_vix=25), context=context)
    expected = direct.run()
    default = Engine(feed=SAMPLE, strategy=ml_strategy(), context=context).run()
    assert got["final_value"] == pytest.approx(expected["final_value"], abs=1e-6)
    assert got["n_trades"] == expected["n_trades"] != default["n_trades"]


def test_backtest_start_and_end_clip_the_replay(
    capsys: pytest.CaptureFixture[str], ml_strategy: type
) -> None:
    got = backtest_json(capsys, "--start", "2022-06-01", "--end", "2022-12-31")
    feed = HistoricalFeed(
        SAMPLE,
        start=datetime(2022, 6, 1, tzinfo=UTC),
        end=datetime(2022, 12, 31, tzinfo=UTC),
    )
    expected = Engine(feed=feed, strategy=ml_strategy(), context=Context(pl.read_parquet(VIX)))
    result = expected.run()
    assert got["final_value"] == pytest.approx(result["final_value"], abs=1e-6)
    times = result.equity_curve["timestamp"]
    assert times.min() >= datetime(2022, 6, 1, tzinfo=UTC)  # type: ignore[operator]
    assert times.max() <= datetime(2022, 12, 31, tzinfo=UTC)  # type: ignore[operator]


def test_backtest_unknown_param_names_what_the_strategy_takes(
    capsys: pytest.CaptureFixture[str],
) -> None:
    args = ["backtest", "--data", str(SAMPLE), "--strategy", STRATEGY, "--param", "entyr=0.8"]
    assert main(args) == 1
    err = capsys.readouterr().err
    assert "does not take ['entyr']" in err
    assert "entry, exit, max_vix" in err


def test_backtest_bad_date_says_the_format(capsys: pytest.CaptureFixture[str]) -> None:
    args = ["backtest", "--data", str(SAMPLE), "--strategy", STRATEGY, "--start", "June"]
    assert main(args) == 1
    assert "--start 'June' is not a date" in capsys.readouterr().err
