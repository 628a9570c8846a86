"""``result.plot()``: the run as an interactive plotly figure, for a notebook.

The overview stacks the report's equity chart (strategy against the benchmark) over its
drawdown chart on one shared time axis; ``chart=`` picks any single chart of the report
instead (``"trades"``, ``"monthly_returns"``, … as in ``report.CHARTS``). The traces are the
report's own, so the figure and the HTML report never disagree.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from tradeloop.errors import ConfigError
from tradeloop.extras import missing_extra
from tradeloop.results.report import CHARTS, report_figures

try:
    from plotly.subplots import make_subplots
except ImportError as err:  # plotly is the optional 'report' extra
    raise missing_extra("plotly", "result.plot()") from err

if TYPE_CHECKING:
    import plotly.graph_objects as go

    from tradeloop.results.result import BacktestResult

__all__ = ["plot_result"]


def plot_result(
    result: BacktestResult, chart: str = "overview", *, benchmark: Any = None
) -> go.Figure:
    """The overview figure (equity over drawdown), or the report chart named ``chart``."""
    if chart != "overview" and chart not in CHARTS:
        raise ConfigError(
            f"plot(chart={chart!r}): no such chart; pick 'overview' or one of {list(CHARTS)}"
        )
    figures = report_figures(result, benchmark=benchmark)
    if chart != "overview":
        return figures[chart]
    figure = make_subplots(
        rows=2, cols=1, shared_xaxes=True, row_heights=[0.7, 0.3], vertical_spacing=0.04
    )
    for trace in figures["equity"].data:
        figure.add_trace(trace, row=1, col=1)
    for trace in figures["drawdown"].data:
        figure.add_trace(trace.update(showlegend=False), row=2, col=1)
    name = result.config.get("strategy", "Strategy")
    figure.update_layout(
        height=560,
        template="plotly_white",
        hovermode="x unified",
        title={"text": f"{name}: total return {result.total_return:.2%}", "x": 0.01},
        legend={"orientation": "h", "x": 0, "y": 1.0, "yanchor": "bottom"},
        margin={"l": 64, "r": 24, "t": 64, "b": 40},
    )
    figure.update_yaxes(title_text="Equity", row=1, col=1)
    figure.update_yaxes(title_text="Drawdown", tickformat=".0%", row=2, col=1)
    return figure
