"""Notebook display: ``_repr_html_`` of a backtest (metrics + an SVG chart, no script),
``result.plot()`` as a plotly figure of the run's own numbers, walk-forward windows as a table."""

from __future__ import annotations

import re
from typing import Any

import numpy as np
import plotly.graph_objects as go
import pytest

from tests.tradeloop.research.factories import BARS, GRID, VIX, Threshold
from tradeloop import BacktestResult, walk_forward
from tradeloop.errors import ConfigError
from tradeloop.results.display import format_metric
from tradeloop.results.notebook import HEADLINE, SPARK_POINTS, spark_svg, table_html


def values(array: Any) -> list[Any]:
    if isinstance(array, dict) and "bdata" in array:
        import base64

        return np.frombuffer(base64.b64decode(array["bdata"]), dtype=array["dtype"]).tolist()
    return list(array)


def test_repr_html_shows_headline_metrics_and_an_inline_chart(
    sample_result: BacktestResult,
) -> None:
    page = sample_result._repr_html_()
    for key in HEADLINE:
        assert format_metric(key, sample_result[key]) in page
    assert "<script" not in page
    assert page.count("<svg") == 1
    (strategy,) = re.findall(r'stroke="#2563eb"[^>]*points="([^"]+)"', page)
    assert len(strategy.split()) == min(SPARK_POINTS, sample_result.equity_curve.height)


def test_spark_svg_scales_equity_and_drawdown_by_hand() -> None:
    equity = np.array([100.0, 120.0, 110.0])
    drawdown = np.array([0.0, 0.0, 110.0 / 120.0 - 1.0])
    svg = spark_svg(equity, None, drawdown)
    (line,) = re.findall(r'<polyline[^>]*points="([^"]+)"', svg)
    # x: 0, 280, 560 over a 560-wide box; y: (120 - v) / 20 × 120 px tall
    assert line == "0.0,120.0 280.0,0.0 560.0,60.0"
    (area,) = re.findall(r'<polygon[^>]*points="([^"]+)"', svg)
    # drawdown band from y=128 (0 %) to 178 (the deepest, -8.3 %): 128 + (0 - d) / 0.0833 × 50
    assert area == "0,128 0.0,128.0 280.0,128.0 560.0,178.0 560,128"
    assert "max drawdown -8.3%" in svg


def test_spark_svg_of_a_long_run_draws_at_most_spark_points() -> None:
    equity = np.linspace(100.0, 200.0, 10_000)
    svg = spark_svg(equity, equity * 0.9, np.zeros(10_000))
    lines = re.findall(r'<polyline[^>]*points="([^"]+)"', svg)
    assert [len(points.split()) for points in lines] == [SPARK_POINTS, SPARK_POINTS]
    assert lines[1].split()[-1] == "560.0,0.0"  # the last point (the highest) is kept


def test_plot_returns_a_figure_of_equity_over_drawdown(sample_result: BacktestResult) -> None:
    figure = sample_result.plot()
    assert isinstance(figure, go.Figure)
    names = [trace.name for trace in figure.data]
    assert names[0] == "Strategy"
    equity = figure.data[0]
    assert values(figure.to_plotly_json()["data"][0]["y"]) == (
        sample_result.equity_curve["equity"].to_list()
    )
    drawdown = [t for t in figure.data if t.yaxis == "y2"]
    assert (
        values(drawdown[0].to_plotly_json()["y"])
        == sample_result.equity_curve["drawdown"].to_list()
    )
    assert equity.yaxis == "y"


def test_plot_picks_one_report_chart_by_name(sample_result: BacktestResult) -> None:
    trades = sample_result.plot("trades")
    assert trades.data[1].name == "entry"
    with pytest.raises(ConfigError, match="no such chart"):
        sample_result.plot("candles")


def test_walk_forward_displays_its_windows_as_a_table() -> None:
    result = walk_forward(
        Threshold, GRID, BARS, train=60, test=30, context=VIX, executor="inline", progress=False
    )
    page = result._repr_html_()
    assert f"out-of-sample total return {result.total_return:.2%}" in page
    assert page.count("<tr>") == 1 + result.windows.height
    assert "test_sharpe" in page


def test_table_html_says_how_many_rows_it_left_out() -> None:
    import polars as pl

    page = table_html(pl.DataFrame({"a": range(60)}), max_rows=50)
    assert page.count("<tr>") == 51
    assert "… 10 more rows" in page
