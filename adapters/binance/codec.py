"""Binance spot, sans I/O: wire frames and payloads in, tradeloop values out (and back).

Pure: no sockets, no clock (times are passed in). Prices arrive as decimal strings and are
parsed explicitly; anything malformed raises ``VenueProtocolError`` naming the field.
"""

from __future__ import annotations

import hashlib
import hmac
import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any
from urllib.parse import quote

import orjson

from tradeloop.errors import (
    AdapterError,
    OrderRejectedError,
    OutcomeUnknownError,
    RateLimitError,
    VenueProtocolError,
)
from tradeloop.events import BarMessage, OrderStatus, OrderType, Side, TimeInForce
from tradeloop.venue import Execution, VenueOrder, VenueOrderState, VenueSnapshot

__all__ = [
    "ClientIds",
    "ClockSkewError",
    "ServerShutdown",
    "UnknownOrderError",
    "decode_klines",
    "decode_stream_frame",
    "decode_ws_api_frame",
    "error_for",
    "execution_from_report",
    "execution_from_trade",
    "order_params",
    "order_state",
    "query_string",
    "server_offset_ms",
    "sign",
    "signed_query",
    "snapshot_from",
    "subscription_id",
    "user_stream_subscription",
    "venue_client_id",
]

_MS = 1_000_000
_INF = math.inf


@dataclass(frozen=True, slots=True)
class ServerShutdown:
    """``{"e": "serverShutdown"}``: the server is about to go away; reconnect elsewhere."""

    ts_ms: int


class ClockSkewError(AdapterError):
    """-1021: our timestamp fell outside ``recvWindow``; the request was not accepted."""


class UnknownOrderError(AdapterError):
    """-2013 / -2011: Binance has no such order (for this symbol and client order id)."""


# ---------------------------------------------------------------- market data


def decode_stream_frame(frame: str | bytes) -> BarMessage | ServerShutdown | None:
    """A market-stream frame → a closed bar, a shutdown notice, or None (open kline, ack)."""
    try:
        raw = orjson.loads(frame)
    except orjson.JSONDecodeError as err:
        raise VenueProtocolError(f"binance stream: not JSON: {_clip(frame)} ({err})") from err
    try:  # the fast path: a well-formed combined-stream kline frame, checked in one go
        k = raw["data"]["k"]
        closed = k["x"]
        if closed is False:
            return None
        t, symbol = k["t"], k["s"]
        so, sh, sl, sc, sv = k["o"], k["h"], k["l"], k["c"], k["v"]
        o, h, low, c, v = float(so), float(sh), float(sl), float(sc), float(sv)
        if (
            closed is True
            and type(t) is int
            and type(symbol) is str
            and symbol
            and str is type(so) is type(sh) is type(sl) is type(sc) is type(sv)
            and 0.0 < low <= o <= h < _INF
            and low <= c <= h
            and 0.0 <= v < _INF
        ):
            return BarMessage(symbol, t * _MS, o, h, low, c, v)
    except (KeyError, TypeError, ValueError):
        pass
    return _decode_slowly(raw)


def _decode_slowly(raw: Any) -> BarMessage | ServerShutdown | None:
    """Everything but a well-formed combined kline: other frames, and naming what is wrong."""
    if not isinstance(raw, dict):
        raise VenueProtocolError(f"binance stream: expected a JSON object, got {_clip(raw)}")
    if "result" in raw and "id" in raw:
        return None  # the answer to a SUBSCRIBE / LIST_SUBSCRIPTIONS request
    data = raw.get("data", raw)  # combined streams wrap; raw /ws streams do not
    where = f"binance stream {raw.get('stream', '?')}"
    if not isinstance(data, dict):
        raise VenueProtocolError(f"{where}: data is {_clip(data)}, not an object")
    kind = data.get("e")
    if kind == "serverShutdown":
        return ServerShutdown(_int(data, "E", where))
    if kind != "kline":
        raise VenueProtocolError(f"{where}: unexpected event type {kind!r}")
    k = data.get("k")
    if not isinstance(k, dict):
        raise VenueProtocolError(f"{where}: k is {_clip(k)}, not an object")
    closed = k.get("x")
    if closed is False:
        return None
    if closed is not True:
        raise VenueProtocolError(f"{where}: k.x is {closed!r}, not true/false")
    symbol = k.get("s")
    if not isinstance(symbol, str) or not symbol:
        raise VenueProtocolError(f"{where}: k.s is {symbol!r}, not a symbol")
    t = _int(k, "t", f"{where} k")
    return _bar(symbol, t, [k.get(name) for name in "ohlcv"], f"{where} {symbol}@{t}: k.")


