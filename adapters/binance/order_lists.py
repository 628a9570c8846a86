"""Binance spot's order lists and trailing stops on the wire. Pure: an order in, the request out.

From https://developers.binance.com/docs/binance-spot-api-docs/rest-api/trading-endpoints:

- an **OCO** is ``POST /api/v3/orderList/oco``: an *above* and a *below* order of one side
  and quantity. A SELL exits a long: above the take-profit ``LIMIT_MAKER`` (``abovePrice``),
  below the stop ``STOP_LOSS`` (``belowStopPrice``; ``STOP_LOSS_LIMIT`` with ``belowPrice``
  and ``belowTimeInForce``). A BUY exits a short: the stop above, the ``LIMIT_MAKER`` below.
- a **bracket** is ``POST /api/v3/orderList/otoco``: a *working* order (``LIMIT`` or
  ``LIMIT_MAKER`` only), and a *pending* above/below pair as in an OCO, on the other side,
  placed by the venue once the working order is fully filled.
- an **OTO** is ``POST /api/v3/orderList/oto``: a working ``LIMIT`` and one pending order.
- a **trailing stop** is a ``STOP_LOSS`` with ``trailingDelta`` in basis points (10,000 ×
  ``trail_percent``) and no ``stopPrice``: it trails from the moment it is placed. A trail
  in price units (``trail_amount``) has no Binance form: refused.

Every order of a list carries our client order id (``aboveClientOrderId``,
``workingClientOrderId``, ...: ``leg_client_order_ids`` is stop first, then target), so each
leg's execution reports come back under its own id. A group whose entry is not a limit
order has no Binance form: ``takes`` says so and the runtime emulates it instead.
"""

from __future__ import annotations

from typing import Any

from adapters.binance.orders import ClientIds
from tradeloop.broker.instruments import InstrumentRules, Refused, conform, decimal_text
from tradeloop.errors import OrderRejectedError
from tradeloop.events import OrderType, Side, TimeInForce
from tradeloop.venue import VenueOrder

__all__ = ["LIST_PATHS", "list_params", "takes", "trailing_params"]

LIST_PATHS = {
    "oco": "/api/v3/orderList/oco",
    "bracket": "/api/v3/orderList/otoco",
    "oto": "/api/v3/orderList/oto",
}
_BPS = 10_000


def takes(order: VenueOrder) -> bool:
    """Binance has a form for this group: an OCO always, a bracket or OTO with a limit entry."""
    if order.order_class == "oco":
        return True
    return order.order_class in LIST_PATHS and order.order_type is OrderType.LIMIT


def trailing_params(order: VenueOrder, venue_id: str, rules: InstrumentRules) -> dict[str, str]:
    """POST /api/v3/order params of a trailing stop (see the module rules)."""
    where = f"binance order {order.client_order_id} ({order.asset_id})"
    if order.trail_percent is None or order.trail_amount is not None:
        raise OrderRejectedError(
            f"{where}: Binance trails by a percentage only (trailingDelta, in basis points), "
            "not by a price amount. Fix: give trail_percent="
        )
    if order.tif is TimeInForce.GTD:
        raise OrderRejectedError(f"{where}: Binance spot has no good-till-date orders. Fix: GTC")
    qty, _, _ = _conformed(rules, order.side, OrderType.STOP, order, None, None)
    return {
        "symbol": order.asset_id,
        "side": _side(order.side),
        "type": "STOP_LOSS",
        "quantity": qty,
        "trailingDelta": str(round(order.trail_percent * _BPS)),
        "newClientOrderId": venue_id,
        "newOrderRespType": "RESULT",
    }


