"""What the fake Alpaca refuses, rule by rule, each from the doc page cited beside it.
Pure: a request in, ``(status, payload file)`` out, or None when the venue would take it."""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal, InvalidOperation
from typing import Any

__all__ = ["MAX_ORDERS_LIMIT", "list_orders_refusal", "order_refusal"]

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
    for name in ("limit_price", "stop_price"):
        price = _decimal(body.get(name))
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
