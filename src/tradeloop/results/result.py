"""BacktestResult: what a run produced, as polars frames and a metrics mapping.

``result["total_return"]`` reads a metric; ``result.equity_curve``, ``result.fills``,
``result.orders`` and ``result.trades`` are polars frames; ``result.summary()`` is the
readable report and ``result.report(path)`` the HTML one; ``to_parquet``/``to_json`` write it
all out and ``returns_series()`` hands the daily returns to pandas-based analysis tools.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import polars as pl

from tradeloop.extras import require
from tradeloop.results.display import METRIC_LABELS, format_metric
from tradeloop.results.prices import PRICE_SCHEMA

if TYPE_CHECKING:
    import pandas as pd
    import plotly.graph_objects as go

__all__ = ["FRAMES", "BacktestResult"]

_STATUS_LABELS = {"accepted": "open at end", "partially_filled": "partly filled, open at end"}


def _no_benchmark() -> pl.DataFrame:
    return pl.DataFrame(schema={"timestamp": pl.Datetime("us", "UTC"), "equity": pl.Float64})


def _no_prices() -> pl.DataFrame:
    return pl.DataFrame(schema=PRICE_SCHEMA)


FRAMES = (
    "equity_curve",
    "fills",
    "orders",
    "trades",
    "daily_returns",
    "positions",
    "benchmark_curve",
    "prices",
)
_DEFAULTS: dict[str, Callable[[], pl.DataFrame]] = {
    "benchmark_curve": _no_benchmark,
    "prices": _no_prices,
}
Frame = pl.DataFrame | Callable[[], pl.DataFrame]


class BacktestResult(Mapping[str, float]):
    """A run's metrics (read as a mapping), frames and config.

    ``equity_curve``, ``fills``, ``orders``, ``trades``, ``daily_returns``, ``positions``,
    ``benchmark_curve`` and ``prices`` are polars frames, each built the first time it is
    read (a sweep that reads only the metrics never builds one): pass a frame, or a function
    of no arguments that builds it.

    ``benchmark_curve`` (``timestamp, equity``) is an equal-weight buy-and-hold of every asset
    in the data on the run's timestamps, starting from the same cash (see
    ``tradeloop.results.benchmark``). ``prices`` (``timestamp, asset_id, close``) holds the
    closes of every asset the run traded, which the report draws its trades on.
    """

    __slots__ = ("_built", "_frames", "config", "final_positions", "metrics")

    def __init__(
        self,
        metrics: dict[str, float],
        *,
        final_positions: dict[str, float],
        config: dict[str, Any] | None = None,
        **frames: Frame,
    ) -> None:
        unknown = sorted(set(frames) - set(FRAMES))
        missing = sorted(set(FRAMES) - set(frames) - set(_DEFAULTS))
        if unknown or missing:
            raise TypeError(f"BacktestResult frames: unknown {unknown}, missing {missing}")
        self.metrics = metrics
        self.final_positions = final_positions
        self.config = config if config is not None else {}
        self._frames: dict[str, Frame] = {**_DEFAULTS, **frames}
        self._built: dict[str, pl.DataFrame] = {}

    def _frame(self, name: str) -> pl.DataFrame:
        built = self._built.get(name)
        if built is None:
            source = self._frames[name]
            built = self._built[name] = source if isinstance(source, pl.DataFrame) else source()
        return built

    @property
    def equity_curve(self) -> pl.DataFrame:
        return self._frame("equity_curve")

    @property
    def fills(self) -> pl.DataFrame:
        return self._frame("fills")

    @property
    def orders(self) -> pl.DataFrame:
        return self._frame("orders")

    @property
    def trades(self) -> pl.DataFrame:
        return self._frame("trades")

    @property
    def daily_returns(self) -> pl.DataFrame:
        return self._frame("daily_returns")

    @property
    def positions(self) -> pl.DataFrame:
        return self._frame("positions")

    @property
    def benchmark_curve(self) -> pl.DataFrame:
        return self._frame("benchmark_curve")

    @property
    def prices(self) -> pl.DataFrame:
        return self._frame("prices")

    def __getstate__(self) -> dict[str, Any]:
        """Pickled with every frame built (the builders hold the run's broker)."""
        return {
            "metrics": self.metrics,
            "final_positions": self.final_positions,
            "config": self.config,
            "frames": {name: self._frame(name) for name in FRAMES},
        }

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.metrics = state["metrics"]
        self.final_positions = state["final_positions"]
        self.config = state["config"]
        self._frames = dict(state["frames"])
        self._built = dict(state["frames"])

    def __getitem__(self, name: str) -> float:
        try:
            return self.metrics[name]
        except KeyError:
            raise KeyError(f"no metric {name!r}; metrics are: {', '.join(self.metrics)}") from None

    def __iter__(self) -> Iterator[str]:
        return iter(self.metrics)

    def __len__(self) -> int:
        return len(self.metrics)

    @property
    def final_value(self) -> float:
        return self.metrics["final_value"]

    @property
    def total_return(self) -> float:
        return self.metrics["total_return"]

    def summary(self) -> str:
        """A readable report: period, metrics, order outcomes, open positions."""
        curve = self.equity_curve
        start, end = curve["timestamp"][0], curve["timestamp"][-1]
        lines = [
            "tradeloop backtest",
            f"  period     {start:%Y-%m-%d %H:%M} → {end:%Y-%m-%d %H:%M} UTC "
            f"({curve.height:,} timestamps, {self.config.get('n_bars', 0):,} bars, "
            f"{self.config.get('n_assets', 0)} assets)",
            "",
        ]
        width = max(len(label) for label in METRIC_LABELS.values())
        for key, label in METRIC_LABELS.items():
            value = format_metric(key, self.metrics.get(key, math.nan))
            lines.append(f"  {label:<{width}}  {value}")
        if self.orders.height:
            statuses = self.orders.group_by("status").len().sort("len", descending=True)
            counts = ", ".join(f"{_STATUS_LABELS.get(s, s)} {n}" for s, n in statuses.iter_rows())
            lines += ["", f"  Orders: {self.orders.height} ({counts})"]
            rejected = self.orders.filter(pl.col("status") == "rejected")
            if rejected.height:
                first = rejected.row(0, named=True)
                lines.append(
                    f"  First rejection: order {first['order_id']} {first['asset_id']}: "
                    f"{first['message']}"
                )
        exits = self.config.get("risk_exits")
        if exits:
            listed = ", ".join(f"{name} {n}" for name, n in sorted(exits.items()))
            lines.append(f"  Risk exits: {listed}")
        if self.config.get("guard_interventions"):
            listed = ", ".join(f"{k} {n}" for k, n in self.config["guard_interventions"].items())
            lines.append(f"  Orders cut or refused by guards: {listed}")
        if self.config.get("halted_at"):
            lines.append(f"  New entries halted from {self.config['halted_at']} (drawdown guard)")
        if self.final_positions:
            held = ", ".join(f"{a} {q:g}" for a, q in sorted(self.final_positions.items()))
            lines.append(f"  Open positions at end: {held}")
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        return {
            "metrics": {k: _json_number(v) for k, v in self.metrics.items()},
            "config": self.config,
            "final_positions": self.final_positions,
        }

    def to_json(self, path: str | Path | None = None) -> str:
        """The metrics, config and final positions as JSON (written to ``path`` if given)."""
        text = json.dumps(self.to_dict(), indent=2, default=str)
        if path is not None:
            Path(path).write_text(text + "\n")
        return text

    def to_parquet(self, directory: str | Path) -> Path:
        """Write equity_curve, benchmark_curve, fills, orders, trades, daily_returns,
        positions and prices as parquet, plus result.json, into ``directory``; return it."""
        out = Path(directory)
        out.mkdir(parents=True, exist_ok=True)
        for name in (
            "equity_curve",
            "benchmark_curve",
            "fills",
            "orders",
            "trades",
            "daily_returns",
            "positions",
            "prices",
        ):
            frame: pl.DataFrame = getattr(self, name)
            frame.write_parquet(out / f"{name}.parquet")
        self.to_json(out / "result.json")
        return out

    def returns_series(self) -> pd.Series:
        """Daily returns as a pandas Series (needs pandas), the input quantstats, empyrical and
        pyfolio take: one value per UTC date with a bar, the first measured from the initial
        cash, on a tz-naive DatetimeIndex of those dates (midnight)."""
        pd = require("pandas", "returns_series()")
        dates = pd.DatetimeIndex(self.daily_returns["date"].to_list(), name="date")
        return pd.Series(self.daily_returns["return"].to_numpy(), index=dates, name="returns")

    def report(
        self, path: str | Path, *, benchmark: Any = None, rolling_window_days: int = 126
    ) -> Path:
        """Write a self-contained HTML report (charts, metrics, config) to ``path``; return it.

        Needs plotly (``pip install 'tradeloop[report]'``). The equity chart compares with
        ``benchmark_curve`` unless ``benchmark`` gives a series of your own: a pandas Series
        with a time index or a polars frame of ``timestamp`` and one value column. The rolling
        Sharpe ratio is over ``rolling_window_days`` daily returns (126 ≈ six months).
        """
        from tradeloop.results.report import write_report

        return write_report(
            self, path, benchmark=benchmark, rolling_window_days=rolling_window_days
        )

    def plot(self, chart: str = "overview", *, benchmark: Any = None) -> go.Figure:
        """An interactive plotly figure: equity over drawdown, or one report chart by name
        (``"trades"``, ``"monthly_returns"``, …). Needs plotly (``tradeloop[report]``)."""
        from tradeloop.results.plot import plot_result

        return plot_result(self, chart, benchmark=benchmark)

    def _repr_html_(self) -> str:
        """The notebook view: headline metrics and a small equity/drawdown chart."""
        from tradeloop.results.notebook import result_html

        return result_html(self)

    def __repr__(self) -> str:
        return (
            f"BacktestResult(final_value={self.final_value:,.2f}, "
            f"total_return={self.total_return:.2%}, trades={self.metrics.get('n_trades', 0)})"
        )


def _json_number(value: float) -> float | str | None:
    if isinstance(value, float) and (math.isnan(value) or math.isinf(value)):
        return None if math.isnan(value) else ("inf" if value > 0 else "-inf")
    return value
