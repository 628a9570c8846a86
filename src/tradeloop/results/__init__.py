"""Results of a run: trades, metrics, the result object."""

from tradeloop.results.metrics import compute_metrics, daily_returns
from tradeloop.results.result import BacktestResult
from tradeloop.results.trades import round_trips

__all__ = ["BacktestResult", "compute_metrics", "daily_returns", "round_trips"]
