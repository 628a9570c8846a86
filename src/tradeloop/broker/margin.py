"""Margin for short positions (Reg-T style): what a short ties up, when it is called, what it
costs to borrow. Pure: the rules over an order book's cash, positions and marks.

- **Free cash** is the cash not tied to shorts: cash − (1 + ``initial``) × Σ |short value|.
  A short's proceeds are collateral, not spending money, and it needs ``initial`` (50 %)
  of its value on top. Buys spend free cash (without shorts it is all the cash, so nothing
  changes for a long-only run); a sell that opens or adds to a short needs ``initial`` × its
  value in free cash (after open orders), else it is rejected with the numbers.
- **Maintenance**: at the end of every timestamp, equity must cover ``maintenance`` (30 %) ×
  Σ |short value| (and never be negative, shorts or not: a cover that cost more than
  the account had leaves a debt); when it does not, a ``MarginCall`` is the strategy's to hear
  (``on_margin_call``), never a silent negative. With ``liquidate=True`` the broker also
  sends market orders buying every short back (reason ``margin_call``), filled at the next
  opens.
- **Borrow fees**: ``borrow_rate`` / 365 a day on the value (at the marks) of the shorts held
  at the end of a UTC day's first timestamp; a gap of several days charges each of them.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from tradeloop.clock import utc_datetime
from tradeloop.errors import ConfigError
from tradeloop.portfolio import Position

if TYPE_CHECKING:
    from tradeloop.broker.book import OrderBook

_DAY_NS = 86_400 * 1_000_000_000
_EPS = 1e-9

__all__ = ["Charge", "Margin", "MarginCall", "borrow_fee", "free_cash", "settle", "short_value"]


@dataclass(frozen=True, slots=True)
class Margin:
    """Reg-T style defaults: 50 % initial, 30 % maintenance (a broker's usual short
    maintenance), no borrow fee."""

    initial: float = 0.5
    maintenance: float = 0.3
    borrow_rate: float = 0.0  # a year, as a fraction of the shorts' value
    liquidate: bool = False

    def __post_init__(self) -> None:
        if not (0 < self.maintenance <= self.initial < math.inf):
            raise ConfigError(
                f"margin needs 0 < maintenance <= initial, got maintenance {self.maintenance} "
                f"and initial {self.initial}. Fix: Margin(initial=0.5, maintenance=0.3)"
            )
        if not 0 <= self.borrow_rate < math.inf:
            raise ConfigError(f"borrow_rate is a yearly fraction >= 0, got {self.borrow_rate}")


@dataclass(frozen=True, slots=True)
class MarginCall:
    """Equity fell below the maintenance requirement of the shorts (a fact)."""

    timestamp: datetime
    ts_ns: int
    equity: float
    requirement: float
    shorts: Mapping[str, float]  # asset -> signed quantity

    @property
    def shortfall(self) -> float:
        return self.requirement - self.equity


@dataclass(frozen=True, slots=True)
class Charge:
    """Cash the broker took outside a fill (a borrow fee): in the equity curve and results."""

    ts_ns: int
    asset_id: str
    amount: float
    reason: str


def short_value(positions: Mapping[str, Position], marks: Mapping[str, float]) -> float:
    """Σ |qty × mark| over the short positions (the average price where there is no mark)."""
    total = 0.0
    for asset_id, position in positions.items():
        if position.qty < 0:
            total -= position.qty * marks.get(asset_id, position.avg_price)
    return total


def free_cash(
    cash: float, margin: Margin, positions: Mapping[str, Position], marks: Mapping[str, float]
) -> float:
    """Cash not tied to shorts: cash − (1 + initial) × Σ |short value|."""
    return cash - (1.0 + margin.initial) * short_value(positions, marks)


def borrow_fee(margin: Margin, value: float, days: int) -> float:
    """The fee for holding shorts worth ``value`` for ``days`` days."""
    return margin.borrow_rate / 365.0 * value * days


def settle(book: OrderBook, margin: Margin, fee_day: int | None) -> tuple[MarginCall | None, int]:
    """At the end of a timestamp: charge the borrow fees of the days since ``fee_day`` (the
    UTC day last charged), then the call if equity is below maintenance (or below zero).
    Returns the call (or None) and the day charged up to."""
    positions = book.portfolio.positions
    day = book.now_ns // _DAY_NS
    shorts = {a: p.qty for a, p in positions.items() if p.qty < 0}
    if not shorts and book.portfolio.cash >= 0:
        return None, day  # nothing borrowed, nothing owed
    if margin.borrow_rate and fee_day is not None and day > fee_day:
        for asset_id, qty in shorts.items():
            value = -qty * book.marks.get(asset_id, positions[asset_id].avg_price)
            book.charge(asset_id, borrow_fee(margin, value, day - fee_day), "borrow_fee")
    requirement = margin.maintenance * short_value(positions, book.marks)
    equity = book.equity()
    if equity >= requirement - _EPS:
        return None, day
    when = book.now if book.now is not None else utc_datetime(book.now_ns)
    return MarginCall(when, book.now_ns, equity, requirement, shorts), day
