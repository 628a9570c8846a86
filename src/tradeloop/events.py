"""Facts that flow through a run: market bars in, fills out.

Pure data, no behaviour beyond read access. ``MarketEvent`` is what a strategy sees for one
asset at one timestamp; ``Fill`` is what a broker reports back. The stream messages
(``BarMessage``, ``BarBatchMessage``, ``ContextMessage``, ``EndMessage``, ``Reconnected``) are
what a bar stream delivers: the wire codec, ``ReplayFeed`` and every venue feed make them.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any, NamedTuple, cast

import numpy as np
import numpy.typing as npt

from tradeloop.clock import utc_datetime, utc_ns
from tradeloop.errors import UnknownSignalError

__all__ = [
    "BarBatchMessage",
    "BarMessage",
    "ContextMessage",
    "EndMessage",
    "Fill",
    "MarketEvent",
    "Message",
    "OrderStatus",
    "OrderType",
    "Reconnected",
    "Side",
    "SignalView",
    "TimeInForce",
    "TimestampBatch",
]


class Side(StrEnum):
    BUY = "buy"
    SELL = "sell"


class OrderType(StrEnum):
    MARKET = "market"
    LIMIT = "limit"
    STOP = "stop"
    STOP_LIMIT = "stop_limit"
    TRAILING_STOP = "trailing_stop"


class TimeInForce(StrEnum):
    DAY = "day"
    GTC = "gtc"
    GTD = "gtd"  # good till a date: ``expire_at``


class OrderStatus(StrEnum):
    HELD = "held"  # a child of an OTO/bracket waiting for its parent to fill
    ACCEPTED = "accepted"
    PARTIALLY_FILLED = "partially_filled"
    FILLED = "filled"
    CANCELLED = "cancelled"
    EXPIRED = "expired"
    REJECTED = "rejected"
    UNKNOWN = "unknown"


class SignalView(Mapping[str, float]):
    """Read-only view of one row of the signal columns: no per-bar dict copy.

    ``view["name"]`` raises ``UnknownSignalError`` (a ``KeyError``) naming the signals that
    exist; ``view.get("name", default)`` returns ``default`` for an unknown name.
    """

    __slots__ = ("_columns", "_row")

    def __init__(self, columns: Mapping[str, list[float]], row: int) -> None:
        self._columns = columns
        self._row = row

    def __getitem__(self, name: str) -> float:
        try:
            column = self._columns[name]
        except KeyError:
            raise UnknownSignalError(_unknown_signal_message(name, self._columns)) from None
        return column[self._row]

    def get(self, name: str, default: Any = None) -> Any:
        column = self._columns.get(name)
        return default if column is None else column[self._row]

    def __contains__(self, name: object) -> bool:
        return name in self._columns

    def __iter__(self) -> Iterator[str]:
        return iter(self._columns)

    def __len__(self) -> int:
        return len(self._columns)

    def __repr__(self) -> str:
        return f"SignalView({dict(self)!r})"


def _unknown_signal_message(name: str, known: Mapping[str, Any]) -> str:
    names = ", ".join(sorted(known)) or "none"
    return (
        f"unknown signal {name!r}; this feed carries: {names}. "
        "Fix: add the column to signal_columns=[...] when building the feed, "
        "or use event.signals.get(name, default)."
    )


class MarketEvent:
    """One closed bar of one asset, with its signals and the market context at that time.

    ``signals`` holds the asset's own features (ML predictions, indicators); ``context`` the
    market-wide values (VIX, regime) shared by every asset at this timestamp. Treat both as
    read-only. ``event.data`` returns the event itself, for code written against the older
    ``event.data.signals`` spelling.

    An event is valid during the callback it is passed to: the replay makes one event per
    asset and moves it to the asset's next bar (its fields and its signal view's row), so
    keep the values you need (``event.close``, ``event.signals["x"]``), not the event.
    """

    __slots__ = (
        "_timestamp",
        "asset_id",
        "close",
        "context",
        "high",
        "low",
        "open",
        "signals",
        "ts_ns",
        "volume",
    )

    def __init__(
        self,
        timestamp: datetime | None,
        asset_id: str,
        open: float,
        high: float,
        low: float,
        close: float,
        volume: float,
        signals: Mapping[str, float],
        context: Mapping[str, Any],
        ts_ns: int | None = None,
    ) -> None:
        if ts_ns is None:
            if timestamp is None:
                raise ValueError("a MarketEvent needs a timestamp (or ts_ns)")
            ts_ns = utc_ns(timestamp)
        self._timestamp = timestamp
        self.ts_ns = ts_ns
        self.asset_id = asset_id
        self.open = open
        self.high = high
        self.low = low
        self.close = close
        self.volume = volume
        self.signals = signals
        self.context = context

    @property
    def timestamp(self) -> datetime:
        """The bar's time, aware UTC (made from ``ts_ns`` the first time it is read)."""
        value = self._timestamp
        if value is None:
            value = self._timestamp = utc_datetime(self.ts_ns)
        return value

    def move_to(
        self,
        open: float,
        high: float,
        low: float,
        close: float,
        volume: float,
        ts_ns: int,
        context: Mapping[str, Any],
        row: int,
        timestamp: datetime | None = None,
    ) -> None:
        """Make this event the asset's bar at ``ts_ns`` (row ``row`` of its signal columns):
        how the runtime reuses one event per asset instead of making one per bar."""
        self.open = open
        self.high = high
        self.low = low
        self.close = close
        self.volume = volume
        self.ts_ns = ts_ns
        self._timestamp = timestamp
        self.context = context
        self.signals._row = row  # type: ignore[attr-defined]

    @property
    def data(self) -> MarketEvent:
        """The event itself (alias for the older ``event.data.signals`` spelling)."""
        return self

    def __repr__(self) -> str:
        return (
            f"MarketEvent({self.timestamp.isoformat()} {self.asset_id} "
            f"o={self.open} h={self.high} l={self.low} c={self.close} v={self.volume} "
            f"signals={dict(self.signals)!r})"
        )


