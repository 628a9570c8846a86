"""The report's chart data against the run, recomputed here by brute force; the page itself.

The browser test (test_report_browser.py) checks that Chromium draws what these tests check.
"""

from __future__ import annotations

import base64
import math
import re
import statistics
import subprocess
import sys
from collections import Counter, defaultdict
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import polars as pl
import pytest

from tests.conftest import Scripted, bars
from tradeloop import BacktestResult, Engine, MarketEvent, Strategy
from tradeloop.results import report
from tradeloop.results.report import CHARTS, report_figures


class BuyOnce(Strategy):
    def on_market_event(self, event: MarketEvent, context: Mapping[str, Any]) -> None:
        if not self.get_open_orders() and self.get_position(event.asset_id) == 0:
            self.buy(event.asset_id, 10)


def values(array: Any) -> list[Any]:
    """A trace's array as plain values, whether plotly wrote a list or a base64 typed array."""
    if isinstance(array, dict) and "bdata" in array:
        return np.frombuffer(base64.b64decode(array["bdata"]), dtype=array["dtype"]).tolist()
    return list(array)


def traces(figure: Any) -> list[dict[str, Any]]:
    return list(figure.to_plotly_json()["data"])


@pytest.fixture(scope="module")
def figures(sample_result: BacktestResult) -> dict[str, Any]:
    return report_figures(sample_result)


def test_report_figures_are_the_listed_charts(figures: dict[str, Any]) -> None:
    assert list(figures) == list(CHARTS)


def test_equity_chart_plots_the_equity_curve_and_the_buy_and_hold(
    sample_result: BacktestResult, figures: dict[str, Any]
) -> None:
    strategy, benchmark = traces(figures["equity"])
    assert values(strategy["y"]) == sample_result.equity_curve["equity"].to_list()
    assert values(benchmark["y"]) == sample_result.benchmark_curve["equity"].to_list()
    assert len(strategy["x"]) == len(benchmark["x"]) == sample_result.equity_curve.height


def test_user_benchmark_replaces_buy_and_hold_scaled_to_initial_cash(
    sample_result: BacktestResult,
) -> None:
    times = sample_result.equity_curve["timestamp"].to_list()
    index = pd.DatetimeIndex(times)
    prices = pd.Series(np.linspace(50.0, 75.0, len(times)), index=index)
    _, benchmark = traces(report_figures(sample_result, benchmark=prices)["equity"])
    cash = sample_result["initial_cash"]
    assert benchmark["name"] == "Benchmark"
    assert values(benchmark["y"]) == pytest.approx((prices / 50.0 * cash).tolist())


def test_monthly_heatmap_compounds_each_months_daily_returns(
    sample_result: BacktestResult, figures: dict[str, Any]
) -> None:
    (heatmap,) = traces(figures["monthly_returns"])
    growth: dict[tuple[int, int], float] = defaultdict(lambda: 1.0)
    for date, ret in sample_result.daily_returns.select("date", "return").iter_rows():
        growth[(date.year, date.month)] *= 1.0 + ret
    years = sorted({year for year, _ in growth})
    assert heatmap["y"] == [str(y) for y in years]
    for row, year in zip(heatmap["z"], years, strict=True):
        expected = [growth[(year, m)] - 1.0 if (year, m) in growth else None for m in range(1, 13)]
        assert row == pytest.approx(expected)


def test_rolling_sharpe_is_each_windows_sharpe(sample_result: BacktestResult) -> None:
    window = 60
    (line,) = traces(report_figures(sample_result, rolling_window_days=window)["rolling_sharpe"])
    returns = sample_result.daily_returns["return"].to_list()
    expected = [
        statistics.fmean(returns[i - window : i])
        / statistics.stdev(returns[i - window : i])
        * math.sqrt(252)
        for i in range(window, len(returns) + 1)
    ]
    assert values(line["y"]) == pytest.approx(expected)
    assert values(line["x"])[0] == sample_result.daily_returns["date"][window - 1]


def test_rolling_sharpe_longer_than_the_run_says_so_instead_of_failing(
    sample_result: BacktestResult,
) -> None:
    figure = report_figures(sample_result, rolling_window_days=10_000)["rolling_sharpe"]
    (line,) = traces(figure)
    assert values(line["y"]) == []
    assert "needs 10000 daily returns" in figure.layout.annotations[0].text


def test_trade_charts_account_for_every_trade(
    sample_result: BacktestResult, figures: dict[str, Any]
) -> None:
    winners, losers = traces(figures["trade_pnl"])
    pnl = sample_result.trades["pnl"].to_list()
    assert sorted(values(winners["x"])) == sorted(p for p in pnl if p > 0)
    assert sorted(values(losers["x"])) == sorted(p for p in pnl if p <= 0)

    (bar,) = traces(figures["exits"])
    counts = Counter(sample_result.trades["exit_reason"].to_list())
    assert dict(zip(bar["y"], values(bar["x"]), strict=True)) == counts
    assert {"stop_loss", "time_exit", "signal_exit"} <= set(counts)  # the rules that fired


def test_exposure_chart_is_gross_exposure_over_equity(
    sample_result: BacktestResult, figures: dict[str, Any]
) -> None:
    exposure, held = traces(figures["exposure"])
    curve = sample_result.equity_curve
    assert values(exposure["y"]) == pytest.approx(
        (curve["gross_exposure"] / curve["equity"]).to_list()
    )
    assert values(held["y"]) == curve["n_positions"].to_list()


