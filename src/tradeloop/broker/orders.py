"""Orders as a broker holds them, and the pure rule that says where a bar fills one."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from tradeloop.events import OrderStatus, OrderType, Side, TimeInForce

__all__ = ["Order", "match_price", "net_remaining"]

# Enum members bound once: attribute access on an Enum class is slow on Python 3.11.
_BUY, _SELL = Side.BUY, Side.SELL
_MARKET, _LIMIT, _STOP = OrderType.MARKET, OrderType.LIMIT, OrderType.STOP
_OPEN = (OrderStatus.ACCEPTED, OrderStatus.PARTIALLY_FILLED)


@dataclass(slots=True)
class Order:
    """An order and its life so far. ``qty`` is positive; ``side`` gives the direction."""

    id: int
    asset_id: str
    side: Side
    qty: float
    order_type: OrderType
    limit_price: float | None
    stop_price: float | None
    tif: TimeInForce
    submitted_ts_ns: int
    reason: str
    status: OrderStatus = OrderStatus.ACCEPTED
    filled_qty: float = 0.0
    avg_fill_price: float = 0.0
    triggered: bool = False
    session_day: int | None = None
    message: str = ""
    fill_at_close: bool = False
    client_order_id: str = ""  # minted when placed (paper/live: deterministic, journaled)

    @property
    def remaining(self) -> float:
        return self.qty - self.filled_qty

    @property
    def side_sign(self) -> int:
        return 1 if self.side is _BUY else -1

    @property
    def is_open(self) -> bool:
        return self.status in _OPEN


def net_remaining(orders: Iterable[Order]) -> float:
    """Quantity the orders have still to fill, signed: buys add, sells subtract."""
    return sum(o.remaining if o.side is _BUY else -o.remaining for o in orders)


def match_price(
    order: Order, open_: float, high: float, low: float, close: float
) -> tuple[float | None, bool]:
    """Where this bar fills ``order`` (before slippage), and whether a stop is now triggered.

    The bar is seen as an exchange would: the open first, then the range, then the close.
    A limit or stop that the open already crosses fills at the open (a gap gives the open,
    better for a limit, worse for a stop); otherwise a level inside [low, high] fills at
    that level. A stop-limit triggered at the open is a limit on the whole bar. Triggered
    inside the bar (see ``_stop_limit_intrabar``) it fills at the stop when the stop is
    within the limit, at the limit when the close is at or through the limit (the price
    certainly crossed it after the trigger), and otherwise rests as a limit from the next bar.
    """
    buy = order.side is _BUY
    kind = order.order_type
    if kind is _MARKET:
        return open_, order.triggered
    if kind is _LIMIT:
        return _limit(buy, _price(order.limit_price), open_, high, low), order.triggered
    stop = _price(order.stop_price)
    if kind is _STOP:
        if (open_ >= stop) if buy else (open_ <= stop):
            return open_, True
        if (high >= stop) if buy else (low <= stop):
            return stop, True
        return None, False
    limit = _price(order.limit_price)
    if order.triggered:
        return _limit(buy, limit, open_, high, low), True
    if (open_ >= stop) if buy else (open_ <= stop):
        return _limit(buy, limit, open_, high, low), True
    if (high >= stop) if buy else (low <= stop):
        return _stop_limit_intrabar(buy, stop, limit, close), True
    return None, False


def _stop_limit_intrabar(buy: bool, stop: float, limit: float, close: float) -> float | None:
    """The fill of a stop-limit whose stop the bar reached after its open, or None (rest).

    The trigger is the moment the price touches the stop. A stop within the limit (buy:
    stop ≤ limit) fills right there, at the stop. A stop beyond the limit (buy: stop >
    limit) needs the price to come back to the limit after the trigger; the range cannot
    say it did (the low may have come first), but a close at or through the limit (buy:
    close ≤ limit) can: the price went from the stop to the close and passed the limit on
    the way, so the order fills at the limit on this bar. Sells mirror it."""
    if buy:
        if stop <= limit:
            return stop
        return limit if close <= limit else None
    if stop >= limit:
        return stop
    return limit if close >= limit else None


def _limit(buy: bool, limit: float, open_: float, high: float, low: float) -> float | None:
    if buy:
        if open_ <= limit:
            return open_
        return limit if low <= limit else None
    if open_ >= limit:
        return open_
    return limit if high >= limit else None


def _price(value: float | None) -> float:
    assert value is not None, "validated at submission"
    return value
