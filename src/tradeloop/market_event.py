"""``MarketEvent``: one asset's bar, read by row from columns its events share. Pure: no I/O.

A run does not make an event per bar: an event is a row number into a ``BarRows`` (the
price lists, the signal lists, and the timestamp and context every event on them shares).
Moving an event is one store (its row), and moving a whole timestamp's batch events to the
next timestamp, when the assets are the same, is a few stores for all of them (the shared
columns), none per asset (``BatchEvents``). ``event.snapshot()`` keeps a bar past its callback.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from datetime import datetime
from typing import Any

import numpy as np

from tradeloop.clock import LazyTimestamp, utc_ns
from tradeloop.errors import UnknownSignalError

__all__ = ["BarRows", "BatchEvents", "MarketEvent", "SignalView", "floats"]


class SignalView(Mapping[str, float]):
    """Read-only view of one row of the signal columns: no per-bar dict copy.

    ``view["name"]`` raises ``UnknownSignalError`` (a ``KeyError``) naming the signals that
    exist; ``view.get("name", default)`` returns ``default`` for an unknown name.
    """

    __slots__ = ("_columns", "_row")

    def __init__(self, columns: Mapping[str, list[float]], row: int) -> None:
        self._columns = columns
        self._row = row

    @classmethod
    def of(cls, values: Mapping[str, float]) -> SignalView:
        """A view of one bar's own signals (columns of one row), not of a run's columns."""
        return cls({name: [value] for name, value in values.items()}, 0)

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


class BarRows(LazyTimestamp):
    """The columns events read their bars from (``open`` … ``volume``: lists of floats;
    ``signals``: name → list), and the ``ts_ns`` and ``context`` all of them share."""

    __slots__ = (
        "_timestamp",
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
        open: list[float],
        high: list[float],
        low: list[float],
        close: list[float],
        volume: list[float],
        signals: dict[str, list[float]],
        ts_ns: int,
        context: Mapping[str, Any],
        timestamp: datetime | None = None,
    ) -> None:
        self.open = open
        self.high = high
        self.low = low
        self.close = close
        self.volume = volume
        self.signals = signals
        self.ts_ns = ts_ns
        self.context = context
        self._timestamp = timestamp


class MarketEvent:
    """One closed bar of one asset, with its signals and the market context at that time.

    ``signals`` holds the asset's own features (ML predictions, indicators); ``context`` the
    market-wide values (VIX, regime) shared by every asset at this timestamp. Treat both as
    read-only. ``event.data`` returns the event itself, for code written against the older
    ``event.data.signals`` spelling.

    An event is valid during the callback it is passed to: a run makes one event per asset
    and moves it to the asset's next bar, so keep the values you need (``event.close``,
    ``event.signals["x"]``) or ``event.snapshot()``, not the event itself.
    """

    __slots__ = ("_row", "_rows", "asset_id", "signals")

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
        prices = [open], [high], [low], [close], [volume]
        self._rows = BarRows(*prices, {}, ts_ns, context, timestamp)
        self._row = 0
        self.asset_id = asset_id
        self.signals = signals

    @classmethod
    def on_rows(cls, rows: BarRows, row: int, asset_id: str) -> MarketEvent:
        """The event of row ``row`` of ``rows`` (how a run makes each asset's one event)."""
        event = cls.__new__(cls)
        event._rows = rows
        event._row = row
        event.asset_id = asset_id
        event.signals = SignalView(rows.signals, row)
        return event

    @property
    def open(self) -> float:
        return self._rows.open[self._row]

    @property
    def high(self) -> float:
        return self._rows.high[self._row]

    @property
    def low(self) -> float:
        return self._rows.low[self._row]

    @property
    def close(self) -> float:
        return self._rows.close[self._row]

    @property
    def volume(self) -> float:
        return self._rows.volume[self._row]

    @property
    def ts_ns(self) -> int:
        return self._rows.ts_ns

    @property
    def timestamp(self) -> datetime:
        """The bar's time, aware UTC (made from ``ts_ns`` the first time it is read)."""
        return self._rows.timestamp

    @property
    def context(self) -> Mapping[str, Any]:
        return self._rows.context

    @property
    def data(self) -> MarketEvent:
        """The event itself (alias for the older ``event.data.signals`` spelling)."""
        return self

    def snapshot(self) -> MarketEvent:
        """A copy of this bar that stays as it is when the run moves the event on (what
        ``copy.copy``, ``copy.deepcopy`` and pickling give too)."""
        signals = SignalView.of(self.signals)
        rows = self._rows
        return MarketEvent(
            rows._timestamp,
            self.asset_id,
            self.open,
            self.high,
            self.low,
            self.close,
            self.volume,
            signals,
            rows.context,
            rows.ts_ns,
        )

    def __copy__(self) -> MarketEvent:
        return self.snapshot()  # a copy sharing the moving rows would move with the event

    def __deepcopy__(self, memo: dict[int, Any]) -> MarketEvent:
        return self.snapshot()

    def __reduce__(self) -> tuple[Any, ...]:
        """Pickle this bar alone (the snapshot's fields), never the run's shared columns."""
        kept = self.snapshot()
        signals = dict(kept.signals)
        fields = (kept.open, kept.high, kept.low, kept.close, kept.volume)
        return (_unpickle, (kept.asset_id, fields, signals, dict(kept.context), kept.ts_ns))

    def __repr__(self) -> str:
        return (
            f"MarketEvent({self.timestamp.isoformat()} {self.asset_id} "
            f"o={self.open} h={self.high} l={self.low} c={self.close} v={self.volume} "
            f"signals={dict(self.signals)!r})"
        )


def _unpickle(
    asset_id: str,
    fields: tuple[float, float, float, float, float],
    signals: dict[str, float],
    context: dict[str, Any],
    ts_ns: int,
) -> MarketEvent:
    return MarketEvent(None, asset_id, *fields, SignalView.of(signals), context, ts_ns)


def floats(values: Any) -> list[float]:
    """``values`` as a list of Python floats (an array through its buffer, a third faster
    than ``ndarray.tolist``; any other sequence element by element)."""
    if isinstance(values, np.ndarray):  # no copy of a contiguous float64 array
        contiguous = np.ascontiguousarray(values, dtype=np.float64)
        return memoryview(contiguous).tolist()  # type: ignore[arg-type, return-value]
    return [float(v) for v in values]


_PRICES = ("open", "high", "low", "close", "volume")


class _RowsOnRead(BarRows):
    """``BarRows`` over a batch's arrays whose price lists are made the first time each is
    read at a timestamp: a strategy that reads only signals converts no price column."""

    __slots__ = ("_arrays", "_made")

    def __init__(self, signals: dict[str, list[float]]) -> None:
        self.signals = signals
        self.ts_ns, self.context, self._timestamp = 0, {}, None
        self._arrays: tuple[Any, ...] = ()
        self._made: list[str] = []

    def __getattr__(self, name: str) -> list[float]:
        if name not in _PRICES:  # only an unread price slot comes here
            raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")
        column = floats(self._arrays[_PRICES.index(name)])
        setattr(self, name, column)
        self._made.append(name)
        return column

    def move(
        self,
        arrays: tuple[Any, ...],
        ts_ns: int,
        context: Mapping[str, Any],
        timestamp: datetime | None,
    ) -> None:
        """Point the rows at another timestamp's price arrays (none converted yet)."""
        for name in self._made:
            delattr(self, name)
        self._made.clear()
        self._arrays = arrays
        self.ts_ns, self.context, self._timestamp = ts_ns, context, timestamp


class BatchEvents:
    """The events that iterating a run's batches gives, one per asset, moved batch to batch.

    When a batch holds the same assets in the same order as the one before (a complete
    panel), its events are the same objects on the same rows, and moving them is replacing
    the shared columns: no work per asset. Any other batch gets fresh rows (events of assets
    it lacks keep their last bar) with each present asset's event pointed at its row.
    """

    __slots__ = ("_asset_ids", "_events", "_known", "_rows")

    def __init__(self) -> None:
        self._known: dict[str, MarketEvent] = {}
        self._asset_ids: list[str] | None = None
        self._events: list[MarketEvent] = []
        self._rows = _RowsOnRead({})

    def move(
        self,
        asset_ids: list[str],
        prices: tuple[Any, Any, Any, Any, Any],
        signals: dict[str, list[float]],
        ts_ns: int,
        context: Mapping[str, Any],
        timestamp: datetime | None = None,
    ) -> list[MarketEvent]:
        """Every asset's event on these columns (``asset_ids[i]``'s bar is ``prices[k][i]``,
        arrays or sequences, each turned into floats when first read)."""
        rows = self._rows
        if asset_ids != self._asset_ids:
            rows = self._rows = _RowsOnRead(dict(signals))
            self._repoint(asset_ids, rows)
        else:
            shared = rows.signals  # every event's view holds this dict: refill, never replace
            if shared.keys() != signals.keys():
                shared.clear()
            shared.update(signals)
        rows.move(prices, ts_ns, context, timestamp)
        return self._events

    def _repoint(self, asset_ids: list[str], rows: BarRows) -> None:
        known, events = self._known, []
        for i, asset in enumerate(asset_ids):
            event = known.get(asset)
            if event is None:
                event = known[asset] = MarketEvent.on_rows(rows, i, asset)
            else:
                event._rows, event._row = rows, i
                view = event.signals
                view._columns, view._row = rows.signals, i  # type: ignore[attr-defined]
            events.append(event)
        self._asset_ids, self._events = list(asset_ids), events
