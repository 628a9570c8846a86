"""The HTML report of a backtest: one self-contained file of plotly charts, metrics and config.

It works offline: plotly.js is embedded in the page and nothing is loaded from the network.
Each chart is its own figure in a ``<div id=...>`` keyed as in ``CHARTS``. Imported only when
a report is asked for, so ``import tradeloop`` never pays for plotly.
"""

from __future__ import annotations

import html
import json
import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt
import polars as pl

from tradeloop.extras import missing_extra
from tradeloop.results.benchmark import rescaled_benchmark
from tradeloop.results.display import METRIC_LABELS, format_metric
from tradeloop.results.metrics import compute_metrics
from tradeloop.results.page import PAGE_CSS
from tradeloop.results.trade_chart import trades_figure

try:
    import plotly.graph_objects as go
    from plotly.offline import get_plotlyjs
except ImportError as err:  # plotly is the optional 'report' extra
    raise missing_extra("plotly", "the HTML report") from err

if TYPE_CHECKING:
    from tradeloop.results.result import BacktestResult

__all__ = ["CHARTS", "report_figures", "write_report"]

CHARTS = {
    "equity": "Equity vs benchmark",
    "trades": "Trades on the price (pick the asset)",
    "drawdown": "Drawdown (underwater)",
    "monthly_returns": "Monthly returns",
    "rolling_sharpe": "Rolling Sharpe ratio",
    "trade_pnl": "Trade P&L distribution",
    "exits": "Exits by rule",
    "exposure": "Exposure",
}
_WIDE = {"equity", "trades", "drawdown", "exposure"}
# Above this many timestamps the line charts plot each UTC day's last one: a minute-bar run
# would otherwise make a report of hundreds of megabytes that no browser draws smoothly.
MAX_CHART_POINTS = 10_000

_STRATEGY, _BENCHMARK, _GAIN, _LOSS = "#2563eb", "#9ca3af", "#16a34a", "#dc2626"
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
_BENCHMARK_METRICS = (
    "final_value",
    "total_return",
    "cagr",
    "annual_volatility",
    "sharpe",
    "sortino",
    "max_drawdown",
    "max_drawdown_duration_days",
    "calmar",
)
_PLOT_CONFIG = {"displaylogo": False, "responsive": True}

_Benchmark = tuple[str, npt.NDArray[np.float64]]  # label, equity on the equity curve's rows


def write_report(
    result: BacktestResult,
    path: str | Path,
    *,
    benchmark: Any = None,
    rolling_window_days: int = 126,
) -> Path:
    """Write ``result``'s report to ``path`` as one HTML file; return the path."""
    compared = _benchmark(result, benchmark)
    figures = _figures(result, compared, rolling_window_days)
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(_page(result, figures, compared), encoding="utf-8")
    return out


def report_figures(
    result: BacktestResult, *, benchmark: Any = None, rolling_window_days: int = 126
) -> dict[str, go.Figure]:
    """The report's charts as plotly figures keyed as in ``CHARTS`` (e.g. for a notebook)."""
    return _figures(result, _benchmark(result, benchmark), rolling_window_days)


def _benchmark(result: BacktestResult, series: Any) -> _Benchmark | None:
    curve = result.equity_curve
    if series is not None:
        ts_ns = curve["timestamp"].dt.epoch("ns").to_numpy()
        return "Benchmark", rescaled_benchmark(series, ts_ns, result.metrics["initial_cash"])
    if result.benchmark_curve.height != curve.height:
        return None
    n_assets = result.config.get("n_assets")
    label = f"Buy & hold, equal weight ({n_assets} assets)" if n_assets else "Buy & hold"
    return label, result.benchmark_curve["equity"].to_numpy()


