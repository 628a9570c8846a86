"""Round-trip trades from a fill list, matched first-in first-out per asset. Pure.

A trade is one matched quantity: opened by one fill, closed by a later fill on the other
side. Its commission is both fills' commission for that quantity, so
``pnl = gross_pnl − commission`` and the trades' pnl adds up to the realised P&L net of the
commission of closed quantities.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

import polars as pl

from tradeloop.events import Fill

__all__ = ["TRADE_SCHEMA", "round_trips"]

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


@dataclass(slots=True)
class _Lot:
    qty: float  # signed: > 0 long, < 0 short
    price: float
    time: datetime
    bar_index: int
    commission_per_unit: float
    reason: str


def round_trips(fills: Sequence[Fill]) -> pl.DataFrame:
    """Closed trades, one row per matched (entry lot, exit fill) pair."""
    open_lots: dict[str, deque[_Lot]] = {}
    rows: list[tuple[object, ...]] = []
    for fill in fills:
        lots = open_lots.setdefault(fill.asset_id, deque())
        remaining = fill.signed_qty
        exit_cpu = fill.commission / fill.qty
        while lots and abs(remaining) > _DUST and (lots[0].qty > 0) != (remaining > 0):
            lot = lots[0]
            matched = min(abs(remaining), abs(lot.qty))
            direction = 1.0 if lot.qty > 0 else -1.0
            gross = matched * (fill.price - lot.price) * direction
            commission = matched * (lot.commission_per_unit + exit_cpu)
            rows.append(
                (
                    fill.asset_id,
                    "long" if direction > 0 else "short",
                    matched,
                    lot.time,
                    lot.price,
                    fill.timestamp,
                    fill.price,
                    gross,
                    commission,
                    gross - commission,
                    direction * (fill.price / lot.price - 1.0),
                    fill.bar_index - lot.bar_index,
                    lot.reason,
                    fill.reason,
                )
            )
            lot.qty -= direction * matched
            remaining += direction * matched
            if abs(lot.qty) <= _DUST:
                lots.popleft()
        if abs(remaining) > _DUST:
            lots.append(
                _Lot(remaining, fill.price, fill.timestamp, fill.bar_index, exit_cpu, fill.reason)
            )
    return pl.DataFrame(rows, schema=TRADE_SCHEMA, orient="row")
