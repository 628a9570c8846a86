"""Alpaca frames ⇄ tradeloop events. Pure: no I/O, no clock (time is passed in).

- Market data stream frames (JSON arrays, possibly batched) → ``BarMessage`` for ``"b"``,
  ``BarCorrection`` for ``"u"``, control events, and ``StreamError`` (``stream_error`` maps
  its code onto the error tree: 406 → ``ConnectionLimitError``, 401/402 → ``AlpacaAuthError``).
- ``CorrectionHold``: how ``"u"`` corrections reach the runtime (see its docstring).
- REST bar pages → ``BarMessage`` lists in time order; our orders → Alpaca JSON; Alpaca
  orders → ``VenueOrderState``; trade_updates fills and FILL activities → ``Execution``.
"""

from __future__ import annotations

import hashlib
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson

from adapters.alpaca.schemas import OrderRequestJSON
from tradeloop.errors import (
    AdapterError,
    ConfigError,
    ConnectionLostError,
    OrderError,
    VenueProtocolError,
)
from tradeloop.events import BarMessage, OrderStatus, OrderType, Side, TimeInForce
from tradeloop.venue import Execution, VenueOrder, VenueOrderState

__all__ = [
    "AlpacaAuthError",
    "AuthTimeoutError",
    "Authenticated",
    "BarCorrection",
    "Connected",
    "ConnectionLimitError",
    "CorrectionHold",
    "DataStreamDecoder",
    "StreamError",
    "Subscribed",
    "SubscriptionLimitError",
    "TradeStreamControl",
    "alpaca_client_order_id",
    "decode_activity",
    "decode_bars_page",
    "decode_order",
    "decode_trade_update",
    "encode_order",
    "rfc3339",
    "stream_error",
    "trade_id",
    "ts_ns_from_rfc3339",
]


# -- errors -----------------------------------------------------------------------------------


class ConnectionLimitError(ConnectionLostError):
    """406: another connection to this feed is open on the account; back off for long."""


class AuthTimeoutError(ConnectionLostError):
    """404: the socket was not authenticated in time (the venue closes it)."""


class AlpacaAuthError(ConfigError):
    """401/402 (or an unauthorized trading stream / REST 401/403): the keys do not work."""


class SubscriptionLimitError(ConfigError):
    """405/409: the plan does not allow this many symbols or this feed."""


_AUTH_HINT = (
    "check APCA_API_KEY_ID / APCA_API_SECRET_KEY (paper and live accounts have separate "
    "keys; the paper keys go with https://paper-api.alpaca.markets)"
)


def stream_error(code: int, msg: str) -> AdapterError | ConfigError:
    """The error for a data stream ``{"T":"error"}`` message (fatal ones are ConfigErrors)."""
    where = f"alpaca data stream error {code} ({msg})"
    if code == 406:
        return ConnectionLimitError(
            f"{where}: another connection to this feed is open on the account (one per feed "
            "on most plans); backing off before reconnecting"
        )
    if code in (401, 402):
        return AlpacaAuthError(f"{where}: {_AUTH_HINT}")
    if code == 404:
        return AuthTimeoutError(f"{where}: authentication took too long; reconnecting")
    if code == 405:
        return SubscriptionLimitError(f"{where}: fewer symbols, or a plan that allows more")
    if code == 409:
        return SubscriptionLimitError(f'{where}: the plan does not include this feed; use "iex"')
    if code in (400, 403):
        return VenueProtocolError(f"{where}: the adapter sent something out of order (a bug)")
    return ConnectionLostError(f"{where}: reconnecting")  # 407 slow client, 500 internal, …


# -- time ---------------------------------------------------------------------------------------

_RFC3339 = re.compile(
    r"(\d{4})-(\d\d)-(\d\d)[Tt ](\d\d):(\d\d):(\d\d)(?:\.(\d{1,9}))?(Z|z|[+-]\d\d:\d\d)\Z"
)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_ts_cache: dict[str, int] = {}


def ts_ns_from_rfc3339(text: str) -> int:
    """``"2021-02-22T19:15:00Z"`` → nanoseconds since the epoch (exact, nanosecond fractions)."""
    cached = _ts_cache.get(text)
    if cached is not None:
        return cached
    match = _RFC3339.match(text) if isinstance(text, str) else None
    if match is None:
        raise VenueProtocolError(f"not an RFC 3339 time: {text!r}")
    year, month, day, hour, minute, second, frac, zone = match.groups()
    try:
        moment = datetime.fromisoformat(
            f"{year}-{month}-{day}T{hour}:{minute}:{second}"
            + ("+00:00" if zone in ("Z", "z") else zone)
        )
    except ValueError as err:
        raise VenueProtocolError(f"not an RFC 3339 time: {text!r} ({err})") from err
    seconds = (moment - _EPOCH) // _ONE_SECOND
    ts_ns = seconds * 1_000_000_000 + int((frac or "").ljust(9, "0"))
    if len(_ts_cache) > 8192:  # bars share their minute: a small cache saves most parsing
        _ts_cache.clear()
    _ts_cache[text] = ts_ns
    return ts_ns