def decode_klines(rows: Any, symbol: str, closed_before_ms: int) -> list[BarMessage]:
    """GET /api/v3/klines rows → bars, keeping only klines closed before ``closed_before_ms``."""
    if not isinstance(rows, list):
        raise VenueProtocolError(f"binance klines {symbol}: expected a list, got {_clip(rows)}")
    bars = []
    for n, row in enumerate(rows):
        where = f"binance klines {symbol} row {n}"
        if not isinstance(row, list) or len(row) < 7:
            raise VenueProtocolError(f"{where}: expected [openTime, o, h, l, c, v, closeTime, ...]")
        t, close_t = row[0], row[6]
        if type(t) is not int or type(close_t) is not int:
            raise VenueProtocolError(f"{where}: open/close times {t!r}/{close_t!r} are not ms ints")
        if close_t >= closed_before_ms:
            continue  # the kline still forming
        bars.append(_bar(symbol, t, row[1:6], f"{where} ({symbol}@{t}): "))
    return bars


_OHLCV = ("o", "h", "l", "c", "v")


def _bar(symbol: str, t: int, values: list[Any], where: str) -> BarMessage:
    parsed = []
    for name, value in zip(_OHLCV, values, strict=True):
        if not isinstance(value, str):
            raise VenueProtocolError(f"{where}{name} is {value!r}, not a decimal string")
        try:
            number = float(value)
        except ValueError:
            raise VenueProtocolError(f"{where}{name} is {value!r}, not a decimal") from None
        if not math.isfinite(number) or number < 0:
            raise VenueProtocolError(f"{where}{name} is {value!r}, not a finite price")
        parsed.append(number)
    o, h, low, c, v = parsed
    if not 0.0 < low <= min(o, c) or max(o, c) > h:
        raise VenueProtocolError(f"{where}o/h/l/c are impossible: {values[:4]}")
    return BarMessage(symbol, t * _MS, o, h, low, c, v)


# ---------------------------------------------------------------- signing


def query_string(params: Mapping[str, Any]) -> str:
    """``k=v&k=v`` in the given order, percent-encoded (the exact text that is signed)."""
    pairs = (f"{quote(str(k), safe='')}={quote(_text(v), safe='')}" for k, v in params.items())
    return "&".join(pairs)


def sign(secret: str, payload: str) -> str:
    """hex(HMAC-SHA256(secret, payload)): Binance's signature for HMAC keys."""
    return hmac.new(secret.encode(), payload.encode(), hashlib.sha256).hexdigest()


def signed_query(
    params: Mapping[str, Any], secret: str, *, timestamp_ms: int, recv_window_ms: int
) -> str:
    """The query string of a SIGNED request: params, recvWindow, timestamp, signature."""
    payload = query_string({**params, "recvWindow": recv_window_ms, "timestamp": timestamp_ms})
    return f"{payload}&signature={sign(secret, payload)}"


def server_offset_ms(server_ms: int, sent_ms: int, received_ms: int) -> int:
    """Server clock minus ours, taking the request's midpoint as the server's reading time."""
    return server_ms - (sent_ms + received_ms) // 2


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return _decimal(value)
    return str(value)


def _decimal(value: float) -> str:
    """A float as Binance wants it: plain decimal, never ``1e-05``."""
    return format(Decimal(repr(value)), "f")


# ---------------------------------------------------------------- orders

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


_TYPES = {
    OrderType.MARKET: "MARKET",
    OrderType.LIMIT: "LIMIT",
    OrderType.STOP: "STOP_LOSS",  # market once triggered
    OrderType.STOP_LIMIT: "STOP_LOSS_LIMIT",
}


