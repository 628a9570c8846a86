"""What cannot be an order at all: checked before admission, raised as ``OrderError`` (a
refusal of a valid order is a rejection instead, and the run goes on)."""

from __future__ import annotations

import math

from tradeloop.broker.orders import OrderRequest
from tradeloop.errors import OrderError
from tradeloop.events import OrderType, TimeInForce

__all__ = ["validate_order", "validate_request"]

_MARKET, _LIMIT, _STOP, _STOP_LIMIT, _TRAIL = (
    OrderType.MARKET,
    OrderType.LIMIT,
    OrderType.STOP,
    OrderType.STOP_LIMIT,
    OrderType.TRAILING_STOP,
)
_GTD = TimeInForce.GTD


def validate_order(
    qty: float,
    order_type: OrderType,
    limit_price: float | None,
    stop_price: float | None,
    fractional: bool,
    tif: TimeInForce = TimeInForce.GTC,
) -> None:
    """Raise ``OrderError`` for what cannot be an order at all (a rejection is for the rest)."""
    if tif is _GTD:
        raise OrderError(
            'a good-till-date order needs its date: pass expire_at= (tif="gtd" alone has none)'
        )
    if not 0 < qty < math.inf:
        raise OrderError(f"order quantity must be a positive number, got {qty}")
    if not fractional and qty != math.floor(qty):
        raise OrderError(
            f"quantity {qty} is fractional; whole shares are the default. "
            "Round it, or build the broker with fractional=True."
        )
    if order_type is _MARKET and limit_price is None and stop_price is None:
        return
    needs_limit = order_type is _LIMIT or order_type is _STOP_LIMIT
    needs_stop = order_type is _STOP or order_type is _STOP_LIMIT
    for needed, value, name in (
        (needs_limit, limit_price, "limit"),
        (needs_stop, stop_price, "stop"),
    ):
        if needed and not (value is not None and 0 < value < math.inf):
            raise OrderError(f"a {order_type} order needs a positive {name} price, got {value}")
        if not needed and value is not None:
            raise OrderError(f"a {order_type} order takes no {name} price (got {value})")


def validate_request(request: OrderRequest, fractional: bool) -> None:
    """``validate_order`` plus the options of a request: a trailing stop needs exactly one of
    ``trail_amount``/``trail_percent`` (and no stop price: it is set from the mark), GTD an
    ``expire_at``, sizing at the fill a positive fraction."""
    kind = request.order_type
    if kind is _TRAIL:
        amount, percent = request.trail_amount, request.trail_percent
        if (amount is None) == (percent is None):
            raise OrderError(
                "a trailing stop needs exactly one of trail_amount= (price distance) or "
                f"trail_percent= (fraction), got {amount} and {percent}"
            )
        for name, value in (("trail_amount", amount), ("trail_percent", percent)):
            if value is not None and not 0 < value < math.inf:
                raise OrderError(f"{name} must be a positive number, got {value}")
        if percent is not None and percent >= 1:
            raise OrderError(f"trail_percent is a fraction (0.05 = 5 %), got {percent}")
        if request.stop_price is not None or request.limit_price is not None:
            raise OrderError(
                "a trailing stop takes no stop or limit price: it starts from the latest close"
            )
        validate_order(request.qty, _MARKET, None, None, fractional)
    else:
        if request.trail_amount is not None or request.trail_percent is not None:
            raise OrderError(f"trail_amount/trail_percent belong to a trailing stop, not {kind}")
        if request.from_fill is None:
            validate_order(request.qty, kind, request.limit_price, request.stop_price, fractional)
        else:  # a leg priced from its parent's fill: the price comes at activation
            validate_order(request.qty, _MARKET, None, None, fractional)
    if (request.tif is TimeInForce.GTD) != (request.expire_at_ns is not None):
        raise OrderError(
            'good-till-date needs both tif="GTD" and expire_at= (a time); got tif='
            f"{request.tif.value!r}, expire_at_ns={request.expire_at_ns}"
        )
    if request.fill_percent is not None and not 0 < abs(request.fill_percent) < math.inf:
        raise OrderError(
            f"sizing at the fill needs a non-zero fraction, got {request.fill_percent}"
        )