def list_params(
    order: VenueOrder, ids: ClientIds, rules: InstrumentRules
) -> tuple[str, dict[str, str]]:
    """The path and params of a group sent whole (``OrderRejectedError`` when it has no form)."""
    where = f"binance order list {order.list_client_order_id} ({order.asset_id})"
    if not takes(order):
        raise OrderRejectedError(
            f"{where}: Binance has no {order.order_class} with a {order.order_type} entry "
            "(a working order is LIMIT or LIMIT_MAKER). Fix: use a limit entry"
        )
    if order.tif is TimeInForce.GTD:
        raise OrderRejectedError(f"{where}: Binance spot has no good-till-date orders. Fix: GTC")
    stop_cid, target_cid = order.exit_leg_ids()
    params: dict[str, str] = {
        "symbol": order.asset_id,
        "listClientOrderId": ids.to_venue(order.list_client_order_id),
        "newOrderRespType": "RESULT",
    }
    if order.order_class == "oco":
        qty, _, _ = _conformed(rules, order.side, OrderType.LIMIT, order, None, None)
        params.update(side=_side(order.side), quantity=qty)
        params.update(_pair("", order.side, order, rules, ids, stop_cid, target_cid))
        return LIST_PATHS["oco"], params
    qty, price, _ = _conformed(rules, order.side, OrderType.LIMIT, order, order.limit_price, None)
    exit_side = Side.SELL if order.side is Side.BUY else Side.BUY
    params.update(
        workingType="LIMIT",
        workingSide=_side(order.side),
        workingClientOrderId=ids.to_venue(order.client_order_id),
        workingPrice=price,
        workingQuantity=qty,
        workingTimeInForce="GTC",
        pendingSide=_side(exit_side),
        pendingQuantity=qty,
    )
    if order.order_class == "bracket":
        params.update(_pair("pending", exit_side, order, rules, ids, stop_cid, target_cid))
        return LIST_PATHS["bracket"], params
    one = _stop(order, exit_side, rules) if stop_cid else _target(order, exit_side, rules)
    params.update({f"pending{k}": v for k, v in one.items()})
    params["pendingClientOrderId"] = ids.to_venue(stop_cid or target_cid)
    return LIST_PATHS["oto"], params


def _pair(
    prefix: str,
    side: Side,
    order: VenueOrder,
    rules: InstrumentRules,
    ids: ClientIds,
    stop_cid: str,
    target_cid: str,
) -> dict[str, str]:
    """An above/below pair: a SELL's target above and stop below, a BUY's the other way."""
    stop = dict(_stop(order, side, rules), ClientOrderId=ids.to_venue(stop_cid))
    target = dict(_target(order, side, rules), ClientOrderId=ids.to_venue(target_cid))
    above, below = (target, stop) if side is Side.SELL else (stop, target)
    out = {}
    for where, fields in (("Above", above), ("Below", below)):
        name = f"{prefix}{where}" if prefix else where.lower()
        out.update({f"{name}{key}": value for key, value in fields.items()})
    return out


def _stop(order: VenueOrder, side: Side, rules: InstrumentRules) -> dict[str, str]:
    if order.stop_loss_stop is None:
        raise OrderRejectedError(f"binance order {order.client_order_id}: no stop-loss level")
    if order.stop_loss_limit is None:
        _, _, stop = _conformed(rules, side, OrderType.STOP, order, None, order.stop_loss_stop)
        return {"Type": "STOP_LOSS", "StopPrice": stop}
    _, limit, stop = _conformed(
        rules, side, OrderType.STOP_LIMIT, order, order.stop_loss_limit, order.stop_loss_stop
    )
    return {"Type": "STOP_LOSS_LIMIT", "StopPrice": stop, "Price": limit, "TimeInForce": "GTC"}


def _target(order: VenueOrder, side: Side, rules: InstrumentRules) -> dict[str, str]:
    if order.take_profit_limit is None:
        raise OrderRejectedError(f"binance order {order.client_order_id}: no take-profit level")
    _, limit, _ = _conformed(rules, side, OrderType.LIMIT, order, order.take_profit_limit, None)
    return {"Type": "LIMIT_MAKER", "Price": limit}


def _conformed(
    rules: InstrumentRules,
    side: Side,
    kind: OrderType,
    order: VenueOrder,
    limit: float | None,
    stop: float | None,
) -> tuple[str, str, str]:
    """(quantity, limit, stop) on the symbol's step and tick, as text ("" for no price)."""
    result = conform(rules, side, kind, order.qty, limit, stop, TimeInForce.GTC, None)
    if isinstance(result, Refused):
        raise OrderRejectedError(
            f"binance order {order.client_order_id} ({order.asset_id}): refused before "
            f"sending: {result}"
        )
    texts: list[Any] = [result.qty, result.limit_price, result.stop_price]
    qty, price, trigger = ("" if t is None else decimal_text(t) for t in texts)
    return qty, price, trigger


def _side(side: Side) -> str:
    return "BUY" if side is Side.BUY else "SELL"