def _figures(
    result: BacktestResult, compared: _Benchmark | None, window: int
) -> dict[str, go.Figure]:
    rows = result.equity_curve.with_columns(pl.col("timestamp").dt.replace_time_zone(None))
    if compared is not None:
        rows = rows.with_columns(benchmark=compared[1])
    if rows.height > MAX_CHART_POINTS:
        day = pl.col("timestamp").dt.date()
        rows = rows.filter((day != day.shift(-1)).fill_null(True))
    periods_per_year = float(result.config.get("periods_per_year", 252.0))
    figures = {
        "equity": _equity(rows, compared, result.metrics["initial_cash"]),
        "trades": trades_figure(result.prices, result.trades),
        "drawdown": _drawdown(rows),
        "monthly_returns": _monthly_returns(result.daily_returns),
        "rolling_sharpe": _rolling_sharpe(result.daily_returns, window, periods_per_year),
        "trade_pnl": _trade_pnl(result.trades),
        "exits": _exits(result.trades),
        "exposure": _exposure(rows),
    }
    for figure in figures.values():
        figure.update_layout(
            template="plotly_white",
            font={"family": "system-ui, -apple-system, Segoe UI, sans-serif", "size": 12},
            margin={"l": 64, "r": 24, "t": 76 if figure.layout.updatemenus else 36, "b": 40},
            legend={"orientation": "h", "x": 0, "y": 1.02, "yanchor": "bottom"},
        )
        figure.layout.height = figure.layout.height or 340
    return figures


def _equity(rows: pl.DataFrame, compared: _Benchmark | None, initial_cash: float) -> go.Figure:
    figure = go.Figure()
    figure.add_scatter(
        x=rows["timestamp"], y=rows["equity"], name="Strategy", line={"color": _STRATEGY}
    )
    if compared is not None:
        figure.add_scatter(
            x=rows["timestamp"],
            y=rows["benchmark"],
            name=compared[0],
            line={"color": _BENCHMARK, "width": 1.5},
        )
    figure.add_hline(y=initial_cash, line={"color": "#d1d5db", "width": 1, "dash": "dot"})
    figure.update_layout(height=420, hovermode="x unified", yaxis_title="Equity")
    return figure


def _drawdown(rows: pl.DataFrame) -> go.Figure:
    figure = go.Figure()
    figure.add_scatter(
        x=rows["timestamp"],
        y=rows["drawdown"],
        name="Strategy",
        fill="tozeroy",
        line={"color": _LOSS, "width": 1},
    )
    if "benchmark" in rows.columns:
        bench = rows["benchmark"].to_numpy()
        if np.isfinite(bench).all():
            peaks = np.maximum.accumulate(bench)
            figure.add_scatter(
                x=rows["timestamp"],
                y=bench / peaks - 1.0,
                name="Benchmark",
                line={"color": _BENCHMARK, "width": 1},
            )
    figure.update_layout(hovermode="x unified", yaxis={"tickformat": ".0%", "title": "Drawdown"})
    return figure


def _monthly_returns(daily: pl.DataFrame) -> go.Figure:
    monthly = (
        daily.group_by(year=pl.col("date").dt.year(), month=pl.col("date").dt.month())
        .agg(((pl.col("return") + 1.0).product() - 1.0).alias("return"))
        .sort("year", "month")
    )
    years = monthly["year"].unique(maintain_order=True).to_list()
    grid: list[list[float | None]] = [[None] * 12 for _ in years]
    for year, month, value in monthly.iter_rows():
        grid[years.index(year)][month - 1] = value
    text = [["" if v is None else f"{v:+.1%}" for v in row] for row in grid]
    figure = go.Figure(
        go.Heatmap(
            z=grid,
            x=list(_MONTHS),
            y=[str(y) for y in years],
            text=text,
            texttemplate="%{text}",
            colorscale="RdYlGn",
            zmid=0.0,
            xgap=2,
            ygap=2,
            colorbar={"tickformat": ".0%", "thickness": 12},
            hovertemplate="%{x} %{y}: %{z:.2%}<extra></extra>",
        )
    )
    figure.update_layout(height=max(340, 90 + 34 * len(years)), yaxis={"autorange": "reversed"})
    return figure


def _rolling_sharpe(daily: pl.DataFrame, window: int, periods_per_year: float) -> go.Figure:
    returns = pl.col("return")
    spread = returns.rolling_std(window, ddof=1)
    sharpe = pl.when(spread > 0).then(returns.rolling_mean(window) / spread)
    rolled = daily.select("date", (sharpe * math.sqrt(periods_per_year)).alias("sharpe"))
    rolled = rolled.slice(window - 1) if daily.height >= window else rolled.clear()
    figure = go.Figure()
    figure.add_scatter(
        x=rolled["date"], y=rolled["sharpe"], name=f"{window}-day", line={"color": _STRATEGY}
    )
    figure.add_hline(y=0.0, line={"color": "#9ca3af", "width": 1})
    if rolled.is_empty():
        _note(figure, f"needs {window} daily returns; this run has {daily.height}")
    figure.update_layout(yaxis_title=f"Sharpe, {window} days, annualised")
    return figure


