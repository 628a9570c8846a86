"""Trades on the price: each traded asset's close with its entries and its exits by reason.

One plotly figure; a dropdown picks the asset (the most-traded first, at most ``MAX_ASSETS``).
Entries are upward triangles at the entry fill's price; exits are downward triangles at the
exit fill's price, one colour (and legend entry) per ``exit_reason``. A long series is drawn at
each UTC day's last close (``MAX_CHART_POINTS``); the markers keep their exact time and price.
"""

from __future__ import annotations

import polars as pl

from tradeloop.extras import missing_extra

try:
    import plotly.graph_objects as go
except ImportError as err:  # plotly is the optional 'report' extra
    raise missing_extra("plotly", "the trade chart") from err

__all__ = ["MAX_ASSETS", "MAX_CHART_POINTS", "trades_figure"]

MAX_ASSETS = 30
MAX_CHART_POINTS = 10_000
_PRICE, _ENTRY = "#374151", "#16a34a"
_EXIT_COLOURS = ("#dc2626", "#f59e0b", "#7c3aed", "#0891b2", "#db2777", "#65a30d", "#92400e")


def trades_figure(prices: pl.DataFrame, trades: pl.DataFrame) -> go.Figure:
    """The figure: traces per asset (close, entries, one per exit reason), one visible."""
    figure = go.Figure()
    assets = _assets(prices, trades)
    if not assets:
        figure.add_annotation(
            text="no trades", showarrow=False, x=0.5, y=0.5, xref="paper", yref="paper"
        )
        return figure
    reasons = sorted(trades["exit_reason"].fill_null("(none)").unique().to_list())
    colours = {r: _EXIT_COLOURS[i % len(_EXIT_COLOURS)] for i, r in enumerate(reasons)}
    owner: list[str] = []
    for asset in assets:
        first = asset == assets[0]
        closes = _thinned(prices.filter(pl.col("asset_id") == asset))
        mine = trades.filter(pl.col("asset_id") == asset).with_columns(
            pl.col("exit_reason").fill_null("(none)")
        )
        figure.add_scatter(
            x=_naive(closes["timestamp"]),
            y=closes["close"],
            name=f"{asset} close",
            line={"color": _PRICE, "width": 1},
            visible=first,
            hovertemplate="%{x}: %{y:,.4g}<extra></extra>",
        )
        figure.add_scatter(
            x=_naive(mine["entry_time"]),
            y=mine["entry_price"],
            name="entry",
            mode="markers",
            marker={"symbol": "triangle-up", "size": 9, "color": _ENTRY},
            customdata=mine.select("direction", "qty").rows(),
            hovertemplate="entry %{customdata[0]} %{customdata[1]:g} at %{y:,.4g}<extra></extra>",
            visible=first,
        )
        owner += [asset, asset]
        for reason in reasons:
            exits = mine.filter(pl.col("exit_reason") == reason)
            figure.add_scatter(
                x=_naive(exits["exit_time"]),
                y=exits["exit_price"],
                name=f"exit: {reason}",
                mode="markers",
                marker={"symbol": "triangle-down", "size": 9, "color": colours[reason]},
                customdata=exits.select("pnl").to_series().to_list(),
                hovertemplate=f"exit ({reason}) at %{{y:,.4g}}, P&L %{{customdata:+,.2f}}"
                "<extra></extra>",
                visible=first,
            )
            owner.append(asset)
    buttons = [
        {
            "label": f"{asset} ({trades.filter(pl.col('asset_id') == asset).height} trades)",
            "method": "update",
            "args": [{"visible": [o == asset for o in owner]}],
        }
        for asset in assets
    ]
    figure.update_layout(
        height=420,
        hovermode="closest",
        yaxis_title="Close",
        updatemenus=[
            {
                "buttons": buttons,
                "x": 1.0,
                "y": 1.2,
                "xanchor": "right",
                "yanchor": "bottom",
                "showactive": True,
            }
        ],
    )
    return figure


def _assets(prices: pl.DataFrame, trades: pl.DataFrame) -> list[str]:
    """Traded assets with prices, most trades first (ties by name), at most MAX_ASSETS."""
    if trades.is_empty():
        return []
    counts = (
        trades.group_by("asset_id")
        .len()
        .filter(pl.col("asset_id").is_in(prices["asset_id"].unique().implode()))
        .sort(["len", "asset_id"], descending=[True, False])
    )
    return counts["asset_id"].head(MAX_ASSETS).to_list()


def _thinned(closes: pl.DataFrame) -> pl.DataFrame:
    if closes.height <= MAX_CHART_POINTS:
        return closes
    day = pl.col("timestamp").dt.date()
    return closes.filter((day != day.shift(-1)).fill_null(True))


def _naive(times: pl.Series) -> pl.Series:
    return times.dt.replace_time_zone(None)