class Fill(NamedTuple):
    """An execution: ``qty`` (always positive) of ``asset_id`` at ``price``.

    ``price`` already includes slippage; ``slippage`` is the cost it added in cash terms.
    ``bar_index`` counts the asset's bars from 0, so bars held = exit − entry. (A named tuple:
    immutable, and cheap to create on the hot path.)
    """

    order_id: int
    asset_id: str
    side: Side
    qty: float
    price: float
    commission: float
    slippage: float
    timestamp: datetime
    ts_ns: int
    bar_index: int
    reason: str

    @property
    def signed_qty(self) -> float:
        return (
            self.qty if self.side == "buy" else -self.qty
        )  # StrEnum: a str compare, no Enum lookup

    @property
    def notional(self) -> float:
        return self.qty * self.price


class TimestampBatch:
    """Every bar at one timestamp, column by column, for cross-sectional strategies.

    ``batch.close``, ``batch.signals["ml_score"]`` and friends are numpy arrays aligned with
    ``batch.asset_ids`` (read-only views; copy before changing them), so ranking is one
    ``np.argsort``. Iterating, or ``batch[i]``, gives ``MarketEvent``s.
    """

    __slots__ = (
        "_events",
        "asset_ids",
        "close",
        "context",
        "high",
        "low",
        "open",
        "signals",
        "timestamp",
        "volume",
    )

    def __init__(
        self,
        timestamp: datetime,
        asset_ids: list[str],
        open: Any,
        high: Any,
        low: Any,
        close: Any,
        volume: Any,
        signals: Mapping[str, Any],
        context: Mapping[str, Any],
        events: dict[str, MarketEvent] | None = None,
    ) -> None:
        self._events = events  # the runtime's per-asset events, moved to this batch's bars
        self.timestamp = timestamp
        self.asset_ids = asset_ids
        self.open = open
        self.high = high
        self.low = low
        self.close = close
        self.volume = volume
        self.signals = signals
        self.context = context

    def __len__(self) -> int:
        return len(self.asset_ids)

    def __getitem__(self, i: int) -> MarketEvent:
        row = {name: [float(values[i])] for name, values in self.signals.items()}
        return MarketEvent(
            self.timestamp,
            self.asset_ids[i],
            float(self.open[i]),
            float(self.high[i]),
            float(self.low[i]),
            float(self.close[i]),
            float(self.volume[i]),
            SignalView(row, 0),
            self.context,
        )

    def __iter__(self) -> Iterator[MarketEvent]:
        """Every bar as a ``MarketEvent`` (columns turned into Python values once); in a run
        each asset's event is made once and moved to its next bar, all before the first is
        returned (keep values, not events, past the callback, as for ``on_market_event``)."""
        timestamp, context, asset_ids = self.timestamp, self.context, self.asset_ids
        ts_ns = utc_ns(timestamp)
        columns = {name: _floats(values) for name, values in self.signals.items()}
        opens, highs, lows = _floats(self.open), _floats(self.high), _floats(self.low)
        closes, volumes = _floats(self.close), _floats(self.volume)
        known = self._events if self._events is not None else {}
        found = list(map(known.get, asset_ids))  # one C-level pass, not a lookup per bar
        if None in found:  # an asset's first bar: its event is made here, its bar set below
            for i, asset in enumerate(asset_ids):
                if found[i] is None:
                    bar, view = (math.nan,) * 5, SignalView(columns, i)
                    found[i] = known[asset] = MarketEvent(None, asset, *bar, view, context, ts_ns)
        events = cast("list[MarketEvent]", found)
        rows = zip(events, opens, highs, lows, closes, volumes, range(len(events)), strict=True)
        for event, open_, high, low, close, volume, i in rows:  # move_to, inlined
            event.open = open_
            event.high = high
            event.low = low
            event.close = close
            event.volume = volume
            event.ts_ns = ts_ns
            event._timestamp = timestamp
            event.context = context
            signals = cast(SignalView, event.signals)
            signals._columns, signals._row = columns, i
        return iter(events)

    def __repr__(self) -> str:
        return f"TimestampBatch({self.timestamp.isoformat()}, {len(self)} assets)"


