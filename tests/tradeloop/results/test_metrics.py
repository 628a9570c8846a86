"""Metrics against formulas computed independently in the test (statistics module, brute force)."""

from __future__ import annotations

import math
import statistics
from datetime import UTC, datetime, timedelta

import numpy as np
import polars as pl
import pytest

from tradeloop.results.metrics import compute_metrics, daily_returns

T0 = datetime(2024, 1, 1, 21, tzinfo=UTC)


def ns(days: list[float]) -> np.ndarray:
    return np.array([int((T0 + timedelta(days=d)).timestamp() * 1e9) for d in days], dtype=np.int64)


def trades(pnl: list[float]) -> pl.DataFrame:
    return pl.DataFrame({"pnl": pnl}, schema={"pnl": pl.Float64})


def test_daily_returns_take_last_equity_per_date_from_initial_cash() -> None:
    # two bars on day 0 (21:00 and 22:00), one each on days 1 and 2
    frame = daily_returns(ns([0, 1 / 24, 1, 2]), np.array([101.0, 102.0, 96.9, 106.59]), 100.0)
    assert frame["equity"].to_list() == [102.0, 96.9, 106.59]
    assert frame["return"].to_list() == pytest.approx([0.02, -0.05, 0.1])


def test_metrics_match_independent_formulas() -> None:
    equity = np.array([100.0, 110.0, 99.0, 104.0, 121.0, 115.0])
    times = ns([0, 1, 2, 3, 4, 5])
    metrics = compute_metrics(
        ts_ns=times,
        equity=equity,
        gross_exposure=np.array([0, 50, 50, 0, 60, 60.0]),
        positions=np.array([0, 1, 1, 0, 1, 1]),
        initial_cash=100.0,
        trades=trades([10.0, -4.0, 6.0]),
        traded_notional=600.0,
        commission=1.5,
    )
    returns = [e / p - 1 for e, p in zip(equity, [100.0, *equity[:-1]], strict=True)]
    mean, stdev = statistics.fmean(returns), statistics.stdev(returns)
    downside = math.sqrt(sum(min(r, 0.0) ** 2 for r in returns) / len(returns))
    years = 5 / 365.25
    cagr = 1.15 ** (1 / years) - 1
    # brute-force drawdown: worst drop from any earlier peak
    worst = min(equity[j] / max([100.0, *equity[: j + 1]]) - 1 for j in range(len(equity)))
    assert metrics["total_return"] == pytest.approx(0.15)
    assert metrics["sharpe"] == pytest.approx(mean / stdev * math.sqrt(252))
    assert metrics["sortino"] == pytest.approx(mean / downside * math.sqrt(252))
    assert metrics["annual_volatility"] == pytest.approx(stdev * math.sqrt(252))
    assert metrics["cagr"] == pytest.approx(cagr)
    assert metrics["max_drawdown"] == pytest.approx(worst) == pytest.approx(-0.1)
    # under water from the day-1 peak (110) through day 3 (104 < 110): 2 days
    assert metrics["max_drawdown_duration_days"] == pytest.approx(2.0)
    assert metrics["calmar"] == pytest.approx(cagr / 0.1)
    assert metrics["win_rate"] == pytest.approx(2 / 3)
    assert metrics["profit_factor"] == pytest.approx(16 / 4)
    assert metrics["avg_trade_pnl"] == pytest.approx(4.0)
    assert metrics["exposure_time"] == pytest.approx(4 / 6)
    assert metrics["avg_gross_exposure"] == pytest.approx(
        np.mean([0, 50 / 110, 50 / 99, 0, 60 / 121, 60 / 115])
    )
    assert metrics["turnover"] == pytest.approx(600.0 / np.mean(equity) / years)
    assert metrics["commission"] == 1.5


def test_metrics_without_trades_or_variance_are_nan_not_errors() -> None:
    metrics = compute_metrics(
        ts_ns=ns([0, 1]),
        equity=np.array([100.0, 100.0]),
        gross_exposure=np.zeros(2),
        positions=np.zeros(2, dtype=np.int64),
        initial_cash=100.0,
        trades=trades([]),
        traded_notional=0.0,
        commission=0.0,
    )
    for key in ("sharpe", "sortino", "win_rate", "profit_factor", "calmar"):
        assert math.isnan(metrics[key]), key
    assert metrics["max_drawdown"] == 0.0
