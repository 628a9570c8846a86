"""The equity curve, rebuilt from the bars and the fill list after a run. Pure numpy.

At each timestamp: cash = initial − Σ (signed qty × price + commission) of fills so far, and
positions are marked at each asset's latest close so far (forward filled over timestamps where
the asset has no bar). Doing this once, vectorised, keeps per-bar bookkeeping out of the replay
loop; the engine checks the last value against the broker's own live accounting.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from tradeloop.broker.records import FillLog
from tradeloop.data.bars import BarTable
from tradeloop.events import Fill

__all__ = ["EquityRecord", "equity_record"]


@dataclass(frozen=True, slots=True)
class EquityRecord:
    """Per-timestamp account values after each timestamp was handled."""

    ts_ns: npt.NDArray[np.int64]
    equity: npt.NDArray[np.float64]
    cash: npt.NDArray[np.float64]
    gross_exposure: npt.NDArray[np.float64]
    positions: npt.NDArray[np.int64]


def equity_record(
    table: BarTable,
    fills: Sequence[Fill],
    initial_cash: float,
    charges: Sequence[tuple[int, float]] = (),
) -> EquityRecord:
    """Cash and equity at every timestamp, rebuilt from the fills (and ``charges``: cash taken
    outside a fill, as (ts_ns, amount), e.g. borrow fees)."""
    n_ts = table.n_timestamps
    cash_flow = np.zeros(n_ts)
    if charges:
        at = np.searchsorted(table.unique_ts_ns, np.array([c[0] for c in charges], dtype=np.int64))
        np.add.at(cash_flow, at, -np.array([c[1] for c in charges]))
    if not fills:
        cash = initial_cash + np.cumsum(cash_flow)
        return EquityRecord(
            table.unique_ts_ns, cash, cash.copy(), np.zeros(n_ts), np.zeros(n_ts, dtype=np.int64)
        )
    log = FillLog.of(fills).arrays()
    # a fill counts from the first timestamp at or after it; a venue's fill that came after
    # the last bar (a live run) counts at the last one
    fill_k = np.minimum(np.searchsorted(table.unique_ts_ns, log.ts_ns), n_ts - 1)
    signed = log.signed_qty
    np.add.at(cash_flow, fill_k, -(signed * log.price + log.commission))
    cash = initial_cash + np.cumsum(cash_flow)
    value, gross, held = _holdings(table, log.asset_id, fill_k, signed)
    return EquityRecord(table.unique_ts_ns, cash + value, cash, gross, held)


def _holdings(
    table: BarTable,
    assets: Sequence[str],
    fill_k: npt.NDArray[np.intp],
    signed: npt.NDArray[np.float64],
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64], npt.NDArray[np.int64]]:
    """Σ qty × mark, Σ |qty × mark| and the count of open positions at every timestamp.

    Vectorised over every (asset, timestamp) a position is open: each stretch between two
    fills of an asset holds one quantity, marked at the asset's latest close at or before
    each timestamp (0 before its first bar), found in ``table.asset_keys``.
    """
    n_ts = table.n_timestamps
    code_of = {asset: code for code, asset in enumerate(table.asset_ids)}
    codes = np.array([code_of[a] for a in assets], dtype=np.int64)
    keys = codes * n_ts + fill_k
    order = np.argsort(keys, kind="stable")
    keys, codes, qty = keys[order], codes[order], signed[order]
    # each asset's position after each fill: a cumulative sum that restarts at every asset
    total = np.cumsum(qty)
    first = np.flatnonzero(np.diff(codes, prepend=-1))
    before = np.concatenate(([0.0], total))[first]
    position = total - np.repeat(before, np.diff(first, append=len(codes)))
    position[np.abs(position) <= 1e-9 * np.maximum(1.0, np.abs(position))] = 0.0
    # one stretch per (asset, timestamp) with fills, holding the position after the last one
    last = np.flatnonzero(np.diff(keys, append=keys[-1] + 1))
    keys, codes, position = keys[last], codes[last], position[last]
    begin = keys - codes * n_ts
    same_next = np.append(codes[1:] == codes[:-1], False)
    end = np.where(same_next, np.append(begin[1:], n_ts), n_ts)
    held = position != 0
    begin, end, codes, position = begin[held], end[held], codes[held], position[held]
    lengths = end - begin
    n_pairs = int(lengths.sum())
    if not n_pairs:
        return np.zeros(n_ts), np.zeros(n_ts), np.zeros(n_ts, dtype=np.int64)
    stretch = np.repeat(np.arange(len(lengths)), lengths)
    offsets = np.arange(n_pairs) - np.repeat(np.cumsum(lengths) - lengths, lengths)
    k = begin[stretch] + offsets
    pair_code = codes[stretch]
    n_assets = len(table.asset_ids)
    if table.complete:  # the bar is row k × n_assets + code
        marks = table.close[k * n_assets + pair_code]
    else:
        keys = table.asset_keys
        at = np.searchsorted(keys, pair_code * n_ts + k, side="right") - 1
        found = (at >= 0) & (keys[np.maximum(at, 0)] >= pair_code * n_ts)
        marks = np.where(found, table.close[table.asset_rows[np.maximum(at, 0)]], 0.0)
    worth = position[stretch] * marks
    del stretch, offsets, pair_code, marks  # one per (asset, timestamp) held: free them first
    # (bincount's weighted sums are float64 already, its counts intp: no copies)
    value = np.bincount(k, weights=worth, minlength=n_ts).astype(np.float64, copy=False)
    np.abs(worth, out=worth)
    gross = np.bincount(k, weights=worth, minlength=n_ts).astype(np.float64, copy=False)
    del worth
    count = np.bincount(k, minlength=n_ts).astype(np.int64, copy=False)
    return value, gross, count