def order_params(order: VenueOrder, venue_id: str) -> dict[str, str]:
    """Our order → POST /api/v3/order params (unsigned); refuses what Binance cannot take."""
    where = f"binance order {order.client_order_id} ({order.asset_id})"
    if not (math.isfinite(order.qty) and order.qty > 0):
        raise OrderRejectedError(f"{where}: quantity {order.qty!r} must be positive")
    params = {
        "symbol": order.asset_id,
        "side": "BUY" if order.side == Side.BUY else "SELL",
        "type": _TYPES[order.order_type],
        "quantity": _decimal(order.qty),
        "newClientOrderId": venue_id,
        "newOrderRespType": "RESULT",
    }
    if order.order_type in (OrderType.LIMIT, OrderType.STOP_LIMIT):
        params["price"] = _decimal(_positive(order.limit_price, "limit_price", where))
        if order.tif != TimeInForce.GTC:
            raise OrderRejectedError(
                f"{where}: time in force {order.tif} does not exist on Binance spot "
                "(crypto trades around the clock): use GTC"
            )
        params["timeInForce"] = "GTC"
    if order.order_type in (OrderType.STOP, OrderType.STOP_LIMIT):
        params["stopPrice"] = _decimal(_positive(order.stop_price, "stop_price", where))
    return params


def _positive(value: float | None, name: str, where: str) -> float:
    if value is None or not (math.isfinite(value) and value > 0):
        raise OrderRejectedError(f"{where}: {name} {value!r} must be a positive price")
    return value


