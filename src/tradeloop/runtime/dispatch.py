"""One timestamp, handled in a fixed order. Pure: no I/O, no clock, no await.

The replay loop and the live runtime both hand each timestamp's bars to ``Dispatcher.step``,
which is why a strategy behaves the same in a backtest, on paper and live:

0. (before the dispatcher) the bars are validated, and a feature provider's features are
   joined into the block and the context, the same way in both loops;
1. the broker moves to the timestamp: day orders expire, open orders fill at the new opens;
2. risk rules check every open position against its bar (stops, targets, time exits);
3. every asset's latest close becomes its mark;
4. ``on_market_event`` for each bar (asset order), then ``on_timestamp_batch`` once;
5. market orders decided now fill at this close when ``fill_timing="close"``;
6. the risk manager records the bar (high-water marks, features) for the next check.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt

from tradeloop.broker.base import Bar, RuntimeBroker
from tradeloop.clock import LazyTimestamp
from tradeloop.events import MarketEvent, SignalView, TimestampBatch
from tradeloop.market_event import BarRows, BatchEvents, floats
from tradeloop.rows import RowFinder
from tradeloop.strategy.base import Strategy

__all__ = ["BarBlock", "Dispatcher", "RiskHook", "frozen_view"]

_PRICE_COLUMNS = ("open", "high", "low", "close", "volume")


class BarBlock(LazyTimestamp):
    """The bars of one timestamp: rows ``start:stop`` of column lists (no copies).

    ``arrays`` holds the same columns as numpy arrays for cross-sectional access; the lists
    are filled only when per-bar callbacks need Python floats. ``events`` are the per-asset
    events that iterating its batches moves (a replay passes one for all its blocks). A bar's
    index (its asset's bar count) is ``bar_index[row] + bar_offset``: a stream repeating its
    universe moves the offset, not the array. ``layout``: the assets every timestamp of the
    block lists, in row order (a complete panel's universe), so rows are found in it once
    for the whole block and the marks take it as their column's assets without comparing.
    """

    __slots__ = (
        "_events",
        "_frozen",
        "_layout",
        "_pointed",
        "_prices",
        "_timestamp",
        "arrays",
        "asset_ids",
        "bar_index",
        "bar_offset",
        "close",
        "high",
        "layout",
        "low",
        "open",
        "signal_names",
        "signals",
        "start",
        "stop",
        "ts_ns",
        "volume",
    )

    def __init__(
        self,
        asset_ids: list[str],
        columns: Mapping[str, list[float]],
        bar_index: npt.NDArray[np.int64],
        signals: Mapping[str, list[float]],
        arrays: Mapping[str, npt.NDArray[np.float64]],
        signal_names: tuple[str, ...],
        events: BatchEvents | None = None,
        bar_offset: int = 0,
        layout: list[str] | None = None,
        read_only: bool = False,
        finder: RowFinder | None = None,
    ) -> None:
        self.asset_ids = asset_ids
        self.layout = layout
        self.open = columns["open"]
        self.high = columns["high"]
        self.low = columns["low"]
        self.close = columns["close"]
        self.volume = columns["volume"]
        self.bar_index = bar_index
        self.bar_offset = bar_offset
        self.signals = signals
        self.signal_names = signal_names
        self.arrays = arrays
        self._prices = tuple(arrays[name] for name in _PRICE_COLUMNS)  # what ``bar`` reads
        self.ts_ns = 0
        self._timestamp: datetime | None = None
        self.start = 0
        self.stop = 0
        # the rows of the timestamp last looked into (``finder``: one the caller keeps
        # from block to block, so a stream repeating its universe indexes it once)
        self._layout = finder if finder is not None else RowFinder()
        if layout is not None:  # every timestamp's rows are ``layout``'s: pointed for good
            self._layout.point(layout)
        self._pointed = layout is not None  # whether ``_layout`` is this timestamp's
        self._events = events if events is not None else BatchEvents()
        # ``arrays`` are read-only already: whole, they are the views; sliced, so are theirs
        self._frozen = read_only

    @classmethod
    def single(
        cls,
        ts_ns: int,
        asset_ids: list[str],
        columns: Mapping[str, npt.NDArray[np.float64]],
        bar_index: npt.NDArray[np.int64],
        *,
        needs_rows: bool,
        bar_offset: int = 0,
        signal_names: tuple[str, ...] | None = None,
        read_only: bool = False,
        finder: RowFinder | None = None,
    ) -> BarBlock:
        """A block of one timestamp's columns (``open`` … ``volume``, ``signal:<name>``), in
        asset order, already moved to ``ts_ns``: what both loops hand the dispatcher when a
        timestamp is prepared on its own (a stream; a replay joining features).
        ``signal_names``: the sorted names of the ``signal:`` columns, if the caller knows
        them; ``read_only``: every column is a read-only array (a binary frame's views);
        ``finder``: the caller's ``RowFinder``, kept from timestamp to timestamp."""
        names = signal_names
        if names is None:
            names = tuple(
                sorted(k.removeprefix("signal:") for k in columns if k.startswith("signal:"))
            )
        if needs_rows:
            rows = {k: floats(columns[k]) for k in _PRICE_COLUMNS}
            signals = {n: floats(columns[f"signal:{n}"]) for n in names}
        else:  # the columns only (a batch strategy)
            rows = {"open": [], "high": [], "low": [], "close": [], "volume": []}
            signals = {}
        block = cls(
            asset_ids,
            rows,
            bar_index,
            signals,
            columns,
            names,
            bar_offset=bar_offset,
            read_only=read_only,
            finder=finder,
        )
        block.move(ts_ns, 0, len(asset_ids))
        return block

    def move(self, ts_ns: int, start: int, stop: int, timestamp: datetime | None = None) -> None:
        """Point the block at one timestamp's rows (the datetime is made lazily if omitted)."""
        self.ts_ns = ts_ns
        self._timestamp = timestamp
        self.start = start
        self.stop = stop
        self._pointed = self.layout is not None

    def _row(self, asset_id: str) -> int:
        """The row of ``asset_id`` at this timestamp, or -1. A timestamp laid out as the
        last one looked into (a complete panel's are) reuses its index (``RowFinder``)."""
        start, stop = self.start, self.stop
        if stop - start == 1:
            return start if self.asset_ids[start] == asset_id else -1
        layout = self._layout
        if not self._pointed:
            ids = self.asset_ids
            layout.point(ids if start == 0 and stop == len(ids) else ids[start:stop])
            self._pointed = True
        row = layout.find(asset_id)
        return start + row if row >= 0 else -1

    def bar(self, asset_id: str) -> Bar | None:
        """This timestamp's bar for ``asset_id``, or None if it has none."""
        i = self._row(asset_id)
        if i < 0:
            return None
        open_, high, low, close, volume = self._prices
        return (
            float(open_[i]),
            float(high[i]),
            float(low[i]),
            float(close[i]),
            float(volume[i]),
            int(self.bar_index[i]) + self.bar_offset,
        )

    def signals_of(self, asset_id: str) -> Mapping[str, float]:
        """The signals of ``asset_id``'s bar at this timestamp (empty if it has none)."""
        i = self._row(asset_id)
        if i < 0:
            return {}
        if self.signals:
            return SignalView(self.signals, i)
        return {name: float(self.arrays[f"signal:{name}"][i]) for name in self.signal_names}

    def batch(self, context: Mapping[str, Any]) -> TimestampBatch:
        """This timestamp's columns as read-only views (the run's own arrays, never copies:
        a strategy that writes into them would change the bars the broker fills on)."""
        start, stop = self.start, self.stop
        arrays = self.arrays
        frozen = self._frozen
        whole = start == 0 and stop == len(self.asset_ids)

        def view(name: str) -> npt.NDArray[np.float64]:
            # read-only columns are handed over as they are (whole) or sliced (a slice of a
            # read-only array is read-only: setting the flag costs ~1 µs a column)
            if frozen:
                return arrays[name] if whole else arrays[name][start:stop]
            return frozen_view(arrays[name][start:stop])

        return TimestampBatch(
            self._timestamp,
            self.asset_ids[start:stop],
            view("open"),
            view("high"),
            view("low"),
            view("close"),
            view("volume"),
            {name: view(f"signal:{name}") for name in self.signal_names},
            context,
            self._events,
            ts_ns=self.ts_ns,
        )


def frozen_view(view: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    """``view``, made read-only (its own flag: the array it views stays as it is)."""
    view.flags.writeable = False
    return view


class RiskHook(Protocol):
    """What the dispatcher asks of a risk manager (see ``tradeloop.risk.manager``)."""

    def check(self, block: BarBlock) -> None: ...

    def record(self, block: BarBlock, context: Mapping[str, Any]) -> None: ...


class Dispatcher:
    """Drives one strategy and one broker through timestamps, in the order documented above."""

    def __init__(
        self,
        strategy: Strategy,
        broker: RuntimeBroker,
        risk: RiskHook | None = None,
    ) -> None:
        self.strategy = strategy
        self.broker = broker
        self.risk = risk
        self.on_event = _event_handler(strategy)
        self.on_batch = _batch_handler(strategy)

    @property
    def needs_rows(self) -> bool:
        """Whether per-bar Python values are needed (per-bar callbacks)."""
        return self.on_event is not None

    def step(self, block: BarBlock, context: Mapping[str, Any], *, decide: bool = True) -> None:
        """Handle the one timestamp ``block`` was moved to (the live runtime's entry point).

        ``decide=False`` runs every step but the strategy's callbacks (its features are
        missing): orders fill, marks move, risk exits still fire.
        """
        self.run(block, [block.ts_ns], [block.start, block.stop], context, decide=decide)

    def run(
        self,
        block: BarBlock,
        stamps: list[int],
        bounds: list[int],
        snapshot_at: Callable[[int], Mapping[str, Any]] | Mapping[str, Any],
        *,
        decide: bool = True,
    ) -> None:
        """Handle consecutive timestamps: ``stamps[j]`` owns rows ``bounds[j]:bounds[j + 1]``.

        ``snapshot_at`` gives the context of a timestamp (or is the one context of them all).
        One loop with everything it touches bound to locals, because this is the replay's
        innermost loop; ``step`` runs it for a single timestamp. A timestamp with nothing to
        fill costs the broker nothing: a broker that says so (``skips_idle_timestamps``: it
        has no work but its clock while no order is open) is not called then, and without a
        risk manager nothing else is either. Each asset's ``MarketEvent`` (and its signal
        view) is made once and moved from bar to bar (see ``MarketEvent``).
        """
        broker = self.broker
        book = broker.book
        begin, end, marks = broker.begin_timestamp, broker.end_timestamp, broker.marks
        open_orders = book.open_by_asset
        ids, close, close_array = block.asset_ids, block.close, block.arrays["close"]
        layout = block.layout  # the same assets at every timestamp: the marks' one column
        on_event, on_batch = self.on_event, self.on_batch
        if not decide:
            on_event = on_batch = None
        risk = self.risk
        quiet = risk is None and getattr(broker, "skips_idle_timestamps", False)
        constant = None if callable(snapshot_at) else snapshot_at
        events: dict[str, MarketEvent] = {}
        rows = _rows_of(block)
        one_bar_each = bounds[-1] - bounds[0] == len(stamps)
        if quiet and one_bar_each and constant is not None and on_batch is None and on_event:
            self._run_bars(block, stamps, bounds[0], constant, on_event)
            return
        for j, ts_ns in enumerate(stamps):
            start, stop = bounds[j], bounds[j + 1]
            context = constant if constant is not None else snapshot_at(ts_ns)  # type: ignore[operator]
            if quiet and not open_orders:
                book.now_ns = ts_ns
                moved = False
            else:
                block.move(ts_ns, start, stop)
                moved = True
                begin(ts_ns, block)
                if risk is not None:
                    risk.check(block)
            if stop - start == 1:
                marks[ids[start]] = close[start] if close else float(close_array[start])
            elif start == 0 and stop == len(ids):  # a block of one timestamp (a stream's)
                marks.set_column(ids, close if close else close_array)
            else:
                closes = close[start:stop] if close else close_array[start:stop]
                marks.set_column(layout if layout is not None else ids[start:stop], closes)
            if on_event is not None:
                rows.ts_ns, rows.context, rows._timestamp = ts_ns, context, None
                for i, asset in zip(range(start, stop), ids[start:stop], strict=True):
                    event = events.get(asset)
                    if event is None:
                        event = events[asset] = MarketEvent.on_rows(rows, i, asset)
                    else:
                        event._row = i
                        event.signals._row = i  # type: ignore[attr-defined]
                    on_event(event, context)
            if on_batch is not None:
                if not moved:
                    block.move(ts_ns, start, stop)
                on_batch(block.batch(context), context)
            if not quiet:
                end()
                if risk is not None:
                    risk.record(block, context)

    def _run_bars(
        self,
        block: BarBlock,
        stamps: list[int],
        first: int,
        context: Mapping[str, Any],
        on_event: Callable[[MarketEvent, Mapping[str, Any]], None],
    ) -> None:
        """``run`` where every timestamp has one bar (one asset, or assets that never share
        a timestamp), the context never changes, no risk manager runs and the broker skips
        idle timestamps: the same steps in the same order, with nothing looked up twice."""
        broker = self.broker
        book = broker.book
        begin, open_orders = broker.begin_timestamp, book.open_by_asset
        marks = broker.marks.plain()  # one mark a timestamp: straight into the dict
        stop = first + len(stamps)
        bars = zip(
            stamps,
            range(first, stop),
            block.asset_ids[first:stop],
            block.close[first:stop],
            strict=True,
        )
        rows = _rows_of(block)
        rows.context = context
        events: dict[str, MarketEvent] = {}
        for ts_ns, i, asset, close in bars:
            if open_orders:
                block.move(ts_ns, i, i + 1)
                begin(ts_ns, block)
            else:
                book.now_ns = ts_ns
            marks[asset] = close
            rows.ts_ns, rows._timestamp = ts_ns, None
            event = events.get(asset)
            if event is None:
                event = events[asset] = MarketEvent.on_rows(rows, i, asset)
            else:
                event._row = i
                event.signals._row = i  # type: ignore[attr-defined]
            on_event(event, context)


def _rows_of(block: BarBlock) -> BarRows:
    """The block's columns as the rows its per-bar events read (one per ``run``)."""
    signals = dict(block.signals)
    return BarRows(block.open, block.high, block.low, block.close, block.volume, signals, 0, {})


def _overrides(strategy: Strategy, name: str) -> bool:
    return getattr(type(strategy), name, None) is not getattr(Strategy, name, None)


def _event_handler(strategy: Strategy) -> Callable[[MarketEvent, Mapping[str, Any]], None] | None:
    if _overrides(strategy, "on_market_event"):
        return strategy.on_market_event
    legacy = getattr(strategy, "on_market_data", None)
    if legacy is None:
        return None
    takes_context = len(inspect.signature(legacy).parameters) >= 2
    if takes_context:
        return legacy  # type: ignore[no-any-return]

    def call_without_context(event: MarketEvent, context: Mapping[str, Any]) -> None:
        legacy(event)

    return call_without_context


def _batch_handler(
    strategy: Strategy,
) -> Callable[[TimestampBatch, Mapping[str, Any]], None] | None:
    return strategy.on_timestamp_batch if _overrides(strategy, "on_timestamp_batch") else None
