"""Quantities decided at the fill: an order sized at its fill price (``fill_percent``, from
the percent helpers' ``sizing="fill"``) and a reduce-only order (a bracket's exit). Pure:
rules over an ``OrderBook``.

- sized at the fill: the largest quantity whose cost at the fill price (slippage estimated
  as at admission, commission included) fits ``|fill_percent|`` × equity then; for a target
  (``fill_target``) the trade from the position to ``sign(fill_percent)`` × that quantity,
  and nothing if the position is already at or past it. Sized once, at the first fill.
- reduce-only: capped at what reduces the position; nothing if there is none left.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from tradeloop.broker.orders import Order, largest_fitting

if TYPE_CHECKING:
    from tradeloop.broker.book import OrderBook

__all__ = ["qty_for_value", "size_at_fill"]

_EPS = 1e-9


def size_at_fill(book: OrderBook, order: Order, base_price: float) -> str:
    """Set ``order``'s quantity for a fill at ``base_price`` (before slippage); "" when it may
    fill, else why nothing is left to trade (the caller cancels it with that)."""
    held = book.position(order.asset_id)
    sign = order.side_sign
    if order.fill_percent is not None and order.filled_qty == 0:
        price = book.slippage_model.price(sign, base_price, 1.0, math.inf)
        qty = qty_for_value(book, abs(order.fill_percent) * book.equity(), price)
        if order.fill_target:
            delta = math.copysign(qty, order.fill_percent) - held
            qty = abs(delta) if delta * sign > 0 else 0.0
        order.fill_percent = None  # sized once, at its first fill
        if qty <= 0:
            return f"sized to nothing at the fill price {price:g}"
        order.qty = qty
    if order.reduce_only:
        reducible = max(-sign * held, 0.0)
        if reducible <= _EPS:
            return "reduce-only: no position left to reduce"
        order.qty = min(order.qty, order.filled_qty + reducible)
    return ""


def qty_for_value(book: OrderBook, value: float, price: float) -> float:
    """The largest quantity whose cost at ``price``, commission included, fits ``value``."""
    commission = book.commission_model.commission
    rough = value / price if book.fractional else math.floor(value / price + _EPS)
    return largest_fitting(
        rough,
        lambda q: q * price + (commission(q, price) if q > 0 else 0.0) <= value + _EPS,
        book.fractional,
    )
