"""The sweep report: one self-contained HTML page to read a parameter sweep (and a walk-forward).

- a heatmap of any metric over any two parameters, the others aggregated (mean, max or min
  over their values) or fixed at a chosen value: picked in the page, computed there from the
  embedded table, so every combination is one click away;
- the top rows by that metric, as a table; clicking a row or a heatmap cell draws the equity
  curve of each run in it (curves come from ``sweep(..., keep_equity=True)``, at most
  ``CURVE_POINTS`` points each, each stretch's last value);
- with a walk-forward: each window's out-of-sample metrics, the test return per window and the
  stitched out-of-sample equity curve, in the same page.

Offline like the backtest report: plotly.js and the data are in the file. Needs plotly.
"""

from __future__ import annotations

import html
import json
import math
from importlib.resources import files
from pathlib import Path
from typing import TYPE_CHECKING, Any

import polars as pl

from tradeloop.errors import ConfigError
from tradeloop.extras import missing_extra
from tradeloop.results.display import METRIC_LABELS
from tradeloop.results.notebook import picks, table_html
from tradeloop.results.page import PAGE_CSS

try:
    import plotly.graph_objects as go
    from plotly.offline import get_plotlyjs
except ImportError as err:  # plotly is the optional 'report' extra
    raise missing_extra("plotly", "the sweep report") from err

if TYPE_CHECKING:
    from tradeloop.research.walkforward import WalkForwardResult

__all__ = ["CURVE_POINTS", "TOP_ROWS", "sweep_data", "write_sweep_report"]

CURVE_POINTS = 1_000
TOP_ROWS = 10
_WHEN = "%Y-%m-%d %H:%M"


def write_sweep_report(
    table: pl.DataFrame,
    path: str | Path,
    params: list[str],
    *,
    metric: str = "sharpe",
    walk_forward: WalkForwardResult | None = None,
    title: str = "Parameter sweep",
) -> Path:
    """Write the page for ``table`` (one row per run: ``params``, then metrics) to ``path``."""
    data = sweep_data(table, params, metric)
    sections = [_SWEEP_SECTION]
    if walk_forward is not None:
        sections.append(_walk_forward_section(walk_forward))
    script = files("tradeloop.results").joinpath("sweep_page.js").read_text(encoding="utf-8")
    page = _TEMPLATE.format(
        css=PAGE_CSS,
        title=html.escape(title),
        subtitle=html.escape(
            f"{table.height} runs over {', '.join(params)}; pick a metric and two parameters"
        ),
        plotly_js=get_plotlyjs(),
        data=json.dumps(data, allow_nan=False).replace("</", "<\\/"),
        body="".join(sections),
        script=script,
    )
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(page, encoding="utf-8")
    return out


def sweep_data(table: pl.DataFrame, params: list[str], metric: str) -> dict[str, Any]:
    """What the page embeds: parameters, metric names and labels, rows, thinned curves."""
    missing = [name for name in params if name not in table.columns]
    if missing or not params:
        raise ConfigError(
            f"sweep report: parameter column(s) {missing or params} not in the table "
            f"(columns: {', '.join(table.columns)})"
        )
    metrics = [
        name
        for name, dtype in table.schema.items()
        if name not in params and name != "equity_curve" and dtype.is_numeric()
    ]
    if metric not in metrics:
        raise ConfigError(f"sweep report: no metric {metric!r}; metrics: {', '.join(metrics)}")
    rows = [
        {name: _plain(row[name]) for name in (*params, *metrics)}
        for row in table.iter_rows(named=True)
    ]
    curves: list[Any] = [None] * table.height
    if "equity_curve" in table.columns:
        for i, curve in enumerate(table["equity_curve"].to_list()):
            keep = picks(len(curve), CURVE_POINTS)
            curves[i] = [
                [f"{curve[k]['timestamp']:{_WHEN}}" for k in keep],
                [curve[k]["equity"] for k in keep],
            ]
    return {
        "params": params,
        "metrics": metrics,
        "labels": {m: METRIC_LABELS.get(m, m) for m in metrics},
        "rows": rows,
        "curves": curves,
        "metric": metric,
        "top": TOP_ROWS,
    }


def _plain(value: Any) -> Any:
    """A JSON value: NaN and infinities become null (the page shows n/a)."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _walk_forward_section(result: WalkForwardResult) -> str:
    windows = result.windows
    curve = result.equity_curve
    stitched = go.Figure()
    for window in curve["window"].unique(maintain_order=True).to_list():
        part = curve.filter(pl.col("window") == window)
        stitched.add_scatter(
            x=part["timestamp"].dt.replace_time_zone(None),
            y=part["equity"],
            name=f"window {window}",
            line={"width": 1.5},
        )
    stitched.update_layout(
        height=380,
        template="plotly_white",
        yaxis_title="Out-of-sample equity",
        hovermode="x unified",
        margin={"l": 64, "r": 24, "t": 24, "b": 40},
    )
    returns = go.Figure(
        go.Bar(
            x=[f"window {w}" for w in windows["window"].to_list()],
            y=windows["test_return"],
            marker_color=["#16a34a" if r >= 0 else "#dc2626" for r in windows["test_return"]],
            hovertemplate="%{x}: %{y:.2%}<extra></extra>",
        )
    )
    returns.update_layout(
        height=300,
        template="plotly_white",
        yaxis={"tickformat": ".1%", "title": "Test return"},
        margin={"l": 64, "r": 24, "t": 24, "b": 40},
    )
    shown = windows.drop("train_start", "train_end")
    config = {"displaylogo": False, "responsive": True}
    return str(
        '<section class="panel wide"><h2>Walk-forward: out of sample</h2>'
        f'<p class="note">picked by {html.escape(result.metric)} on each train window; '
        f"stitched out-of-sample total return <b>{result.total_return:.2%}</b></p>"
        + stitched.to_html(
            full_html=False, include_plotlyjs=False, div_id="wf_equity", config=config
        )
        + returns.to_html(
            full_html=False, include_plotlyjs=False, div_id="wf_returns", config=config
        )
        + f'<div id="wf_windows" class="scroll">{table_html(shown, max_rows=1_000)}</div>'
        + "</section>"
    )


_SWEEP_SECTION = """
<section class="panel wide">
  <h2>Heatmap</h2>
  <div class="controls">
    <label>metric <select id="metric"></select></label>
    <label>x <select id="x"></select></label>
    <label>y <select id="y"></select></label>
    <label>other parameters <select id="agg">
      <option value="mean">mean</option><option value="max">max</option>
      <option value="min">min</option><option value="fixed">fixed at</option>
    </select></label>
    <span id="fixed"></span>
  </div>
  <div id="heatmap"></div>
</section>
<section class="panel"><h2 id="top-title">Top runs</h2><table id="top"></table></section>
<section class="panel" id="curves-panel"><h2>Equity of the selected runs</h2><div id="curves"></div>
  <p class="note" id="curves-note">click a row or a heatmap cell</p></section>
"""

_TEMPLATE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title}</title>
<style>
{css}
  .controls {{ display: flex; flex-wrap: wrap; gap: 12px; margin-bottom: 8px; }}
  .scroll {{ overflow-x: auto; }}
  #top tr[data-row] {{ cursor: pointer; }}
  #top tr.picked {{ background: #dbeafe; }}
</style>
<script type="text/javascript">{plotly_js}</script>
</head>
<body>
<header><h1>{title}</h1><p class="subtitle">{subtitle}</p></header>
<main>{body}</main>
<script type="application/json" id="sweep-data">{data}</script>
<script type="text/javascript">{script}</script>
</body>
</html>
"""
