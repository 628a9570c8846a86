"""Round-trip trades from a fill list, matched first-in first-out per asset. Pure.

A trade is one matched quantity: opened by one fill, closed by a later fill on the other
side. Its commission is both fills' commission for that quantity, so
``pnl = gross_pnl − commission`` and the trades' pnl adds up to the realised P&L net of the
commission of closed quantities.

Matched vectorised, from the fills' columns: each fill is split into the part that closes
the position it meets and the part that opens one; per asset and direction, FIFO pairs the
k-th unit opened with the k-th unit closed, so the trades are the overlaps of the opening
and the closing fills' intervals on the cumulative quantity axis.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import polars as pl

from tradeloop.broker.records import FillArrays, FillLog
from tradeloop.events import Fill

__all__ = ["TRADE_SCHEMA", "RoundTrips", "round_trip_columns", "round_trips"]

TRADE_SCHEMA: dict[str, pl.DataType | type[pl.DataType]] = {
    "asset_id": pl.String,
    "direction": pl.String,
    "qty": pl.Float64,
    "entry_time": pl.Datetime("us", "UTC"),
    "entry_price": pl.Float64,
    "exit_time": pl.Datetime("us", "UTC"),
    "exit_price": pl.Float64,
    "gross_pnl": pl.Float64,
    "commission": pl.Float64,
    "pnl": pl.Float64,
    "return_pct": pl.Float64,
    "bars_held": pl.Int64,
    "entry_reason": pl.String,
    "exit_reason": pl.String,
}

_DUST = 1e-9
I64 = npt.NDArray[np.int64]
F64 = npt.NDArray[np.float64]


@dataclass(frozen=True, slots=True)
class RoundTrips:
    """The closed trades as columns: ``entry``/``exit`` index the fills they came from."""

    entry: I64
    exit: I64
    qty: F64
    long: npt.NDArray[np.bool_]
    gross_pnl: F64
    commission: F64

    @property
    def pnl(self) -> F64:
        return self.gross_pnl - self.commission

    def __len__(self) -> int:
        return len(self.qty)


def round_trips(fills: Sequence[Fill]) -> pl.DataFrame:
    """Closed trades, one row per matched (entry lot, exit fill) pair."""
    log = FillLog.of(fills).arrays()
    return trades_frame(log, round_trip_columns(log))


def trades_frame(log: FillArrays, trips: RoundTrips) -> pl.DataFrame:
    """``round_trips``'s frame from the matched columns."""
    entry, exit_ = trips.entry, trips.exit
    direction = np.where(trips.long, 1.0, -1.0)
    entry_price, exit_price = log.price[entry], log.price[exit_]
    assets = np.asarray(log.asset_id, dtype=object)
    reasons = np.asarray(log.reason, dtype=object)

    def times(rows: I64) -> pl.Series:
        return pl.Series(log.ts_ns[rows]).cast(pl.Datetime("ns", "UTC"))

    frame = pl.DataFrame(
        {
            "asset_id": pl.Series(assets[exit_], dtype=pl.String),
            "direction": pl.Series(np.where(trips.long, "long", "short"), dtype=pl.String),
            "qty": trips.qty,
            "entry_time": times(entry),
            "entry_price": entry_price,
            "exit_time": times(exit_),
            "exit_price": exit_price,
            "gross_pnl": trips.gross_pnl,
            "commission": trips.commission,
            "pnl": trips.pnl,
            "return_pct": direction * (exit_price / entry_price - 1.0),
            "bars_held": log.bar_index[exit_] - log.bar_index[entry],
            "entry_reason": pl.Series(reasons[entry], dtype=pl.String),
            "exit_reason": pl.Series(reasons[exit_], dtype=pl.String),
        }
    )
    return frame.cast(TRADE_SCHEMA)  # type: ignore[arg-type]


