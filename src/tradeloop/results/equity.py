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
    fill_ts = np.array([f.ts_ns for f in fills], dtype=np.int64)
    # a fill counts from the first timestamp at or after it; a venue's fill that came after
    # the last bar (a live run) counts at the last one
    fill_k = np.minimum(np.searchsorted(table.unique_ts_ns, fill_ts), n_ts - 1)
    signed = np.array([f.signed_qty for f in fills])
    price = np.array([f.price for f in fills])
    commission = np.array([f.commission for f in fills])
    np.add.at(cash_flow, fill_k, -(signed * price + commission))
    cash = initial_cash + np.cumsum(cash_flow)

    code_of = {asset: code for code, asset in enumerate(table.asset_ids)}
    fill_codes = np.array([code_of[f.asset_id] for f in fills], dtype=np.int64)
    row_k = np.repeat(np.arange(n_ts), np.diff(table.ts_bounds))
    by_asset = np.argsort(table.asset_code, kind="stable")
    starts = np.searchsorted(table.asset_code[by_asset], np.arange(len(table.asset_ids) + 1))
    value = np.zeros(n_ts)
    gross = np.zeros(n_ts)
    held = np.zeros(n_ts, dtype=np.int64)
    for code in np.unique(fill_codes).tolist():
        mine = fill_codes == code
        qty = np.zeros(n_ts)
        np.add.at(qty, fill_k[mine], signed[mine])
        qty = np.cumsum(qty)
        qty[np.abs(qty) <= 1e-9 * np.maximum(1.0, np.abs(qty))] = 0.0
        rows = by_asset[starts[code] : starts[code + 1]]
        marks = _forward_filled(n_ts, row_k[rows], table.close[rows])
        position_value = qty * marks
        value += position_value
        gross += np.abs(position_value)
        held += qty != 0
    return EquityRecord(table.unique_ts_ns, cash + value, cash, gross, held)


def _forward_filled(
    n: int, at: npt.NDArray[np.int64], values: npt.NDArray[np.float64]
) -> npt.NDArray[np.float64]:
    """A length-``n`` series holding ``values[j]`` from index ``at[j]`` on (0 before the first)."""
    index = np.full(n, -1, dtype=np.int64)
    index[at] = np.arange(len(at))
    index = np.maximum.accumulate(index)
    out = np.where(index >= 0, values[np.maximum(index, 0)], 0.0)
    return out.astype(np.float64)
