"""What the fake Alpaca refuses, rule by rule, each from the doc page cited beside it.
Pure: a request in, ``(status, payload file)`` out, or None when the venue would take it."""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal, InvalidOperation
from typing import Any

__all__ = ["MAX_ORDERS_LIMIT", "class_refusal", "list_orders_refusal", "order_refusal"]

MAX_ORDERS_LIMIT = 500  # https://docs.alpaca.markets/reference/getallorders (limit: max 500)
ORDER_STATUSES = ("open", "closed", "all")  # the same page: status = open | closed | all
MAX_CLIENT_ORDER_ID = 48  # https://docs.alpaca.markets/reference/postorder


def _decimal(value: Any) -> Decimal | None:
    try:
        return None if value is None else Decimal(str(value))
    except InvalidOperation:
        return None


def order_refusal(
    body: Mapping[str, Any], asset: Mapping[str, Any] | None, client_ids: set[str]
) -> tuple[int, str] | None:
    """The answer Alpaca gives a ``POST /v2/orders`` it refuses (None: it takes it)."""
    if asset is None:  # https://docs.alpaca.markets/reference/postorder: 422 for a bad symbol
        return 422, "http_error_404_asset.json"
    cid = body.get("client_order_id")
    if cid is not None and len(str(cid)) > MAX_CLIENT_ORDER_ID:
        return 422, "http_error_422_cid_too_long.json"
    if cid is not None and cid in client_ids:  # unique per account (same page)
        return 422, "http_error_422_unique.json"
    qty = _decimal(body.get("qty"))
    if qty is None or qty <= 0:
        return 422, "http_error_422_qty.json"
    if qty != qty.to_integral_value():
        # https://docs.alpaca.markets/docs/fractional-trading: only fractionable assets,
        # and only with time_in_force=day
        if not asset.get("fractionable"):
            return 422, "http_error_422_not_fractionable.json"
        if body.get("time_in_force") != "day":
            return 422, "http_error_422_fractional_gtc.json"
    take_profit, stop_loss = body.get("take_profit") or {}, body.get("stop_loss") or {}
    prices = [body.get(k) for k in ("limit_price", "stop_price", "trail_price")]
    prices += [take_profit.get("limit_price"), stop_loss.get("stop_price")]
    for value in [*prices, stop_loss.get("limit_price")]:
        price = _decimal(value)
        if price is None:
            continue
        # https://docs.alpaca.markets/docs/orders-at-alpaca#sub-penny-increments-for-limit-orders
        tick = Decimal("0.01") if price >= 1 else Decimal("0.0001")
        if price % tick != 0:
            return 422, "http_error_422_subpenny.json"
    return None


def list_orders_refusal(query: Mapping[str, str]) -> tuple[int, str] | None:
    """``GET /v2/orders`` parameters Alpaca refuses (https://docs.alpaca.markets/reference/getallorders)."""
    if query.get("status", "open") not in ORDER_STATUSES:
        return 422, "http_error_422_order_status.json"
    try:
        limit = int(query.get("limit", "50"))
    except ValueError:
        return 422, "http_error_422_order_limit.json"
    if not 1 <= limit <= MAX_ORDERS_LIMIT:
        return 422, "http_error_422_order_limit.json"
    return None


_BASE_RULES = {  # (side, leg) → the price relation it must keep to the base price, its refusal
    ("buy", "take_profit"): (1, "http_error_422_take_profit_base.json"),
    ("buy", "stop_loss"): (-1, "http_error_422_stop_loss_base.json"),
    ("sell", "take_profit"): (-1, "http_error_422_take_profit_base_short.json"),
    ("sell", "stop_loss"): (1, "http_error_422_stop_loss_base_short.json"),
}
_PENNY = Decimal("0.01")


def class_refusal(body: Mapping[str, Any], last_price: float | None) -> tuple[int, str] | None:
    """What Alpaca refuses of a trailing stop or an order class (None: it takes it).

    https://docs.alpaca.markets/docs/orders-at-alpaca (trailing stops, bracket, OCO, OTO):
    a ``trailing_stop`` takes one of ``trail_price`` / ``trail_percent``; an order class
    goes ``day`` or ``gtc``; a bracket has both exits, an OTO one, an OCO both and is a
    ``limit`` order. The exits keep a cent from the base price, which is the entry's limit
    price or, for a market entry, the last price (Alpaca's answer, quoted:
    https://forum.alpaca.markets/t/take-profit-limit-price-must-be-base-price-0-01/13049):
    a buy's take-profit ≥ base + 0.01 and its stop ≤ base − 0.01, a sell's the mirror.
    """
    if body.get("type") == "trailing_stop":
        trails = [body.get(k) is not None for k in ("trail_price", "trail_percent")]
        if sum(trails) != 1 or body.get("stop_price") is not None:
            return 422, "http_error_422_trail.json"
    kind = body.get("order_class") or "simple"
    if kind == "simple":
        return None
    if body.get("time_in_force") not in ("day", "gtc"):
        return 422, "http_error_422_order_class_tif.json"
    exits = {leg: body.get(leg) for leg in ("take_profit", "stop_loss") if body.get(leg)}
    if kind == "bracket" and len(exits) != 2:
        return 422, "http_error_422_order_class_legs.json"
    if kind == "oto" and len(exits) != 1:
        return 422, "http_error_422_oto_legs.json"
    if kind == "oco":
        if body.get("type") != "limit" or len(exits) != 2:
            return 422, "http_error_422_oco_type.json"
        return _oco_relation(body)
    entry = _decimal(body.get("limit_price")) if body.get("type") == "limit" else None
    base = entry if entry is not None else _decimal(last_price)
    if base is None:
        return None  # no quote yet: nothing to compare with
    for leg, values in exits.items():
        direction, refusal = _BASE_RULES[(str(body.get("side")), leg)]
        price = _decimal(values.get("limit_price" if leg == "take_profit" else "stop_price"))
        if price is None or (price - base) * direction < _PENNY:
            return 422, refusal
    return None


def _oco_relation(body: Mapping[str, Any]) -> tuple[int, str] | None:
    """An OCO exits a position: a sell's take-profit lies above its stop, a buy's below."""
    target = _decimal(body["take_profit"].get("limit_price"))
    stop = _decimal(body["stop_loss"].get("stop_price"))
    if target is None or stop is None:
        return 422, "http_error_422_oco_type.json"
    direction = 1 if body.get("side") == "sell" else -1
    if (target - stop) * direction < _PENNY:
        return 422, "http_error_422_oco_prices.json"
    return None
