"""Alpaca market data frames ⇄ tradeloop events. Pure: no I/O, no clock (time is passed in).

- Market data stream frames (JSON text, or msgpack, arrays possibly batched) → ``BarMessage``
  for ``"b"``, ``BarCorrection`` for ``"u"``, control events, and ``StreamError`` (its code
  is mapped onto the error tree by ``errors.stream_error``).
- ``CorrectionHold``: how ``"u"`` corrections reach the runtime (see its docstring).
- REST bar pages → ``BarMessage`` lists in time order; RFC 3339 times ⇄ nanoseconds.
The trading side (orders, trade_updates, activities) is ``trading``; the error map ``errors``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson

from tradeloop.errors import VenueProtocolError
from tradeloop.events import BarMessage

__all__ = [
    "Authenticated",
    "BarCorrection",
    "Connected",
    "CorrectionHold",
    "DataEvent",
    "DataStreamDecoder",
    "StreamError",
    "Subscribed",
    "decode_bars_page",
    "rfc3339",
    "ts_ns_from_rfc3339",
]


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
    """One bar from Alpaca's short keys; refuses what is not shaped like a bar.

    Only the frame's shape is checked here (numbers where numbers belong, a string symbol).
    Whether the values can be a bar (high below low, a negative volume, a NaN) is decided by
    the one bar validation every source goes through (``tradeloop.data.validation.BAR_RULES``,
    applied by the live runtime's intake), so Alpaca's bars are refused, logged and counted
    exactly as every other feed's are.
    """
    o, h, low, c, v = item["o"], item["h"], item["l"], item["c"], item["v"]
    if not (type(o) in _NUMBERS and type(h) in _NUMBERS and type(low) in _NUMBERS):
        raise VenueProtocolError("prices must be numbers")
    if not (type(c) in _NUMBERS and type(v) in _NUMBERS) or not isinstance(symbol, str):
        raise VenueProtocolError("close and volume must be numbers, the symbol a string")
    o, h, low, c, v = float(o), float(h), float(low), float(c), float(v)
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
