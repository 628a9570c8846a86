"""Binance orders, sans I/O: our client order ids as Binance's, and order payloads as our view.

Pure: no I/O. The answers read here are those of POST/GET/DELETE /api/v3/order and the rows of
openOrders/allOrders (https://developers.binance.com/docs/binance-spot-api-docs/rest-api/trading-endpoints):
an ``ACK`` answer (no status yet) is an accepted order; a ``cummulativeQuoteQty`` below 0 is
Binance's "not available for this historical order" and gives no average price, never a
negative one.
"""

from __future__ import annotations

import hashlib
import re
from typing import Any

from adapters.binance.fields import clip, integer, number, text
from tradeloop.errors import VenueProtocolError
from tradeloop.events import OrderStatus, Side
from tradeloop.venue import VenueOrderState

__all__ = ["SIDES", "STATUSES", "ClientIds", "list_states", "order_state", "venue_client_id"]

_VENUE_CID = re.compile(r"[a-zA-Z0-9_-]{1,36}")


def venue_client_id(client_order_id: str) -> str:
    """Our client order id as a Binance ``newClientOrderId`` (``^[a-zA-Z0-9-_]{1,36}$``).

    Ids that already fit (the journal's ``tl`` + 30 hex) pass unchanged; others map to
    ``tlx`` + 33 hex digits of their SHA-256: deterministic, so a restart sends the same id.
    """
    if _VENUE_CID.fullmatch(client_order_id):
        return client_order_id
    return "tlx" + hashlib.sha256(client_order_id.encode()).hexdigest()[:33]


class ClientIds:
    """Our client order ids ⇄ Binance's (identity for ids that already fit)."""

    def __init__(self) -> None:
        self._ours: dict[str, str] = {}

    def to_venue(self, client_order_id: str) -> str:
        venue_id = venue_client_id(client_order_id)
        if venue_id != client_order_id:
            self._ours[venue_id] = client_order_id
        return venue_id

    def to_ours(self, venue_id: str) -> str:
        return self._ours.get(venue_id, venue_id)


STATUSES = {
    "NEW": OrderStatus.ACCEPTED,
    "PENDING_NEW": OrderStatus.ACCEPTED,
    "PARTIALLY_FILLED": OrderStatus.PARTIALLY_FILLED,
    "FILLED": OrderStatus.FILLED,
    "CANCELED": OrderStatus.CANCELLED,
    "PENDING_CANCEL": OrderStatus.ACCEPTED,  # unused by Binance; still open
    "REJECTED": OrderStatus.REJECTED,
    "EXPIRED": OrderStatus.EXPIRED,
    "EXPIRED_IN_MATCH": OrderStatus.EXPIRED,  # self-trade prevention
}
SIDES = {"BUY": Side.BUY, "SELL": Side.SELL}


def order_state(payload: Any, ids: ClientIds, *, sent: Any = None) -> VenueOrderState:
    """An order JSON (POST/GET/DELETE /api/v3/order, openOrders rows) → our view of it.

    ``sent``: the params of the POST, which an ``ACK`` answer (symbol, orderId, clientOrderId,
    transactTime only) needs for side and quantity.
    """
    if not isinstance(payload, dict):
        raise VenueProtocolError(f"binance order: expected an object, got {clip(payload)}")
    # DELETE answers carry the cancel's own id in clientOrderId, the order's in origClientOrderId
    venue_id = payload.get("origClientOrderId") or payload.get("clientOrderId")
    where = f"binance order {venue_id}"
    if not isinstance(venue_id, str) or not venue_id:
        raise VenueProtocolError(f"{where}: clientOrderId is missing")
    if "status" not in payload and isinstance(sent, dict):
        return _acknowledged(payload, sent, ids.to_ours(venue_id), where)
    status = STATUSES.get(payload.get("status", ""))
    if status is None:
        raise VenueProtocolError(f"{where}: status {payload.get('status')!r} is unknown")
    side = SIDES.get(payload.get("side", ""))
    if side is None:
        raise VenueProtocolError(f"{where}: side {payload.get('side')!r} is not BUY/SELL")
    filled = number(payload, "executedQty", where)
    quote_qty = number(payload, "cummulativeQuoteQty", where)
    message = f"binance {payload['status']}"
    if quote_qty < 0:
        message += " (cummulativeQuoteQty < 0: Binance has no average price for this order)"
    return VenueOrderState(
        client_order_id=ids.to_ours(venue_id),
        venue_order_id=str(integer(payload, "orderId", where)),
        asset_id=text(payload, "symbol", where),
        side=side,
        qty=number(payload, "origQty", where),
        status=status,
        filled_qty=filled,
        avg_fill_price=quote_qty / filled if filled > 0 and quote_qty > 0 else 0.0,
        message=message,
    )


def _acknowledged(payload: Any, sent: Any, cid: str, where: str) -> VenueOrderState:
    side = SIDES.get(sent.get("side", ""))
    if side is None:
        raise VenueProtocolError(f"{where}: ACK for a request without a side")
    return VenueOrderState(
        client_order_id=cid,
        venue_order_id=str(integer(payload, "orderId", where)),
        asset_id=text(payload, "symbol", where),
        side=side,
        qty=number(sent, "quantity", where),
        status=OrderStatus.ACCEPTED,
        message="binance ACK (accepted; its fills come from the user data stream)",
    )


def list_states(payload: Any, ids: ClientIds, order: Any) -> list[VenueOrderState]:
    """An order list's answer (POST /api/v3/orderList/oco|oto|otoco) → each order's state:
    from ``orderReports`` (RESULT, FULL), else from ``orders`` (ACK: accepted, with the
    side and quantity of the request; a pending order's side may differ, never read)."""
    if not isinstance(payload, dict):
        raise VenueProtocolError(f"binance order list: expected an object, got {clip(payload)}")
    reports = payload.get("orderReports")
    if isinstance(reports, list) and reports:
        return [order_state(report, ids) for report in reports]
    rows = payload.get("orders")
    if not isinstance(rows, list) or not rows:
        raise VenueProtocolError(f"binance order list: no orders in {clip(payload)}")
    sent = {"side": "BUY" if order.side is Side.BUY else "SELL", "quantity": str(order.qty)}
    return [order_state(row, ids, sent=sent) for row in rows]
