"""How results show in a notebook: ``_repr_html_`` as plain HTML with an inline SVG chart.

No JavaScript and no plotly: the cell renders in Jupyter, VS Code, a static nbconvert page or
GitHub alike, and ``import tradeloop`` stays light. A backtest shows its period, the headline
metrics and a small equity (with the benchmark) and drawdown chart drawn from at most
``SPARK_POINTS`` points (each a stretch's last value); tables show their rows as an HTML table.
``result.plot()`` is the interactive plotly version (``tradeloop.results.plot``).
"""

from __future__ import annotations

import html
import math
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt
import polars as pl

from tradeloop.results.display import METRIC_LABELS, format_metric

if TYPE_CHECKING:
    from tradeloop.results.result import BacktestResult

__all__ = ["HEADLINE", "SPARK_POINTS", "picks", "result_html", "spark_svg", "table_html"]

HEADLINE = ("total_return", "cagr", "sharpe", "max_drawdown", "n_trades", "win_rate")
SPARK_POINTS = 300
_WIDTH, _EQUITY_H, _DRAWDOWN_H = 560, 120, 50
_STRATEGY, _BENCHMARK, _LOSS = "#2563eb", "#9ca3af", "#dc2626"
_STYLE = "font:13px system-ui,sans-serif;border-collapse:collapse;font-variant-numeric:tabular-nums"


def result_html(result: BacktestResult) -> str:
    """The notebook view of a backtest: title, period, headline metrics, equity and drawdown."""
    curve = result.equity_curve
    name = html.escape(str(result.config.get("strategy", "Strategy")))
    if curve.is_empty():
        return f"<div><b>{name} backtest</b>: no bars</div>"
    start, end = curve["timestamp"][0], curve["timestamp"][-1]
    cells = "".join(
        f'<td style="padding:2px 14px 2px 0"><div style="color:#6b7280;font-size:11px">'
        f"{html.escape(METRIC_LABELS[key])}</div><b>"
        f"{html.escape(format_metric(key, result.metrics.get(key, math.nan)))}</b></td>"
        for key in HEADLINE
    )
    benchmark = (
        result.benchmark_curve["equity"].to_numpy()
        if result.benchmark_curve.height == curve.height
        else None
    )
    chart = spark_svg(curve["equity"].to_numpy(), benchmark, curve["drawdown"].to_numpy())
    return (
        f'<div class="tradeloop-result"><div><b>{name} backtest</b> '
        f'<span style="color:#6b7280">{start:%Y-%m-%d %H:%M} → {end:%Y-%m-%d %H:%M} UTC · '
        f"{curve.height:,} timestamps · {result.config.get('n_assets', 0)} assets · "
        f"final value {result.final_value:,.2f}</span></div>"
        f'<table style="{_STYLE}"><tr>{cells}</tr></table>{chart}'
        '<div style="color:#9ca3af;font-size:11px">result.plot() for the interactive chart, '
        "result.report('report.html') for the full report</div></div>"
    )


def spark_svg(
    equity: npt.NDArray[np.float64],
    benchmark: npt.NDArray[np.float64] | None,
    drawdown: npt.NDArray[np.float64],
) -> str:
    """Equity (and benchmark) above, drawdown below, as one inline SVG of fixed size."""
    rows = picks(len(equity))
    lines = [(equity[rows], _STRATEGY, "Strategy")]
    if benchmark is not None and np.isfinite(benchmark).all():
        lines.append((benchmark[rows], _BENCHMARK, "Buy & hold"))
    low = min(float(values.min()) for values, _, _ in lines)
    high = max(float(values.max()) for values, _, _ in lines)
    paths = "".join(
        f'<polyline fill="none" stroke="{colour}" stroke-width="1.5" '
        f'points="{_points(values, low, high, 0, _EQUITY_H)}"><title>{label}</title></polyline>'
        for values, colour, label in reversed(lines)
    )
    deepest = min(float(drawdown.min()), -1e-12)
    under = _points(drawdown[rows], deepest, 0.0, _EQUITY_H + 8, _DRAWDOWN_H)
    top = _EQUITY_H + 8
    area = f"0,{top} {under} {_WIDTH},{top}"
    height = _EQUITY_H + 8 + _DRAWDOWN_H
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{_WIDTH}" height="{height + 14}" '
        f'viewBox="0 0 {_WIDTH} {height + 14}" role="img" aria-label="equity and drawdown">'
        f"{paths}"
        f'<polygon fill="{_LOSS}" fill-opacity="0.35" stroke="{_LOSS}" stroke-width="0.8" '
        f'points="{area}"><title>Drawdown</title></polygon>'
        f'<text x="2" y="10" font-size="10" fill="#6b7280">{high:,.0f}</text>'
        f'<text x="2" y="{_EQUITY_H - 2}" font-size="10" fill="#6b7280">{low:,.0f}</text>'
        f'<text x="2" y="{height + 12}" font-size="10" fill="#6b7280">'
        f"max drawdown {deepest:.1%}</text></svg>"
    )


def table_html(frame: pl.DataFrame, *, caption: str = "", max_rows: int = 50) -> str:
    """``frame`` as an HTML table (numbers formatted, at most ``max_rows`` rows)."""
    shown = frame.head(max_rows)
    head = "".join(
        f'<th style="padding:3px 8px;text-align:right">{html.escape(c)}</th>' for c in shown.columns
    )
    body = "".join(
        "<tr>"
        + "".join(
            f'<td style="padding:3px 8px;text-align:right">{html.escape(_cell(v))}</td>'
            for v in row
        )
        + "</tr>"
        for row in shown.iter_rows()
    )
    more = (
        f'<div style="color:#6b7280">… {frame.height - max_rows:,} more rows</div>'
        if frame.height > max_rows
        else ""
    )
    title = f"<caption style='text-align:left'>{html.escape(caption)}</caption>" if caption else ""
    return f'<table style="{_STYLE}">{title}<tr>{head}</tr>{body}</table>{more}'


def _cell(value: object) -> str:
    if isinstance(value, float):
        if math.isnan(value):
            return "n/a"
        return f"{value:,.2f}" if abs(value) >= 1_000 else f"{value:.4g}"
    if hasattr(value, "strftime"):
        return f"{value:%Y-%m-%d %H:%M}"
    return str(value)


def picks(n: int, limit: int = SPARK_POINTS) -> npt.NDArray[np.int64]:
    """At most ``limit`` of ``n`` row numbers: the last row of each equal stretch (so the
    final value is always drawn)."""
    if n <= limit:
        return np.arange(n)
    edges = np.linspace(0, n, limit + 1).astype(np.int64)[1:] - 1
    return np.unique(edges)


def _points(
    values: Sequence[float] | npt.NDArray[np.float64],
    low: float,
    high: float,
    top: float,
    height: float,
) -> str:
    span = (high - low) or 1.0
    n = max(len(values) - 1, 1)
    return " ".join(
        f"{i * _WIDTH / n:.1f},{top + (high - float(v)) / span * height:.1f}"
        for i, v in enumerate(values)
    )