def _floats(values: Any) -> list[float]:
    return [float(v) for v in values] if not hasattr(values, "tolist") else values.tolist()


# -- messages of a bar stream (the wire codec, ReplayFeed and the venue feeds make them) --


@dataclass(slots=True)  # not frozen: a frozen __init__ costs 2.5 µs a bar, 5x this one
class BarMessage:
    asset_id: str
    ts_ns: int
    open: float
    high: float
    low: float
    close: float
    volume: float
    signals: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True, slots=True, eq=False)
class BarBatchMessage:
    """Every asset's bar of one timestamp, as columns (NaN = no value for that signal)."""

    ts_ns: int
    asset_ids: list[str]
    open: npt.NDArray[np.float64]
    high: npt.NDArray[np.float64]
    low: npt.NDArray[np.float64]
    close: npt.NDArray[np.float64]
    volume: npt.NDArray[np.float64]
    signals: dict[str, npt.NDArray[np.float64]] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.asset_ids)


@dataclass(frozen=True, slots=True)
class ContextMessage:
    name: str
    ts_ns: int
    value: Any


@dataclass(frozen=True, slots=True)
class EndMessage:
    """The stream is over (a replay reached its last bar)."""


Message = BarMessage | BarBatchMessage | ContextMessage | EndMessage


@dataclass(frozen=True, slots=True)
class Reconnected:
    """The feed came back after a drop or a stall (``attempt`` counts from 1)."""

    attempt: int
