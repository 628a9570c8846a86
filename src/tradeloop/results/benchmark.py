"""The benchmark a run is compared with, as an equity curve on the run's timestamps. Pure.

By default it is what a user would have earned by not trading: the initial cash split equally
over every asset in the data, each bought at its first close and held (no costs), marked at its
latest close. An asset that starts later keeps its share in cash until its first bar. A series
of your own (an index, SPY's closes) can stand in for it: it is read as of each timestamp and
scaled to start at the initial cash.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

from tradeloop.data.bars import BarTable
from tradeloop.data.context import Context
from tradeloop.errors import DataError

__all__ = ["equal_weight_buy_and_hold", "rescaled_benchmark"]


def equal_weight_buy_and_hold(table: BarTable, initial_cash: float) -> npt.NDArray[np.float64]:
    """Value at each of ``table.unique_ts_ns`` of an equal-weight buy-and-hold of every asset."""
    by_asset = table.asset_rows  # each asset's rows, in time order
    codes = table.asset_code_of(by_asset)
    close = table.close[by_asset]
    first = np.concatenate(([True], codes[1:] != codes[:-1]))
    entry_row = np.maximum.accumulate(np.where(first, np.arange(len(codes)), 0))
    growth = close / close[entry_row]
    # Each asset's value is share × growth, and share × 1 before its first bar; so the total
    # moves by share × (change in growth) at each bar, and by nothing at an asset's first bar.
    step = np.diff(growth, prepend=1.0)
    step[first] = 0.0
    row_ts = np.repeat(np.arange(table.n_timestamps), np.diff(table.ts_bounds))
    moves = np.zeros(table.n_timestamps)
    np.add.at(moves, row_ts[by_asset], step)
    share = initial_cash / len(table.asset_ids)
    return (initial_cash + share * np.cumsum(moves)).astype(np.float64)


def rescaled_benchmark(
    series: Any, ts_ns: npt.NDArray[np.int64], initial_cash: float
) -> npt.NDArray[np.float64]:
    """``series`` (prices or index levels) as of each of ``ts_ns``, scaled so that its first
    value on or after the run's start equals ``initial_cash``; NaN before the series starts.

    ``series`` is a pandas Series with a time index or a polars frame of ``timestamp`` and one
    value column (naive times are UTC), as ``Context`` takes them.
    """
    levels = Context({"benchmark": series}).aligned("benchmark", ts_ns)
    known = np.flatnonzero(np.isfinite(levels) & (levels > 0))
    if not len(known):
        raise DataError(
            "the benchmark series has no positive value on or before the run's last timestamp; "
            "Fix: give prices or index levels covering the backtest period."
        )
    scaled: npt.NDArray[np.float64] = levels / levels[known[0]] * initial_cash
    return scaled
