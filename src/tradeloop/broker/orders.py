"""Orders as a broker holds them, the requests that make them, and the pure rules that say
where a bar fills one (``match_price``) and how a trailing stop follows the price
(``ratchet``)."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from tradeloop.events import OrderStatus, OrderType, Side, TimeInForce

if TYPE_CHECKING:
    from tradeloop.broker.groups import OrderGroup

__all__ = [
    "OPEN_STATUSES",
    "Order",
    "OrderRequest",
    "largest_fitting",
    "match_price",
    "net_remaining",
    "ratchet",
    "start_trail",
]

# Enum members bound once: attribute access on an Enum class is slow on Python 3.11.
_BUY, _SELL = Side.BUY, Side.SELL
_MARKET, _LIMIT, _STOP, _TRAIL = (
    OrderType.MARKET,
    OrderType.LIMIT,
    OrderType.STOP,
    OrderType.TRAILING_STOP,
)
OPEN_STATUSES = (OrderStatus.ACCEPTED, OrderStatus.PARTIALLY_FILLED)  # ``Order.is_open``


@dataclass(slots=True)
class Order:
    """An order and its life so far. ``qty`` is positive; ``side`` gives the direction.

    ``special`` marks an order that needs more than the plain matching (a trailing stop, a
    good-till-date, a group leg, sizing at the fill): the hot path checks that one flag."""

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
    session_end_ns: int | None = None  # DAY: the end of its session (``broker.sessions``)
    message: str = ""
    fill_at_close: bool = False
    client_order_id: str = ""  # minted when placed (paper/live: deterministic, journaled)
    special: bool = False
    trail_amount: float | None = None  # trailing stop: distance in price ...
    trail_percent: float | None = None  # ... or as a fraction of the best price since placed
    trail_ref: float = 0.0  # the best price seen since placed (high for a sell, low for a buy)
    expire_at_ns: int | None = None  # GTD: fills on bars stamped at or before this time
    fill_percent: float | None = None  # sized at the fill: this fraction of equity ...
    fill_target: bool = False  # ... as a target position (True) or as a trade value (False)
    reduce_only: bool = False  # fills only what reduces the position (bracket exits)
    from_fill: float | None = None  # a leg priced at parent fill × (1 + from_fill)
    group: OrderGroup | None = None

    @classmethod
    def from_request(
        cls, order_id: int, request: OrderRequest, now_ns: int, group: OrderGroup | None
    ) -> Order:
        """A new (special) order as ``request`` describes it."""
        return cls(
            id=order_id,
            asset_id=request.asset_id,
            side=request.side,
            qty=float(request.qty),
            order_type=request.order_type,
            limit_price=request.limit_price,
            stop_price=request.stop_price,
            tif=request.tif,
            submitted_ts_ns=now_ns,
            reason=request.reason,
            special=True,
            trail_amount=request.trail_amount,
            trail_percent=request.trail_percent,
            expire_at_ns=request.expire_at_ns,
            fill_percent=request.fill_percent,
            fill_target=request.fill_target,
            reduce_only=request.reduce_only,
            from_fill=request.from_fill,
            group=group,
        )

    @property
    def remaining(self) -> float:
        return self.qty - self.filled_qty

    @property
    def side_sign(self) -> int:
        return 1 if self.side is _BUY else -1

    @property
    def is_open(self) -> bool:
        return self.status in OPEN_STATUSES


@dataclass(frozen=True, slots=True)
class OrderRequest:
    """An intent to trade, before admission: what ``Broker.submit_request`` and the group
    API (``submit_group``) take. Prices of a leg may be fractions of its parent's fill
    (``from_fill``, signed: −0.05 is 5 % below the fill)."""

    asset_id: str
    side: Side
    qty: float
    order_type: OrderType = OrderType.MARKET
    limit_price: float | None = None
    stop_price: float | None = None
    tif: TimeInForce = TimeInForce.GTC
    reason: str = "strategy"
    expire_at_ns: int | None = None
    trail_amount: float | None = None
    trail_percent: float | None = None
    fill_percent: float | None = None
    fill_target: bool = False
    reduce_only: bool = False
    from_fill: float | None = None


def net_remaining(orders: Iterable[Order]) -> float:
    """Quantity the orders have still to fill, signed: buys add, sells subtract."""
    total = 0.0  # a loop, not ``sum`` of a generator: most calls see none or one order
    for o in orders:
        total += o.remaining if o.side is _BUY else -o.remaining
    return total


def match_price(
    order: Order, open_: float, high: float, low: float, close: float
) -> tuple[float | None, bool]:
    """Where this bar fills ``order`` (before slippage), and whether a stop is now triggered.

    The bar is seen as an exchange would: the open first, then the range, then the close.
    A limit or stop that the open already crosses fills at the open (a gap gives the open,
    better for a limit, worse for a stop); otherwise a level inside [low, high] fills at
    that level. A trailing stop is a stop at its current level (see ``ratchet``). A
    stop-limit triggered at the open is a limit on the whole bar. Triggered inside the bar
    (see ``_stop_limit_intrabar``) it fills at the stop when the stop is within the limit,
    at the limit when the close is at or through the limit (the price certainly crossed it
    after the trigger), and otherwise rests as a limit from the next bar.
    """
    buy = order.side is _BUY
    kind = order.order_type
    if kind is _MARKET:
        return open_, order.triggered
    if kind is _LIMIT:
        return _limit(buy, _price(order.limit_price), open_, high, low), order.triggered
    stop = _price(order.stop_price)
    if kind is _STOP or kind is _TRAIL:
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


def start_trail(order: Order, price: float) -> None:
    """Start a trailing stop from ``price`` (the latest close when it is placed, or its
    parent's fill price): a sell at price − amount (or × (1 − percent)), a buy above."""
    order.trail_ref = price
    sign = order.side_sign  # a sell trails below the price, a buy above it
    if order.trail_amount is not None:
        order.stop_price = price + sign * order.trail_amount
    else:
        order.stop_price = price * (1.0 + sign * _pct(order))


def ratchet(order: Order, price: float) -> None:
    """Move a trailing stop after the price reached ``price``; it never moves back.

    A sell trails the highest price seen since it was placed: stop = best − amount (or
    best × (1 − percent)); a buy mirrors it from the lowest price. The simulator ratchets
    at each bar's open before matching (the open comes first, so the range trades after
    it) and at the bar's high (sell) or low (buy) after the bar, for the next one."""
    amount = order.trail_amount
    if order.side is _SELL:
        if price <= order.trail_ref:
            return
        order.trail_ref = price
        level = price - amount if amount is not None else price * (1.0 - _pct(order))
        order.stop_price = max(_price(order.stop_price), level)
    else:
        if price >= order.trail_ref:
            return
        order.trail_ref = price
        level = price + amount if amount is not None else price * (1.0 + _pct(order))
        order.stop_price = min(_price(order.stop_price), level)


def largest_fitting(qty: float, fits: Callable[[float], bool], fractional: bool) -> float:
    """The largest quantity in [0, ``qty``] for which ``fits`` holds (whole units unless
    ``fractional``), by bisection: ``fits`` must be monotone (true below, false above)."""
    if fits(qty):
        return qty
    low, high = 0.0, qty
    for _ in range(64):
        mid = (low + high) / 2 if fractional else math.floor((low + high) / 2)
        if fits(mid):
            low = mid
        else:
            high = mid
        if not fractional and high - low <= 1:
            break
    return low if fractional else float(math.floor(low))


def _limit(buy: bool, limit: float, open_: float, high: float, low: float) -> float | None:
    if buy:
        if open_ <= limit:
            return open_
        return limit if low <= limit else None
    if open_ >= limit:
        return open_
    return limit if high >= limit else None


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


def _pct(order: Order) -> float:
    assert order.trail_percent is not None, "validated at submission"
    return order.trail_percent


def _price(value: float | None) -> float:
    assert value is not None, "validated at submission"
    return value