def round_trip_columns(log: FillArrays) -> RoundTrips:
    """Match the fills first-in first-out per asset (see the module docstring)."""
    n = len(log)
    if not n:
        empty = np.empty(0, dtype=np.int64)
        return RoundTrips(
            empty, empty, np.empty(0), np.empty(0, dtype=np.bool_), *([np.empty(0)] * 2)
        )
    code_of: dict[str, int] = {}
    codes = np.array([code_of.setdefault(a, len(code_of)) for a in log.asset_id], dtype=np.int64)
    by_asset = np.argsort(codes, kind="stable")  # each asset's fills in booking order
    signed = log.signed_qty[by_asset]
    total = np.cumsum(signed)
    c = codes[by_asset]
    first = np.flatnonzero(np.diff(c, prepend=-1))
    base = np.concatenate(([0.0], total))[first]
    after = total - np.repeat(base, np.diff(first, append=n))
    before = after - signed
    before[np.abs(before) <= _DUST] = 0.0
    size = np.abs(signed)
    closing = np.where(
        (before != 0) & ((before > 0) != (signed > 0)), np.minimum(size, np.abs(before)), 0.0
    )
    opening = size - closing
    fill = by_asset  # the fill each leg belongs to
    # legs grouped by (asset, direction), in booking order within a group
    close_group = c * 2 + (before > 0)
    open_group = c * 2 + (signed > 0)
    lots = _legs(open_group, opening, fill)
    exits = _legs(close_group, closing, fill)
    if not len(exits.qty):
        empty = np.empty(0, dtype=np.int64)
        return RoundTrips(
            empty, empty, np.empty(0), np.empty(0, dtype=np.bool_), *([np.empty(0)] * 2)
        )
    # for each closing leg: its first lot (the first whose end passes the leg's start) and its
    # last (the last that starts before the leg's end), found within its group
    first_lot = _count_at_or_below(lots.group, lots.end, exits.group, exits.start + _DUST)
    last_lot = _count_below(lots.group, lots.start, exits.group, exits.end - _DUST) - 1
    n_lots = np.maximum(last_lot - first_lot + 1, 0)
    # the trades in the order the old loop made them: by exit fill, then lot
    by_exit = np.argsort(exits.fill, kind="stable")
    n_lots = n_lots[by_exit]
    leg = np.repeat(by_exit, n_lots)
    lot = np.repeat(first_lot[by_exit], n_lots) + (
        np.arange(int(n_lots.sum())) - np.repeat(np.cumsum(n_lots) - n_lots, n_lots)
    )
    qty = np.minimum(lots.end[lot], exits.end[leg]) - np.maximum(lots.start[lot], exits.start[leg])
    keep = qty > _DUST
    leg, lot, qty = leg[keep], lot[keep], qty[keep]
    entry, exit_ = lots.fill[lot], exits.fill[leg]
    long = log.buy[entry]
    direction = np.where(long, 1.0, -1.0)
    per_unit = log.commission / log.qty
    return RoundTrips(
        entry=entry,
        exit=exit_,
        qty=qty,
        long=long,
        gross_pnl=qty * (log.price[exit_] - log.price[entry]) * direction,
        commission=qty * (per_unit[entry] + per_unit[exit_]),
    )


@dataclass(frozen=True, slots=True)
class _Legs:
    """Opening or closing parts of fills, sorted by group, on each group's quantity axis."""

    group: I64
    start: F64
    end: F64
    qty: F64
    fill: I64


def _legs(group: I64, qty: F64, fill: I64) -> _Legs:
    real = qty > _DUST
    group, qty, fill = group[real], qty[real], fill[real]
    order = np.lexsort((fill, group))
    group, qty, fill = group[order], qty[order], fill[order]
    total = np.cumsum(qty)
    first = np.flatnonzero(np.diff(group, prepend=-1))
    base = np.concatenate(([0.0], total))[first]
    end = total - np.repeat(base, np.diff(first, append=len(group)))
    return _Legs(group, end - qty, end, qty, fill)


def _count_at_or_below(group: I64, values: F64, at_group: I64, at: F64) -> I64:
    """For each (at_group, at): how many (group, value) pairs sort at or before it, counting
    every pair of an earlier group (``values`` sorted within each group)."""
    return _rank(group, values, at_group, at, ties_first=True)


def _count_below(group: I64, values: F64, at_group: I64, at: F64) -> I64:
    """As ``_count_at_or_below``, but a value equal to ``at`` is not counted."""
    return _rank(group, values, at_group, at, ties_first=False)


def _rank(group: I64, values: F64, at_group: I64, at: F64, *, ties_first: bool) -> I64:
    n = len(group)
    kind = np.concatenate((np.zeros(n), np.ones(len(at_group))))
    if not ties_first:
        kind = 1.0 - kind
    g = np.concatenate((group, at_group))
    v = np.concatenate((values, at))
    order = np.lexsort((kind, v, g))
    is_pair = order < n
    pairs_before: I64 = np.cumsum(is_pair) - is_pair
    out = np.empty(len(at_group), dtype=np.int64)
    out[order[~is_pair] - n] = pairs_before[~is_pair]
    return out