def _exposure(rows: pl.DataFrame) -> go.Figure:
    figure = go.Figure()
    most = int(rows["n_positions"].max() or 0)  # type: ignore[arg-type]
    step = max(1, math.ceil(most / 8))  # whole positions only: ticks 0, 1, 2 … (or 0, 5, 10 …)
    figure.add_scatter(
        x=rows["timestamp"],
        y=rows["gross_exposure"] / rows["equity"],
        name="Gross exposure / equity",
        fill="tozeroy",
        line={"color": _STRATEGY, "width": 1},
    )
    figure.add_scatter(
        x=rows["timestamp"],
        y=rows["n_positions"],
        name="Positions held",
        yaxis="y2",
        line={"color": "#f59e0b", "width": 1, "shape": "hv"},
        opacity=0.8,
    )
    figure.update_layout(
        hovermode="x unified",
        yaxis={"tickformat": ".0%", "title": "Gross exposure", "rangemode": "tozero"},
        yaxis2={
            "overlaying": "y",
            "side": "right",
            "title": "Positions",
            "showgrid": False,
            "rangemode": "tozero",
            "tickformat": "d",
            "tick0": 0,
            "dtick": step,
            "range": [0, max(1, most) * 1.05],
        },
    )
    return figure


def _trade_pnl(trades: pl.DataFrame) -> go.Figure:
    figure = go.Figure()
    pnl = trades["pnl"].to_numpy()
    if not len(pnl):
        _note(figure, "no closed trades")
        return figure
    low, high = float(pnl.min()), float(pnl.max())
    size = (high - low) / 40 or abs(high) or 1.0
    # Bin edges on multiples of the bin width put 0 on an edge: no bin holds winners and losers.
    bins = {"start": math.floor(low / size) * size, "end": high + size, "size": size}
    for name, mask, color in (
        ("Winners", pnl > 0, _GAIN),
        ("Losers", pnl <= 0, _LOSS),
    ):
        figure.add_histogram(x=pnl[mask], name=name, xbins=bins, marker_color=color)
    figure.add_vline(x=0.0, line={"color": "#6b7280", "width": 1})
    figure.update_layout(
        barmode="overlay", bargap=0.05, xaxis_title="P&L per trade", yaxis_title="Trades"
    )
    return figure


def _exits(trades: pl.DataFrame) -> go.Figure:
    figure = go.Figure()
    if trades.is_empty():
        _note(figure, "no closed trades")
        return figure
    by_rule = (
        trades.group_by(pl.col("exit_reason").fill_null("(none)"))
        .agg(
            pl.len().alias("trades"),
            pl.col("pnl").sum().alias("pnl"),
            (pl.col("pnl") > 0).mean().alias("win_rate"),
        )
        .sort("trades", "exit_reason", descending=[True, False])
    )
    figure.add_bar(
        x=by_rule["trades"],
        y=by_rule["exit_reason"],
        orientation="h",
        marker_color=[_GAIN if p >= 0 else _LOSS for p in by_rule["pnl"]],
        text=[f"{n} · P&L {p:+,.0f}" for n, p in by_rule.select("trades", "pnl").iter_rows()],
        textposition="auto",
        customdata=by_rule.select("pnl", "win_rate").to_numpy(),
        hovertemplate="%{y}: %{x} trades, P&L %{customdata[0]:,.2f}, "
        "win rate %{customdata[1]:.0%}<extra></extra>",
        name="Exits",
    )
    figure.update_layout(
        height=max(340, 80 + 36 * by_rule.height),
        yaxis={"autorange": "reversed"},
        xaxis_title="Trades closed (bar colour: net P&L)",
        showlegend=False,
    )
    return figure


def _note(figure: go.Figure, text: str) -> None:
    figure.add_annotation(text=text, showarrow=False, x=0.5, y=0.5, xref="paper", yref="paper")