_STATUS = {
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
_SIDES = {"BUY": Side.BUY, "SELL": Side.SELL}


def order_state(payload: Any, ids: ClientIds) -> VenueOrderState:
    """An order JSON (POST/GET/DELETE /api/v3/order, openOrders rows) → our view of it."""
    if not isinstance(payload, dict):
        raise VenueProtocolError(f"binance order: expected an object, got {_clip(payload)}")
    # DELETE answers carry the cancel's own id in clientOrderId, the order's in origClientOrderId
    venue_id = payload.get("origClientOrderId") or payload.get("clientOrderId")
    where = f"binance order {venue_id}"
    if not isinstance(venue_id, str) or not venue_id:
        raise VenueProtocolError(f"{where}: clientOrderId is missing")
    status = _STATUS.get(payload.get("status", ""))
    if status is None:
        raise VenueProtocolError(f"{where}: status {payload.get('status')!r} is unknown")
    side = _SIDES.get(payload.get("side", ""))
    if side is None:
        raise VenueProtocolError(f"{where}: side {payload.get('side')!r} is not BUY/SELL")
    filled = _number(payload, "executedQty", where)
    quote_qty = _number(payload, "cummulativeQuoteQty", where)
    return VenueOrderState(
        client_order_id=ids.to_ours(venue_id),
        venue_order_id=str(_int(payload, "orderId", where)),
        asset_id=_str(payload, "symbol", where),
        side=side,
        qty=_number(payload, "origQty", where),
        status=status,
        filled_qty=filled,
        avg_fill_price=quote_qty / filled if filled > 0 else 0.0,
        message=f"binance {payload['status']}",
    )


# ---------------------------------------------------------------- fills and account


def execution_from_report(
    event: Any, ids: ClientIds, quote_asset: str, base_asset: str
) -> Execution | None:
    """An ``executionReport`` → one fill (x == TRADE), None for other order updates."""
    if not isinstance(event, dict) or event.get("e") != "executionReport":
        return None
    if event.get("x") != "TRADE":
        return None
    where = f"binance executionReport {event.get('c')}"
    symbol = _str(event, "s", where)
    side = _SIDES.get(event.get("S", ""))
    if side is None:
        raise VenueProtocolError(f"{where}: S is {event.get('S')!r}, not BUY/SELL")
    price = _number(event, "L", where)
    qty, commission = _net_of_fee(
        _number(event, "l", where), price, _number(event, "n", where), event.get("N"), base_asset
    )
    return Execution(
        trade_id=f"{symbol}:{_int(event, 't', where)}",
        client_order_id=ids.to_ours(_str(event, "c", where)),
        asset_id=symbol,
        side=side,
        qty=qty,
        price=price,
        commission=commission,
        ts_ns=_int(event, "T", where) * _MS,
        order_done=event.get("X") == "FILLED",
    )


def execution_from_trade(
    row: Any, client_order_id: str, quote_asset: str, base_asset: str
) -> Execution:
    """A GET /api/v3/myTrades row → one fill (``client_order_id`` from its ``orderId``)."""
    if not isinstance(row, dict):
        raise VenueProtocolError(f"binance myTrades: expected an object, got {_clip(row)}")
    where = f"binance myTrades {row.get('symbol')}#{row.get('id')}"
    symbol = _str(row, "symbol", where)
    price = _number(row, "price", where)
    buyer = row.get("isBuyer")
    if not isinstance(buyer, bool):
        raise VenueProtocolError(f"{where}: isBuyer is {buyer!r}, not a boolean")
    qty, commission = _net_of_fee(
        _number(row, "qty", where),
        price,
        _number(row, "commission", where),
        row.get("commissionAsset"),
        base_asset,
    )
    return Execution(
        trade_id=f"{symbol}:{_int(row, 'id', where)}",
        client_order_id=client_order_id,
        asset_id=symbol,
        side=Side.BUY if buyer else Side.SELL,
        qty=qty,
        price=price,
        commission=commission,
        ts_ns=_int(row, "time", where) * _MS,
    )


def _net_of_fee(
    qty: float, price: float, fee: float, fee_asset: Any, base_asset: str
) -> tuple[float, float]:
    """(quantity booked, commission in the quote asset) of one trade.

    A buy whose fee Binance takes in the base asset delivers ``qty − fee``: the book gets
    that quantity and the fee's value at the fill price as commission, so position and cash
    both equal the venue's (``(qty − fee) × price + fee × price = qty × price``). A fee in
    a third asset (BNB) cannot be converted here and is passed through in its own units.
    """
    if fee_asset == base_asset:
        return qty - fee, fee * price
    return qty, fee


def snapshot_from(
    account: Any,
    open_orders: Iterable[Any],
    symbols: Iterable[str],
    quote_asset: str,
    ids: ClientIds,
) -> VenueSnapshot:
    """GET /api/v3/account + openOrders → cash (quote free+locked) and base-asset positions."""
    if not isinstance(account, dict) or not isinstance(account.get("balances"), list):
        raise VenueProtocolError(f"binance account: no balances list in {_clip(account)}")
    held: dict[str, float] = {}
    for row in account["balances"]:
        asset = _str(row, "asset", "binance account balance")
        where = f"binance account balance {asset}"
        held[asset] = _number(row, "free", where) + _number(row, "locked", where)
    positions = {s: held.get(s[: -len(quote_asset)], 0.0) for s in symbols}
    return VenueSnapshot(
        cash=held.get(quote_asset, 0.0),
        positions=positions,
        open_orders=[order_state(row, ids) for row in open_orders],
    )


# ---------------------------------------------------------------- WebSocket API (user data)


def user_stream_subscription(
    request_id: str, api_key: str, secret: str, *, timestamp_ms: int, recv_window_ms: int
) -> str:
    """The ``userDataStream.subscribe.signature`` request (params signed in name order)."""
    params: dict[str, Any] = {
        "apiKey": api_key,
        "recvWindow": recv_window_ms,
        "timestamp": timestamp_ms,
    }
    params["signature"] = sign(secret, query_string(dict(sorted(params.items()))))
    request = {"id": request_id, "method": "userDataStream.subscribe.signature", "params": params}
    return orjson.dumps(request).decode()  # a text frame, as the WebSocket API expects


def decode_ws_api_frame(frame: str | bytes) -> dict[str, Any]:
    """A WebSocket API frame: a response ``{"id", "status", ...}`` or ``{"event": {...}}``."""
    try:
        raw = orjson.loads(frame)
    except orjson.JSONDecodeError as err:
        raise VenueProtocolError(f"binance ws-api: not JSON: {_clip(frame)} ({err})") from err
    if not isinstance(raw, dict) or not ("event" in raw or "id" in raw):
        raise VenueProtocolError(f"binance ws-api: neither a response nor an event: {_clip(raw)}")
    return raw


def subscription_id(response: Mapping[str, Any]) -> int:
    """The ``subscriptionId`` of a successful subscribe answer; the error otherwise."""
    if response.get("status") != 200:
        error = response.get("error") or {}
        raise error_for(
            int(response.get("status", 400)),
            orjson.dumps(error),
            what="binance userDataStream.subscribe.signature",
            retry_after=None,
            order_request=False,
        )
    result = response.get("result")
    if not isinstance(result, dict) or type(result.get("subscriptionId")) is not int:
        raise VenueProtocolError(
            f"binance ws-api: subscribe answer without subscriptionId: {_clip(response)}"
        )
    return int(result["subscriptionId"])


# ---------------------------------------------------------------- errors

# codes meaning the engine may have acted: "execution status unknown"
_STATUS_UNKNOWN = frozenset((-1006, -1007))


def error_for(
    status: int, body: str | bytes, *, what: str, retry_after: str | None, order_request: bool
) -> AdapterError:
    """An HTTP error answer → the exception it means (``what`` names the request)."""
    code, msg = _code_and_message(body)
    binance_code = f", Binance {code}" if code is not None else ""
    detail = f"{what}: HTTP {status}{binance_code}: {msg}"
    if status in (418, 429):
        default_s = 120.0 if status == 418 else 60.0
        wait_s = _seconds(retry_after, default_s)
        why = "IP banned for hammering after 429s" if status == 418 else "rate limit hit"
        return RateLimitError(f"{detail} ({why}; retry after {wait_s:g} s)", retry_after_s=wait_s)
    if status >= 500 or code in _STATUS_UNKNOWN:
        return OutcomeUnknownError(f"{detail} (execution status unknown: look the order up)")
    if code == -1021:
        return ClockSkewError(f"{detail} (clock skew: resync with GET /api/v3/time)")
    if code in (-2013, -2011):
        return UnknownOrderError(detail)
    if order_request:
        return OrderRejectedError(detail)
    return VenueProtocolError(detail)


def _code_and_message(body: str | bytes) -> tuple[int | None, str]:
    try:
        raw = orjson.loads(body)
    except orjson.JSONDecodeError:
        return None, _clip(body)
    if isinstance(raw, dict) and type(raw.get("code")) is int:
        return int(raw["code"]), str(raw.get("msg", ""))
    return None, _clip(raw)


def _seconds(header: str | None, default_s: float) -> float:
    try:
        value = float(header) if header is not None else default_s
    except ValueError:
        return default_s
    return value if math.isfinite(value) and value >= 0 else default_s


# ---------------------------------------------------------------- field readers


def _number(raw: Mapping[str, Any], name: str, where: str) -> float:
    value = raw.get(name)
    if not isinstance(value, str):
        raise VenueProtocolError(f"{where}: {name} is {value!r}, not a decimal string")
    try:
        number = float(value)
    except ValueError:
        raise VenueProtocolError(f"{where}: {name} is {value!r}, not a decimal") from None
    if not math.isfinite(number):
        raise VenueProtocolError(f"{where}: {name} is {value!r}, not finite")
    return number


def _int(raw: Mapping[str, Any], name: str, where: str) -> int:
    value = raw.get(name)
    if type(value) is not int:
        raise VenueProtocolError(f"{where}: {name} is {value!r}, not an integer")
    return value


def _str(raw: Any, name: str, where: str) -> str:
    value = raw.get(name) if isinstance(raw, dict) else None
    if not isinstance(value, str) or not value:
        raise VenueProtocolError(f"{where}: {name} is {value!r}, not a string")
    return value


def _clip(value: Any, n: int = 120) -> str:
    text = value.decode(errors="replace") if isinstance(value, bytes) else repr(value)
    return text if len(text) <= n else text[:n] + "…"
