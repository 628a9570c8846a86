"""Binance spot, sans I/O: market-data frames and klines in, bars out; the signing of REST
requests and of the WebSocket API's user-data subscription; WebSocket API frames decoded.

Pure: no sockets, no clock (times are passed in). Prices arrive as decimal strings and are
parsed explicitly; anything malformed raises ``VenueProtocolError`` naming the field. Orders
live in ``orders``, fills and fees in ``fills``, filters in ``rules``, error answers in
``errors``.
"""

from __future__ import annotations

import hashlib
import hmac
import math
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any
from urllib.parse import quote

import orjson

from adapters.binance.errors import ws_error_for
from adapters.binance.fields import clip, integer
from tradeloop.errors import VenueProtocolError
from tradeloop.events import BarMessage

__all__ = [
    "ServerShutdown",
    "decode_klines",
    "decode_stream_frame",
    "decode_ws_api_frame",
    "query_string",
    "server_offset_ms",
    "sign",
    "signed_query",
    "subscription_id",
    "user_stream_subscription",
]

_MS = 1_000_000
_INF = math.inf


@dataclass(frozen=True, slots=True)
class ServerShutdown:
    """``{"e": "serverShutdown"}``: the server is about to go away; reconnect elsewhere."""

    ts_ms: int


# ---------------------------------------------------------------- market data


def decode_stream_frame(frame: str | bytes) -> BarMessage | ServerShutdown | None:
    """A market-stream frame → a closed bar, a shutdown notice, or None (open kline, ack)."""
    try:
        raw = orjson.loads(frame)
    except orjson.JSONDecodeError as err:
        raise VenueProtocolError(f"binance stream: not JSON: {clip(frame)} ({err})") from err
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
        raise VenueProtocolError(f"binance stream: expected a JSON object, got {clip(raw)}")
    if "result" in raw and "id" in raw:
        return None  # the answer to a SUBSCRIBE / LIST_SUBSCRIPTIONS request
    data = raw.get("data", raw)  # combined streams wrap; raw /ws streams do not
    where = f"binance stream {raw.get('stream', '?')}"
    if not isinstance(data, dict):
        raise VenueProtocolError(f"{where}: data is {clip(data)}, not an object")
    kind = data.get("e")
    if kind == "serverShutdown":
        return ServerShutdown(integer(data, "E", where))
    if kind != "kline":
        raise VenueProtocolError(f"{where}: unexpected event type {kind!r}")
    k = data.get("k")
    if not isinstance(k, dict):
        raise VenueProtocolError(f"{where}: k is {clip(k)}, not an object")
    closed = k.get("x")
    if closed is False:
        return None
    if closed is not True:
        raise VenueProtocolError(f"{where}: k.x is {closed!r}, not true/false")
    symbol = k.get("s")
    if not isinstance(symbol, str) or not symbol:
        raise VenueProtocolError(f"{where}: k.s is {symbol!r}, not a symbol")
    t = integer(k, "t", f"{where} k")
    return _bar(symbol, t, [k.get(name) for name in "ohlcv"], f"{where} {symbol}@{t}: k.")


def decode_klines(rows: Any, symbol: str, closed_before_ms: int) -> list[BarMessage]:
    """GET /api/v3/klines rows → bars, keeping only klines closed before ``closed_before_ms``."""
    if not isinstance(rows, list):
        raise VenueProtocolError(f"binance klines {symbol}: expected a list, got {clip(rows)}")
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
        parsed.append(number)
    # whether the values make a possible bar is the one set of bar rules' call (the runtime
    # checks every bar from every source: data.validation.BAR_RULES), not this codec's
    o, h, low, c, v = parsed
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
    if isinstance(value, float | Decimal):
        # a float's repr (0.30000000000000004, 1e-05) is refused by Binance (-1111): amounts
        # are conformed to the symbol's filters and sent as exact decimal strings
        raise TypeError(
            f"{value!r}: send amounts as exact decimal strings (rules.conformed_params)"
        )
    return str(value)


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
        raise VenueProtocolError(f"binance ws-api: not JSON: {clip(frame)} ({err})") from err
    if not isinstance(raw, dict) or not ("event" in raw or "id" in raw):
        raise VenueProtocolError(f"binance ws-api: neither a response nor an event: {clip(raw)}")
    return raw


def subscription_id(response: Mapping[str, Any]) -> int:
    """The ``subscriptionId`` of a successful subscribe answer; the error map's error otherwise."""
    if response.get("status") != 200:
        raise ws_error_for(
            response, what="binance userDataStream.subscribe.signature", request="subscribe"
        )
    result = response.get("result")
    if not isinstance(result, dict) or type(result.get("subscriptionId")) is not int:
        raise VenueProtocolError(
            f"binance ws-api: subscribe answer without subscriptionId: {clip(response)}"
        )
    return int(result["subscriptionId"])