def _page(
    result: BacktestResult, figures: dict[str, go.Figure], compared: _Benchmark | None
) -> str:
    curve, config = result.equity_curve, result.config
    start, end = curve["timestamp"][0], curve["timestamp"][-1]
    title = f"{config.get('strategy', 'Strategy')} backtest"
    subtitle = (
        f"{start:%Y-%m-%d %H:%M} → {end:%Y-%m-%d %H:%M} UTC · {curve.height:,} timestamps · "
        f"{config.get('n_bars', 0):,} bars · {config.get('n_assets', 0)} assets"
    )
    cards = "".join(
        f'<div class="card"><span>{METRIC_LABELS[key]}</span>'
        f"<b>{format_metric(key, result.metrics.get(key, math.nan))}</b></div>"
        for key in ("total_return", "cagr", "sharpe", "max_drawdown", "n_trades", "win_rate")
    )
    charts = "".join(
        f'<section class="panel{" wide" if key in _WIDE else ""}">'
        f"<h2>{html.escape(CHARTS[key])}</h2>"
        + figure.to_html(full_html=False, include_plotlyjs=False, div_id=key, config=_PLOT_CONFIG)
        + "</section>"
        for key, figure in figures.items()
    )
    tables = (
        f'<section class="panel"><h2>Metrics</h2>{_metrics_table(result, compared)}</section>'
        f'<section class="panel"><h2>Run config</h2>{_config_table(config)}</section>'
    )
    return _TEMPLATE.format(
        css=PAGE_CSS,
        title=html.escape(title),
        subtitle=html.escape(subtitle),
        plotly_js=get_plotlyjs(),
        cards=cards,
        body=charts + tables,
    )


def _metrics_table(result: BacktestResult, compared: _Benchmark | None) -> str:
    bench: dict[str, float] = {}
    if compared is not None and np.isfinite(compared[1]).all():
        bench = _benchmark_metrics(result, compared[1])
    head = "<tr><th></th><th>Strategy</th>" + ("<th>Benchmark</th>" if bench else "") + "</tr>"
    rows = []
    for key, label in METRIC_LABELS.items():
        mine = format_metric(key, result.metrics.get(key, math.nan))
        theirs = format_metric(key, bench[key]) if key in bench else ""
        cells = f"<td>{mine}</td>" + (f"<td>{theirs}</td>" if bench else "")
        rows.append(f"<tr><th>{html.escape(label)}</th>{cells}</tr>")
    return f'<table id="metrics">{head}{"".join(rows)}</table>'


def _benchmark_metrics(result: BacktestResult, equity: npt.NDArray[np.float64]) -> dict[str, float]:
    """The return-based metrics of the benchmark, by the same formulas as the strategy's."""
    metrics = compute_metrics(
        ts_ns=result.equity_curve["timestamp"].dt.epoch("ns").to_numpy(),
        equity=equity,
        gross_exposure=equity,
        positions=np.ones(len(equity), dtype=np.int64),
        initial_cash=result.metrics["initial_cash"],
        trades=pl.DataFrame(schema={"pnl": pl.Float64}),
        traded_notional=0.0,
        commission=0.0,
        periods_per_year=float(result.config.get("periods_per_year", 252.0)),
    )
    return {key: metrics[key] for key in _BENCHMARK_METRICS}


def _config_table(config: dict[str, Any]) -> str:
    rows = []
    for key, value in config.items():
        if isinstance(value, float):
            shown = f"{value:.6g}"
        elif isinstance(value, str):
            shown = value
        else:
            shown = json.dumps(value, default=str)
        rows.append(f"<tr><th>{html.escape(key)}</th><td>{html.escape(shown)}</td></tr>")
    return f'<table id="config">{"".join(rows)}</table>'


_TEMPLATE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title}</title>
<style>
{css}
  .cards {{ display: grid; grid-template-columns: repeat(auto-fit, minmax(140px, 1fr));
            gap: 12px; padding: 16px 32px; }}
  .card {{ background: #fff; border-radius: 8px; padding: 12px 16px;
           box-shadow: 0 1px 2px rgb(0 0 0 / 6%); }}
  .card span {{ display: block; color: #6b7280; font-size: 12px; }}
  .card b {{ font-size: 20px; font-variant-numeric: tabular-nums; }}
  main {{ padding-top: 0; }}
  th:first-child {{ text-align: left; font-weight: normal; color: #374151; }}
  #config td {{ text-align: left; word-break: break-word; }}
  footer {{ padding: 0 32px 24px; color: #9ca3af; font-size: 12px; }}
</style>
<script type="text/javascript">{plotly_js}</script>
</head>
<body>
<header><h1>{title}</h1><p class="subtitle">{subtitle}</p></header>
<div class="cards">{cards}</div>
<main>{body}</main>
<footer>Made by tradeloop. Self-contained: the chart library is embedded, so this file opens
offline.</footer>
</body>
</html>
"""
