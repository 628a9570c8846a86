"""Facts that flow through a run: market bars in, fills out.

Pure data, no behaviour beyond read access. ``MarketEvent`` is what a strategy sees for one
asset at one timestamp (defined in ``tradeloop.market_event``, with how a run moves it);
``TimestampBatch`` every asset's bar at one timestamp; ``Fill`` is what a broker reports
back. The stream messages (``BarMessage``, ``BarBatchMessage``, ``ContextMessage``,
``EndMessage``, ``Reconnected``) are what a bar stream delivers: the wire codec,
``ReplayFeed`` and every venue feed make them.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any, NamedTuple

import numpy as np
import numpy.typing as npt

from tradeloop.clock import LazyTimestamp, utc_ns
from tradeloop.market_event import BatchEvents, MarketEvent, SignalView, floats

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


class TimestampBatch(LazyTimestamp):
    """Every bar at one timestamp, column by column, for cross-sectional strategies.

    ``batch.close``, ``batch.signals["ml_score"]`` and friends are numpy arrays aligned with
    ``batch.asset_ids`` (read-only views; copy before changing them), so ranking is one
    ``np.argsort``. Iterating, or ``batch[i]``, gives ``MarketEvent``s.
    """

    __slots__ = (
        "_events",
        "_timestamp",
        "asset_ids",
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
        asset_ids: list[str],
        open: Any,
        high: Any,
        low: Any,
        close: Any,
        volume: Any,
        signals: Mapping[str, Any],
        context: Mapping[str, Any],
        events: BatchEvents | None = None,
        *,
        ts_ns: int | None = None,
    ) -> None:
        """``timestamp``, or (None) ``ts_ns``: the batch's time, UTC (the datetime is then
        made when it is first read)."""
        if timestamp is None and ts_ns is None:
            raise TypeError("TimestampBatch needs a timestamp or ts_ns")
        self._events = events  # the runtime's per-asset events, moved to this batch's bars
        self._timestamp = timestamp
        self.ts_ns: int = utc_ns(timestamp) if ts_ns is None else ts_ns  # type: ignore[arg-type]
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
        signals = SignalView.of({name: float(values[i]) for name, values in self.signals.items()})
        return MarketEvent(
            self.timestamp,
            self.asset_ids[i],
            float(self.open[i]),
            float(self.high[i]),
            float(self.low[i]),
            float(self.close[i]),
            float(self.volume[i]),
            signals,
            self.context,
        )

    def __iter__(self) -> Iterator[MarketEvent]:
        """Every bar as a ``MarketEvent`` (columns turned into Python values once); in a run
        each asset's event is made once and moved to its next bar, all before the first is
        returned (keep values, not events, past the callback, as for ``on_market_event``)."""
        events = self._events if self._events is not None else BatchEvents()
        prices = (self.open, self.high, self.low, self.close, self.volume)
        signals = {name: floats(values) for name, values in self.signals.items()}
        timestamp, context = self.timestamp, self.context
        moved = events.move(self.asset_ids, prices, signals, self.ts_ns, context, timestamp)
        return iter(moved)

    def __repr__(self) -> str:
        return f"TimestampBatch({self.timestamp.isoformat()}, {len(self)} assets)"


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


@dataclass(slots=True, eq=False)  # not frozen: a live frame's init, ~25 µs cold in situ
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
    read_only: bool = False  # every column is a read-only array (a binary frame's views)

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