def test_long_runs_plot_each_days_last_point(monkeypatch: pytest.MonkeyPatch) -> None:
    start = datetime(2024, 1, 1, tzinfo=UTC)
    hours = [start + timedelta(hours=h) for h in range(72)]
    close = [100.0 + h for h in range(72)]
    frame = pl.DataFrame(
        {"timestamp": hours, "open": close, "high": close, "low": close, "close": close}
    )
    result = Engine(feed=frame.with_columns(asset_id=pl.lit("SPY")), strategy=BuyOnce()).run()
    monkeypatch.setattr(report, "MAX_CHART_POINTS", 50)
    strategy, _ = traces(report_figures(result)["equity"])
    last_of_day = result.equity_curve.filter(pl.col("timestamp").dt.hour() == 23)
    assert values(strategy["y"]) == last_of_day["equity"].to_list()
    assert len(values(strategy["y"])) == 3


def test_report_is_one_self_contained_html_file(
    sample_result: BacktestResult, tmp_path: Path
) -> None:
    path = sample_result.report(tmp_path / "out" / "report.html")
    page = path.read_text(encoding="utf-8")
    assert path == tmp_path / "out" / "report.html"
    for key in CHARTS:
        assert f'id="{key}"' in page
    # nothing fetched: no external script, stylesheet, image or font, and plotly.js is inline
    assert not re.search(r"<(script|link|img)\b[^>]*\b(src|href)=", page)
    assert "@import" not in page
    assert "url(" not in page.split("<script", 1)[0]
    assert page.count("Plotly.newPlot") == len(CHARTS)
    assert len(page) > 1_000_000  # the plotly.js bundle is in the file
    assert f"<td>{sample_result['total_return']:.2%}</td>" in page
    assert "<th>fill_timing</th><td>next_open</td>" in page


def test_report_of_a_run_without_trades_shows_empty_charts(tmp_path: Path) -> None:
    rows = [(i, "A", 10 + i, 10 + i, 10 + i, 10 + i) for i in range(5)]
    result = Engine(feed=bars(rows), strategy=Scripted({})).run()
    figures = report_figures(result)
    assert traces(figures["trade_pnl"]) == traces(figures["exits"]) == []
    assert figures["exits"].layout.annotations[0].text == "no closed trades"
    assert result.report(tmp_path / "flat.html").stat().st_size > 0


def test_import_tradeloop_stays_free_of_plotly_and_pandas() -> None:
    code = "import sys, tradeloop; print(sorted({'plotly', 'pandas'} & set(sys.modules)))"
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert out.stdout.strip() == "[]"


def test_report_without_plotly_names_the_extra_to_install(
    sample_result: BacktestResult, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "plotly", None)  # None in sys.modules: import fails
    monkeypatch.setitem(sys.modules, "plotly.graph_objects", None)
    monkeypatch.delitem(sys.modules, "tradeloop.results.report")
    with pytest.raises(ImportError, match=r"pip install 'tradeloop\[report\]'"):
        sample_result.report(tmp_path / "report.html")


def test_trades_chart_marks_each_trade_at_its_entry_and_exit(
    sample_result: BacktestResult, figures: dict[str, Any]
) -> None:
    data = traces(figures["trades"])
    trades = sample_result.trades.with_columns(pl.col("exit_reason").fill_null("(none)"))
    reasons = sorted(trades["exit_reason"].unique().to_list())
    marked_entries = [t for t in data if t["name"] == "entry"]
    marked_exits = Counter(
        t["name"].removeprefix("exit: ")
        for t in data
        for _ in values(t.get("y", []))
        if t["name"].startswith("exit: ")
    )
    assert sum(len(values(t["y"])) for t in marked_entries) == trades.height
    assert marked_exits == Counter(trades["exit_reason"].to_list())
    assert [t["name"] for t in data[: 2 + len(reasons)]] == [
        "AAA close" if data[0]["name"] == "AAA close" else data[0]["name"],
        "entry",
        *[f"exit: {r}" for r in reasons],
    ]


def test_trades_chart_of_a_run_without_trades_says_so() -> None:
    rows = [(i, "A", 10 + i, 10 + i, 10 + i, 10 + i) for i in range(5)]
    result = Engine(feed=bars(rows), strategy=Scripted({})).run()
    figure = report_figures(result)["trades"]
    assert traces(figure) == []
    assert figure.layout.annotations[0].text == "no trades"


def test_result_prices_are_the_closes_of_traded_assets_only() -> None:
    rows = [(i, a, 10 + i, 11 + i, 9 + i, 10.5 + i) for i in range(4) for a in ("A", "B")]
    script = {(0, "A"): lambda s, e: s.buy("A", 5)}
    result = Engine(feed=bars(rows), strategy=Scripted(script)).run()
    assert result.prices["asset_id"].to_list() == ["A"] * 4
    assert result.prices["close"].to_list() == [10.5, 11.5, 12.5, 13.5]


def test_exposure_positions_axis_has_whole_number_ticks(figures: dict[str, Any]) -> None:
    axis = figures["exposure"].layout.yaxis2
    assert axis.tick0 == 0
    assert axis.dtick == 1  # the sample holds at most 5 positions: ticks 0, 1, … 5
    assert axis.tickformat == "d"


def test_summary_labels_say_gross_or_net_and_durations_read_in_days(
    sample_result: BacktestResult,
) -> None:
    text = sample_result.summary()
    assert "Realized P&L (before commission)" in text
    assert "Avg trade P&L (net of commission)" in text
    days = round(sample_result["max_drawdown_duration_days"])
    assert re.search(rf"Max drawdown duration\s+{days:,} days\n", text)
    assert isinstance(sample_result["n_trades"], int)
    assert f'"n_trades": {sample_result.trades.height},' in sample_result.to_json()
