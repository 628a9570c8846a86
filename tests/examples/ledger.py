"""Cash and positions rebuilt from a run's fills, in plain Python, for the example tests.

A buy costs ``qty × price + commission``, a sell brings ``qty × price − commission`` (the fill
price already carries any slippage). Fills happen at a bar's open, before the strategy sees
that bar, so after ``advance(ts)`` the ledger holds what the strategy held when it decided at
``ts``. No engine code: the example tests recompute decisions from the data and this.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import datetime
from typing import Any

import polars as pl


class Ledger:
    def __init__(self, fills: pl.DataFrame, cash: float) -> None:
        self.cash = cash
        self.positions: dict[str, float] = {}
        self.avg_price: dict[str, float] = {}  # moves only when a position grows
        self.marks: dict[str, float] = {}
        self._fills = list(fills.sort("timestamp", maintain_order=True).iter_rows(named=True))
        self._next = 0

    def advance(self, ts: datetime) -> list[dict[str, Any]]:
        """Book every fill at or before ``ts``; return the ones booked now."""
        booked = []
        while self._next < len(self._fills) and self._fills[self._next]["timestamp"] <= ts:
            fill = self._fills[self._next]
            sign = 1.0 if fill["side"] == "buy" else -1.0
            self.cash -= sign * fill["qty"] * fill["price"] + fill["commission"]
            asset, old = fill["asset_id"], self.positions.get(fill["asset_id"], 0.0)
            new = old + sign * fill["qty"]
            if old == 0 or (old > 0) == (sign > 0):
                cost = old * self.avg_price.get(asset, 0.0) + sign * fill["qty"] * fill["price"]
                self.avg_price[asset] = cost / new
            self.positions[asset] = new
            if new == 0:
                del self.positions[asset], self.avg_price[asset]
            booked.append(fill)
            self._next += 1
        return booked

    def mark(self, closes: Mapping[str, float]) -> None:
        """Take these closes as the assets' latest prices."""
        self.marks.update(closes)

    def held(self, asset_id: str) -> float:
        return self.positions.get(asset_id, 0.0)

    def equity(self) -> float:
        """Cash plus every position at its latest close."""
        return self.cash + sum(qty * self.marks[a] for a, qty in self.positions.items())


def whole_shares(value: float, price: float) -> float:
    """Shares worth ``value`` at ``price``, rounded toward zero (as the helpers document)."""
    return float(math.floor(abs(value) / price + 1e-9))


def by_timestamp(bars: pl.DataFrame) -> list[tuple[datetime, list[dict[str, Any]]]]:
    """The bars grouped per timestamp (naive times read as UTC), in time order."""
    if bars.schema["timestamp"].time_zone is None:  # type: ignore[attr-defined]
        bars = bars.with_columns(pl.col("timestamp").dt.replace_time_zone("UTC"))
    rows = bars.sort("timestamp", "asset_id").iter_rows(named=True)
    grouped: dict[datetime, list[dict[str, Any]]] = {}
    for row in rows:
        grouped.setdefault(row["timestamp"], []).append(row)
    return list(grouped.items())