_ONE_SECOND = datetime(1970, 1, 1, 0, 0, 1, tzinfo=UTC) - _EPOCH


def rfc3339(ts_ns: int) -> str:
    """Nanoseconds since the epoch → ``"2021-02-22T19:15:00Z"`` (fraction only when needed)."""
    seconds, ns = divmod(ts_ns, 1_000_000_000)
    text = datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%S")
    return f"{text}.{ns:09d}Z" if ns else f"{text}Z"


# -- market data stream -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Connected:
    """``{"T":"success","msg":"connected"}``: the server waits for auth."""


@dataclass(frozen=True, slots=True)
class Authenticated:
    """``{"T":"success","msg":"authenticated"}``"""


@dataclass(frozen=True, slots=True)
class Subscribed:
    """``{"T":"subscription",...}``: what the server now sends."""

    bars: tuple[str, ...]
    updated_bars: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class StreamError:
    """``{"T":"error","code":..,"msg":..}``; ``stream_error`` turns it into an exception."""

    code: int
    msg: str


@dataclass(frozen=True, slots=True)
class BarCorrection:
    """``"u"``: the venue's corrected values of a bar it already sent (late trades)."""

    bar: BarMessage


DataEvent = BarMessage | BarCorrection | Connected | Authenticated | Subscribed | StreamError


class DataStreamDecoder:
    """Frames of the market data stream → events; a malformed item is skipped and counted."""

    def __init__(self) -> None:
        self.skipped = 0
        self.last_error = ""

    def decode(self, frame: str | bytes) -> list[DataEvent]:
        try:
            items = orjson.loads(frame)
        except orjson.JSONDecodeError as err:
            self._skip(f"not JSON: {str(frame)[:80]!r} ({err})")
            return []
        if not isinstance(items, list):
            items = [items]  # the docs promise arrays; a bare object is read the same way
        events: list[DataEvent] = []
        for item in items:
            try:
                kind = item["T"]
                if kind == "b":
                    events.append(_stream_bar(item))
                elif kind == "u":
                    events.append(BarCorrection(_stream_bar(item)))
                elif kind == "success":
                    msg = item.get("msg")
                    if msg == "connected":
                        events.append(Connected())
                    elif msg == "authenticated":
                        events.append(Authenticated())
                    else:
                        self._skip(f"unknown success message {msg!r}")
                elif kind == "subscription":
                    bars, updated = item.get("bars") or [], item.get("updatedBars") or []
                    events.append(Subscribed(tuple(bars), tuple(updated)))
                elif kind == "error":
                    code = item.get("code")
                    if not isinstance(code, int):
                        raise VenueProtocolError(f"error message without a code: {item}")
                    events.append(StreamError(code, str(item.get("msg", ""))))
                # trades, quotes, daily bars, statuses: not subscribed, ignored if they come
            except (KeyError, TypeError, ValueError, VenueProtocolError) as err:
                self._skip(f"malformed item {str(item)[:120]}: {err!r}")
        return events

    def _skip(self, reason: str) -> None:
        self.skipped += 1
        self.last_error = reason


def _stream_bar(item: Mapping[str, Any]) -> BarMessage:
    return _bar(item["S"], item)


def _bar(symbol: Any, item: Mapping[str, Any]) -> BarMessage:
    """One bar from Alpaca's short keys; refuses what cannot be a bar."""
    o, h, low, c, v = item["o"], item["h"], item["l"], item["c"], item["v"]
    if not (type(o) in _NUMBERS and type(h) in _NUMBERS and type(low) in _NUMBERS):
        raise VenueProtocolError("prices must be numbers")
    if not (type(c) in _NUMBERS and type(v) in _NUMBERS) or not isinstance(symbol, str):
        raise VenueProtocolError("close and volume must be numbers, the symbol a string")
    o, h, low, c, v = float(o), float(h), float(low), float(c), float(v)
    if not (0 < low <= h and low <= o <= h and low <= c <= h and v >= 0 and h < math.inf):
        raise VenueProtocolError(f"impossible bar o={o} h={h} l={low} c={c} v={v}")
    return BarMessage(symbol, ts_ns_from_rfc3339(item["t"]), o, h, low, c, v, {})


