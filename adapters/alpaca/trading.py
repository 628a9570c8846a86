"""Alpaca's trading wire ⇄ tradeloop: orders, trade_updates frames, FILL and fee activities.
Pure: no I/O, no clock.

- ``encode_order`` conforms an order to the asset's ``InstrumentRules`` (quantity step,
  fractional → ``day``, price ticks) and writes amounts as exact decimal strings.
- Fills carry the venue's execution id as ``trade_id``: ``execution_id`` on trade_updates, the
  uuid after ``::`` of a FILL activity's ``id`` (``"{time}::{uuid}"``, the same execution).
  ``fill_key`` (order id + cumulative quantity after the fill, ``order.filled_qty`` on the
  stream, ``cum_qty`` on REST) names the same fill from both sides, for a cross-check.
- FEE/CFEE activities (regulatory and crypto fees) → the core's ``AccountFee`` with the
  activity id, its amount positive for a charge (the ledger takes it from cash).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

import orjson

from adapters.alpaca.codec import ts_ns_from_rfc3339
from adapters.alpaca.errors import trade_stream_error
from adapters.alpaca.order_classes import add_order_class, add_trail
from adapters.alpaca.schemas import OrderRequestJSON
from tradeloop.broker.instruments import InstrumentRules, Refused, conform, decimal_text
from tradeloop.errors import OrderError, VenueProtocolError
from tradeloop.events import OrderStatus, OrderType, Side, TimeInForce
from tradeloop.venue import AccountFee, Execution, VenueOrder, VenueOrderState

__all__ = [
    "FEE_ACTIVITY_TYPES",
    "StreamFill",
    "TradeStreamControl",
    "activity_execution_id",
    "alpaca_client_order_id",
    "decode_activity",
    "decode_fee",
    "decode_order",
    "decode_trade_update",
    "encode_order",
    "fill_key",
    "group_client_order_id",
]

FEE_ACTIVITY_TYPES = ("FEE", "CFEE")

# -- orders ------------------------------------------------------------------------------------

_CID_OK = re.compile(r"^[A-Za-z0-9_-]{1,48}\Z")
_CID_BAD_CHARS = re.compile(r"[^A-Za-z0-9_-]")


def alpaca_client_order_id(client_order_id: str) -> str:
    """Our client order id as Alpaca takes it: ≤ 48 chars of ``[A-Za-z0-9_-]``, deterministic.

    An id that already fits is kept as it is (the journal's ``tl`` + 30 hex do); any other is
    its readable part (bad characters → ``-``, cut to 31) + ``-`` + 16 hex of its BLAKE2b
    digest, so two different ids never share a venue id in practice.
    """
    if _CID_OK.match(client_order_id):
        return client_order_id
    digest = hashlib.blake2b(client_order_id.encode(), digest_size=8).hexdigest()
    return f"{_CID_BAD_CHARS.sub('-', client_order_id)[:31]}-{digest}"


def _positive(value: float | None, what: str) -> None:
    if value is None:
        return
    if not (isinstance(value, int | float) and 0 < value < float("inf")):
        raise OrderError(f"{what} must be a positive finite number, got {value!r}")


def encode_order(order: VenueOrder, rules: InstrumentRules) -> OrderRequestJSON:
    """``POST /v2/orders`` body for ``order`` conformed to ``rules``; ``OrderError`` (naming the
    rule) when it cannot be sent as asked."""
    where = f"order {order.client_order_id} ({order.asset_id})"
    trailing = order.order_type is OrderType.TRAILING_STOP
    if order.order_type not in _ORDER_TYPES and not trailing:
        raise OrderError(
            f"{where}: Alpaca has no {order.order_type} orders (never a plain order in its "
            "place). Fix: use a market, limit, stop, stop-limit or trailing stop"
        )
    if order.tif not in (TimeInForce.DAY, TimeInForce.GTC):
        raise OrderError(
            f"{where}: Alpaca has no time in force {order.tif} "
            "(https://docs.alpaca.markets/docs/orders-at-alpaca#time-in-force). Fix: use day or gtc"
        )
    needs_limit = order.order_type in (OrderType.LIMIT, OrderType.STOP_LIMIT)
    needs_stop = order.order_type in (OrderType.STOP, OrderType.STOP_LIMIT)
    if needs_limit and order.limit_price is None:
        raise OrderError(f"{where}: a {order.order_type} order needs a limit price")
    if needs_stop and order.stop_price is None:
        raise OrderError(f"{where}: a {order.order_type} order needs a stop price")
    _positive(order.qty, f"{where}: qty")
    if trailing:
        _positive(order.trail_percent, f"{where}: trail_percent")
        _positive(order.trail_amount, f"{where}: trail_amount")
    _positive(order.limit_price if needs_limit else None, f"{where}: limit price")
    _positive(order.stop_price if needs_stop else None, f"{where}: stop price")
    conformed = conform(
        rules,
        order.side,
        OrderType.STOP if trailing else order.order_type,
        order.qty,
        order.limit_price if needs_limit else None,
        order.stop_price if needs_stop else None,
        order.tif,
        None,
    )
    if isinstance(conformed, Refused):
        raise OrderError(f"{where}: {conformed}")
    body: OrderRequestJSON = {
        "symbol": order.asset_id,
        "qty": decimal_text(conformed.qty),
        "side": "buy" if order.side is Side.BUY else "sell",
        "type": "trailing_stop" if trailing else _ORDER_TYPES[order.order_type],
        "time_in_force": "day" if conformed.tif is TimeInForce.DAY else "gtc",
        "client_order_id": alpaca_client_order_id(order.client_order_id),
    }
    if conformed.limit_price is not None:
        body["limit_price"] = decimal_text(conformed.limit_price)
    if conformed.stop_price is not None:
        body["stop_price"] = decimal_text(conformed.stop_price)
    if trailing:
        add_trail(order, body)
    if order.order_class != "simple":
        add_order_class(order, rules, body)
        body["client_order_id"] = group_client_order_id(order)
    return body


def group_client_order_id(order: VenueOrder) -> str:
    """The Alpaca client id of a group's order: its head's, or for an OCO its target's (the
    order Alpaca places is the take-profit limit; the stop is its leg)."""
    if order.order_class == "oco":
        return alpaca_client_order_id(order.exit_leg_ids()[1])
    return alpaca_client_order_id(order.client_order_id)


_ORDER_TYPES: dict[OrderType, Any] = {
    OrderType.MARKET: "market",
    OrderType.LIMIT: "limit",
    OrderType.STOP: "stop",
    OrderType.STOP_LIMIT: "stop_limit",
}

# statuses of an order that can still fill: ACCEPTED, or PARTIALLY_FILLED once it has fills
_WORKING = frozenset(
    {
        "new",
        "accepted",
        "pending_new",
        "accepted_for_bidding",
        "partially_filled",
        "pending_cancel",  # a cancel was asked for; it can still fill until it is canceled
        "pending_replace",
        "done_for_day",  # no more fills today, still open
        "stopped",  # a fill is guaranteed
        "calculated",
        "held",
        "suspended",
    }
)
_FINAL = {
    "filled": OrderStatus.FILLED,
    "canceled": OrderStatus.CANCELLED,
    "expired": OrderStatus.EXPIRED,
    "rejected": OrderStatus.REJECTED,
    "replaced": OrderStatus.CANCELLED,  # this order is done; its replacement is another order
}


def decode_order(
    raw: Mapping[str, Any], our_ids: Mapping[str, str] | None = None
) -> VenueOrderState:
    """An Alpaca order object → ``VenueOrderState`` (``our_ids`` maps venue client ids back)."""
    try:
        status_text = str(raw["status"])
        filled = float(raw.get("filled_qty") or 0)
        cid = str(raw["client_order_id"])
        state = VenueOrderState(
            client_order_id=(our_ids or {}).get(cid, cid),
            venue_order_id=str(raw["id"]),
            asset_id=str(raw["symbol"]),
            side=Side(raw["side"]),
            qty=float(raw.get("qty") or 0),  # null for a notional order
            status=_status(status_text, filled),
            filled_qty=filled,
            avg_fill_price=float(raw.get("filled_avg_price") or 0),
            message=_order_message(raw, status_text),
        )
    except (KeyError, TypeError, ValueError) as err:
        raise VenueProtocolError(f"order not understood: {str(raw)[:160]} ({err!r})") from err
    return state


def _status(text: str, filled: float) -> OrderStatus:
    final = _FINAL.get(text)
    if final is not None:
        return final
    if text in _WORKING:
        return OrderStatus.PARTIALLY_FILLED if filled > 0 else OrderStatus.ACCEPTED
    return OrderStatus.UNKNOWN  # a status this adapter does not know: look again later


def _order_message(raw: Mapping[str, Any], status: str) -> str:
    if status == "replaced":
        return f"replaced by {raw.get('replaced_by')}"
    if status in _FINAL or status in _WORKING:
        return "" if status in ("new", "accepted", "filled", "partially_filled") else status
    return f"alpaca status {status!r} not understood; look the order up again"


# -- fills --------------------------------------------------------------------------------------


def fill_key(venue_order_id: str, cum_qty: object) -> tuple[str, Decimal]:
    """The order and its filled quantity after a fill: the same from the stream and REST."""
    try:
        return venue_order_id, Decimal(str(cum_qty)).normalize()
    except InvalidOperation as err:
        raise ValueError(f"cumulative quantity {cum_qty!r} is not a number") from err


@dataclass(frozen=True, slots=True)
class StreamFill:
    """A fill from trade_updates and its ``fill_key`` (to recognise it when REST reports it)."""

    execution: Execution
    key: tuple[str, Decimal]


@dataclass(frozen=True, slots=True)
class TradeStreamControl:
    """A trade_updates control frame: ``authorization`` (``ok``) or ``listening``."""

    stream: str
    ok: bool
    message: str = ""


def decode_trade_update(
    frame: str | bytes,
    our_ids: Mapping[str, str] | None = None,
    on_order: Callable[[Mapping[str, Any]], None] | None = None,
) -> StreamFill | VenueOrderState | TradeStreamControl | None:
    """One trade_updates frame: a fill → ``StreamFill``; another order event → its state.
    ``on_order`` sees the event's order object first (it names a group's legs in ``our_ids``).

    ``{"action":"error",...}`` raises ``ConnectionLostError`` naming it (the venue closes the
    connection after it: https://docs.alpaca.markets/docs/websocket-streaming#error-messages).
    """
    try:
        raw = orjson.loads(frame)
        if raw.get("action") == "error":
            raise trade_stream_error(raw.get("data"))
        stream, data = raw["stream"], raw["data"]
        if stream == "authorization":
            ok = data.get("status") == "authorized"
            return TradeStreamControl(stream, ok, str(data.get("message", "")))
        if stream == "listening":
            return TradeStreamControl(stream, "trade_updates" in (data.get("streams") or []))
        if stream != "trade_updates":
            return None
        order = data["order"]
        if on_order is not None:
            on_order(order)
        if data["event"] not in ("fill", "partial_fill"):
            return decode_order(order, our_ids)
        cid = str(order["client_order_id"])
        key = fill_key(str(order["id"]), order["filled_qty"])
        execution_id = data.get("execution_id")
        if not execution_id:  # documented on every fill; never drop a fill for its absence
            execution_id = "{}#{}".format(*key)
        execution = Execution(
            trade_id=str(execution_id),
            client_order_id=(our_ids or {}).get(cid, cid),
            asset_id=str(order["symbol"]),
            side=Side(order["side"]),
            qty=float(data["qty"]),
            price=float(data["price"]),
            commission=0.0,  # Alpaca charges no commission on equities; fees come as FEE
            ts_ns=ts_ns_from_rfc3339(data["timestamp"]),
            order_done=data["event"] == "fill",
        )
        return StreamFill(execution, key)
    except (orjson.JSONDecodeError, AttributeError, KeyError, TypeError, ValueError) as err:
        raise VenueProtocolError(
            f"trade update not understood: {str(frame)[:160]!r} ({err!r})"
        ) from err


def activity_execution_id(activity_id: str) -> str:
    """``"20210316183805102::8e5f…"`` → ``"8e5f…"``: the execution the activity records."""
    return activity_id.rsplit("::", 1)[-1]


def decode_activity(
    raw: Mapping[str, Any], client_order_id: str, our_ids: Mapping[str, str] | None = None
) -> Execution:
    """One FILL activity → ``Execution`` (activities name the order, not its client id)."""
    try:
        return Execution(
            trade_id=activity_execution_id(str(raw["id"])),
            client_order_id=(our_ids or {}).get(client_order_id, client_order_id),
            asset_id=str(raw["symbol"]),
            side=Side(raw["side"]),
            qty=float(raw["qty"]),
            price=float(raw["price"]),
            commission=0.0,
            ts_ns=ts_ns_from_rfc3339(raw["transaction_time"]),
            order_done=raw.get("type") == "fill",
        )
    except (KeyError, TypeError, ValueError) as err:
        raise VenueProtocolError(
            f"fill activity not understood: {str(raw)[:160]} ({err!r})"
        ) from err


# -- fees ---------------------------------------------------------------------------------------


def decode_fee(raw: Mapping[str, Any]) -> AccountFee:
    """A FEE/CFEE non-trade activity → the core's ``AccountFee``: ``amount`` positive for a
    charge (``net_amount`` is signed as cash moves: a fee is < 0, a refund > 0); the time is
    ``created_at`` or, for fees that carry only a ``date``, that day's midnight UTC; the
    description names the kind and the symbol (``FEE AAPL: REG/TAF fee``)."""
    try:
        kind = str(raw["activity_type"])
        if kind not in FEE_ACTIVITY_TYPES:
            raise ValueError(f"activity_type {kind!r} is not a fee")
        when = raw.get("created_at") or raw.get("transaction_time")
        if when:
            ts_ns = ts_ns_from_rfc3339(str(when))
        else:
            day = datetime.strptime(str(raw["date"]), "%Y-%m-%d").replace(tzinfo=UTC)
            ts_ns = int(day.timestamp()) * 1_000_000_000
        named = " ".join(part for part in (kind, str(raw.get("symbol") or "")) if part)
        return AccountFee(
            fee_id=str(raw["id"]),
            amount=-float(raw["net_amount"]),
            ts_ns=ts_ns,
            description=f"{named}: {raw.get('description') or ''}".rstrip(": "),
        )
    except (KeyError, TypeError, ValueError) as err:
        raise VenueProtocolError(
            f"fee activity not understood: {str(raw)[:160]} ({err!r})"
        ) from err
