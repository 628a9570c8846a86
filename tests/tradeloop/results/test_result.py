"""BacktestResult's exports, and its metrics against an independent library on those exports."""

from __future__ import annotations

from pathlib import Path

import empyrical
import pandas as pd
import polars as pl
import pytest

from tradeloop import BacktestResult


def test_returns_series_is_the_daily_returns_on_a_date_index(
    sample_result: BacktestResult,
) -> None:
    series = sample_result.returns_series()
    daily = sample_result.daily_returns
    assert isinstance(series.index, pd.DatetimeIndex)
    assert series.index.tz is None
    assert [t.date() for t in series.index] == daily["date"].to_list()
    assert series.tolist() == daily["return"].to_list()
    # the first return is measured from the initial cash
    assert series.iloc[0] == pytest.approx(daily["equity"][0] / sample_result["initial_cash"] - 1)


def test_metrics_agree_with_empyrical_on_the_exported_returns(
    sample_result: BacktestResult,
) -> None:
    returns = sample_result.returns_series()
    curve = sample_result.equity_curve
    assert curve.height == len(returns)  # one bar a day: per-bar and daily drawdowns coincide
    # tradeloop's CAGR counts calendar years between the first and last bar; empyrical counts
    # len(returns) / annualization years. Give empyrical the same year count.
    years = (curve["timestamp"][-1] - curve["timestamp"][0]).total_seconds() / 86_400 / 365.25
    per_calendar_year = len(returns) / years
    expected = {
        "sharpe": empyrical.sharpe_ratio(returns, annualization=252),
        "sortino": empyrical.sortino_ratio(returns, annualization=252),
        "annual_volatility": empyrical.annual_volatility(returns, annualization=252),
        "max_drawdown": empyrical.max_drawdown(returns),
        "cagr": empyrical.annual_return(returns, annualization=per_calendar_year),
        "calmar": empyrical.calmar_ratio(returns, annualization=per_calendar_year),
        "total_return": empyrical.cum_returns_final(returns),
    }
    for name, value in expected.items():
        assert sample_result[name] == pytest.approx(value, rel=1e-9), name


def test_to_parquet_writes_the_benchmark_curve(
    sample_result: BacktestResult, tmp_path: Path
) -> None:
    sample_result.to_parquet(tmp_path)
    written = pl.read_parquet(tmp_path / "benchmark_curve.parquet")
    assert written.equals(sample_result.benchmark_curve)