_NUMBERS = frozenset((int, float))


class CorrectionHold:
    """What the runtime sees of ``"u"`` corrections: each minute is held for ``grace_s``.

    Alpaca sends minute T's bars right after T ends, and sends ``"u"`` when late trades change
    a bar it already sent. The runtime hands a timestamp to the strategy as soon as every
    symbol reported, and a decision cannot be taken back, so the rule is:

    - the bars of the newest minute are held from the first one's arrival for ``grace_s``
      (and released at once when a later minute's first bar arrives);
    - a correction of a held bar replaces it: the corrected values are what is published;
    - a correction of a bar already published is counted in ``late`` and reported, never
      published: history the strategy acted on does not change (a backfill after a
      reconnect does bring the venue's final values for the minutes it covers);
    - a correction of a minute newer than anything published (its ``"b"`` was missed, e.g.
      across a reconnect) is treated as that bar.

    ``grace_s = 0`` publishes every bar on arrival (and every correction is late).
    """

    def __init__(self, grace_s: float) -> None:
        self.grace_s = grace_s
        self.applied = 0
        self.late = 0
        self._held: dict[str, BarMessage] = {}
        self._held_ts: int | None = None
        self._published_ts: int | None = None  # newest minute released
        self.deadline: float | None = None  # when the held minute is due (monotonic seconds)

    def add(self, bar: BarMessage, now_s: float) -> list[BarMessage]:
        """A new bar; returns what is to be published now (oldest minute first)."""
        if self._held_ts is not None and bar.ts_ns == self._held_ts:
            self._held[bar.asset_id] = bar
            return []
        if self._published_ts is not None and bar.ts_ns <= self._published_ts:
            return [bar]  # a late bar: the runtime counts it, not ours to hide
        out = self.release() if self._held_ts is not None and bar.ts_ns > self._held_ts else []
        if self.grace_s <= 0 or (self._held_ts is not None and bar.ts_ns < self._held_ts):
            self._published_ts = max(self._published_ts or bar.ts_ns, bar.ts_ns)
            return [*out, bar]
        self._held = {bar.asset_id: bar}
        self._held_ts = bar.ts_ns
        self.deadline = now_s + self.grace_s
        return out

    def correct(self, correction: BarCorrection, now_s: float) -> tuple[list[BarMessage], bool]:
        """A ``"u"``; returns (what to publish now, whether it came too late to count)."""
        bar = correction.bar
        if bar.ts_ns == self._held_ts:
            self.applied += bar.asset_id in self._held
            self._held[bar.asset_id] = bar
            return [], False
        if self._published_ts is not None and bar.ts_ns <= self._published_ts:
            self.late += 1
            return [], True
        return self.add(bar, now_s), False

    def due(self, now_s: float) -> list[BarMessage]:
        """The held minute once its grace has passed."""
        if self.deadline is not None and now_s >= self.deadline:
            return self.release()
        return []

    def release(self) -> list[BarMessage]:
        """Everything held, in symbol order (a drop or the end releases it early)."""
        out = [self._held[s] for s in sorted(self._held)]
        if self._held_ts is not None:
            self._published_ts = max(self._published_ts or self._held_ts, self._held_ts)
        self._held, self._held_ts, self.deadline = {}, None, None
        return out


# -- REST bars ----------------------------------------------------------------------------------


def decode_bars_page(body: bytes | str) -> tuple[list[BarMessage], str | None]:
    """One ``GET /v2/stocks/bars`` page → its bars (time, then symbol order) and the next token."""
    try:
        page = orjson.loads(body)
        grouped = page.get("bars") or {}
        bars = [_bar(symbol, item) for symbol, items in grouped.items() for item in items]
        token = page.get("next_page_token")
    except (orjson.JSONDecodeError, AttributeError, KeyError, TypeError, ValueError) as err:
        raise VenueProtocolError(
            f"bars page not understood: {str(body)[:120]!r} ({err!r})"
        ) from err
    bars.sort(key=lambda b: (b.ts_ns, b.asset_id))
    return bars, token if isinstance(token, str) and token else None


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


def _decimal(value: float, what: str) -> str:
    """A positive finite number as a plain decimal string (no exponent: Alpaca wants decimals)."""
    if not (isinstance(value, int | float) and math.isfinite(value) and value > 0):
        raise OrderError(f"{what} must be a positive finite number, got {value!r}")
    text = f"{value:.9f}".rstrip("0").rstrip(".")
    if text in ("", "0"):
        raise OrderError(f"{what} {value!r} is below 1e-9, which Alpaca cannot take")
    return text


def encode_order(order: VenueOrder) -> OrderRequestJSON:
    """``POST /v2/orders`` body for ``order``; ``OrderError`` when a price it needs is missing."""
    where = f"order {order.client_order_id} ({order.asset_id})"
    body: OrderRequestJSON = {
        "symbol": order.asset_id,
        "qty": _decimal(order.qty, f"{where}: qty"),
        "side": "buy" if order.side is Side.BUY else "sell",
        "type": _ORDER_TYPES[order.order_type],
        "time_in_force": "day" if order.tif is TimeInForce.DAY else "gtc",
        "client_order_id": alpaca_client_order_id(order.client_order_id),
    }
    if order.order_type in (OrderType.LIMIT, OrderType.STOP_LIMIT):
        if order.limit_price is None:
            raise OrderError(f"{where}: a {order.order_type} order needs a limit price")
        body["limit_price"] = _decimal(order.limit_price, f"{where}: limit price")
    if order.order_type in (OrderType.STOP, OrderType.STOP_LIMIT):
        if order.stop_price is None:
            raise OrderError(f"{where}: a {order.order_type} order needs a stop price")
        body["stop_price"] = _decimal(order.stop_price, f"{where}: stop price")
    return body


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
        avg = float(raw.get("filled_avg_price") or 0)
        qty = float(raw.get("qty") or 0)  # null for a notional order
        cid = str(raw["client_order_id"])
        state = VenueOrderState(
            client_order_id=(our_ids or {}).get(cid, cid),
            venue_order_id=str(raw["id"]),
            asset_id=str(raw["symbol"]),
            side=Side(raw["side"]),
            qty=qty,
            status=_status(status_text, filled),
            filled_qty=filled,
            avg_fill_price=avg,
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


# -- executions ---------------------------------------------------------------------------------


def trade_id(venue_order_id: str, cum_qty: str | float) -> str:
    """The fill's id, the same from both sources: the order and its filled quantity after it.

    ``trade_updates`` names a fill by ``execution_id``, but the FILL activities (what a
    restart reads) do not carry it; both carry the order id and the cumulative quantity
    after the fill (``order.filled_qty`` / ``cum_qty``), which is unique per fill.
    """
    return f"{venue_order_id}#{float(cum_qty)!r}"


@dataclass(frozen=True, slots=True)
class TradeStreamControl:
    """A trade_updates control frame: ``authorization`` (``ok``) or ``listening``."""

    stream: str
    ok: bool
    message: str = ""


def decode_trade_update(
    frame: str | bytes, our_ids: Mapping[str, str] | None = None
) -> Execution | VenueOrderState | TradeStreamControl | None:
    """One trade_updates frame: a fill → ``Execution``; another order event → its state."""
    try:
        raw = orjson.loads(frame)
        stream, data = raw["stream"], raw["data"]
        if stream == "authorization":
            ok = data.get("status") == "authorized"
            return TradeStreamControl(stream, ok, str(data.get("message", "")))
        if stream == "listening":
            return TradeStreamControl(stream, "trade_updates" in (data.get("streams") or []))
        if stream != "trade_updates":
            return None
        order = data["order"]
        if data["event"] not in ("fill", "partial_fill"):
            return decode_order(order, our_ids)
        cid = str(order["client_order_id"])
        return Execution(
            trade_id=trade_id(str(order["id"]), order["filled_qty"]),
            client_order_id=(our_ids or {}).get(cid, cid),
            asset_id=str(order["symbol"]),
            side=Side(order["side"]),
            qty=float(data["qty"]),
            price=float(data["price"]),
            commission=0.0,  # Alpaca charges no commission on equities
            ts_ns=ts_ns_from_rfc3339(data["timestamp"]),
            order_done=data["event"] == "fill",
        )
    except (orjson.JSONDecodeError, KeyError, TypeError, ValueError) as err:
        raise VenueProtocolError(
            f"trade update not understood: {str(frame)[:160]!r} ({err!r})"
        ) from err


def decode_activity(
    raw: Mapping[str, Any], client_order_id: str, our_ids: Mapping[str, str] | None = None
) -> Execution:
    """One FILL activity → ``Execution`` (activities name the order, not its client id)."""
    try:
        return Execution(
            trade_id=trade_id(str(raw["order_id"]), raw["cum_qty"]),
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
