"""The asyncio runtime: bars from a stream, one Dispatcher step per timestamp.

The same ``Dispatcher`` as the replay handles each timestamp, so a strategy behaves the
same live. A timestamp is handed over when it is complete: a ``bars`` message carries a
whole timestamp; single ``bar`` messages complete one when every asset of ``universe`` has
reported, or when the first bar of a later timestamp arrives (or the stream ends). A
timestamp half received when the stream drops, or when the runtime is stopped, is dropped
and received again whole. Context messages are observations of the run's ``Context`` (the
replay's as-of lookup): a name declared up front (``context_names``) is ``None`` until its
first value, as in a replay. Late bars (at or before a timestamp already handled) and
repeated (asset, time) bars are counted and skipped; ``runtime.intake`` refuses, counts and
logs the rest a feed must not put in front of the strategy (bars breaking the one set of bar
rules, bars from the future, assets outside the universe, context of the wrong kind).

A strategy callback's exception leaves ``run`` as it is (as in a replay); its timestamp is
not handed to ``on_timestamp`` (not journaled), and ``current_ts_ns`` says which it was.

With a ``features`` provider, each timestamp is joined exactly as a replay joins it
(``data.features.FeatureJoin``). If asking fails or times out, the timestamp's orders still
fill and its prices still mark the book, but the strategy is not called: it never decides
on missing numbers. The skip is logged and counted. With a ``gate``
(``tradeloop.risk.gate``), every order passes its hard limits; the gate's day and mode are
part of ``state()``.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from itertools import repeat
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt
import structlog

from tradeloop.broker.base import RuntimeBroker
from tradeloop.clock import utc_datetime
from tradeloop.data.bars import TimestampColumns
from tradeloop.data.context import Context
from tradeloop.data.features import FeatureJoin, FeatureProvider, PrecomputedFeatureProvider
from tradeloop.errors import FeatureError
from tradeloop.events import BarBatchMessage, BarMessage, ContextMessage, Message, Reconnected
from tradeloop.risk.gate import PreTradeGate
from tradeloop.risk.manager import RiskManager
from tradeloop.rows import RowFinder
from tradeloop.runtime.dispatch import BarBlock, Dispatcher
from tradeloop.runtime.features import ask_features
from tradeloop.runtime.intake import Intake, IntakeLimits
from tradeloop.strategy.base import Strategy, attach

__all__ = ["LiveRuntime", "MessageSource"]

_PRICE_COLUMNS = ("open", "high", "low", "close", "volume")
_YIELD_EVERY_S = 0.05


class MessageSource(Protocol):
    def messages(self) -> AsyncIterator[Message | Reconnected]: ...


class LiveRuntime:
    """Drive ``strategy`` and ``broker`` from ``feed`` until the stream ends."""

    def __init__(
        self,
        feed: MessageSource,
        strategy: Strategy,
        broker: RuntimeBroker,
        *,
        risk: RiskManager | None = None,
        gate: PreTradeGate | None = None,
        features: FeatureProvider | None = None,
        universe: Iterable[str] | None = None,
        context_names: Iterable[str] | None = None,
        resume: dict[str, Any] | None = None,
        on_timestamp: Callable[[int], None] | None = None,
        after_timestamp: Callable[[int], Awaitable[None]] | None = None,
        wall_clock: Callable[[], float] = time.time,
        record: Callable[[TimestampColumns], None] | None = None,
        max_future_s: float | None = None,
        max_assets: int = 10_000,
        max_context_names: int = 1_000,
    ) -> None:
        self.feed = feed
        self.strategy = strategy
        self.broker = broker
        self.risk: RiskManager | None = risk
        self.gate = gate
        self.features = FeatureJoin(features) if features is not None else None
        self.universe = frozenset(universe) if universe is not None else None
        self.wall_clock = wall_clock
        self.bars_seen = 0
        self.timestamps = 0
        self.late = 0
        self.duplicates = 0
        self.feature_skips = 0
        self._pending: dict[str, BarMessage] = {}
        self._ts_ns: int | None = None
        resume = resume or {}
        names = tuple(context_names) if context_names is not None else None
        self.intake = Intake(
            IntakeLimits(
                universe=self.universe,
                context_names=frozenset(names) if names is not None else None,
                max_assets=max_assets,
                max_context_names=max_context_names,
                max_future_s=max_future_s,
            ),
            structlog.get_logger().bind(component="intake"),
            assets=resume.get("bar_counts", {}),
            context=resume.get("context", {}),
        )
        self.context = Context.declared(names or (), resume.get("context", {}))
        if isinstance(features, PrecomputedFeatureProvider):
            self.context = self.context.merged(features.market_context())
        self._bar_count: dict[str, int] = dict(resume.get("bar_counts", {}))
        self._last_ids: list[str] = []
        self._rows = RowFinder()  # the blocks' row lookup: indexed once while ids repeat
        self._sorted: tuple[list[str] | None, list[str], list[int] | None] = (None, [], None)
        self._last_index: npt.NDArray[np.int64] = np.zeros(0, dtype=np.int64)
        self._last_offset = 0
        self._resume_after: int | None = resume.get("last_ts_ns")
        self._resume_risk: dict[str, Any] = resume.get("risk", {})
        if gate is not None:
            gate.restore(resume.get("gate", {}))
        self.replayed = 0  # bars at or before the resume point, already handled before a restart
        self.on_timestamp = on_timestamp  # e.g. the journal's commit
        self.after_timestamp = after_timestamp  # e.g. sending the journaled orders to a venue
        self._last_flushed: int | None = self._resume_after
        self._stop = False
        self._yielded_s = time.monotonic()
        self.stopped = False
        # told every handled timestamp's columns (the result is built from them)
        self._record = record
        self._log = structlog.get_logger().bind(component="runtime")

    def request_stop(self) -> None:
        """Stop after the message in hand: the current timestamp is still handled."""
        self._stop = True

    async def run(self) -> None:
        strategy, broker = self.strategy, self.broker
        if self.risk is not None:
            self.risk.bind(broker)
            self.risk.restore(self._resume_risk)
        if self.gate is not None:
            self.gate.bind(broker)
        self._dispatcher = Dispatcher(strategy, broker, self.risk)
        attach(strategy, broker)
        try:
            strategy.on_start()
            try:
                async for message in self.feed.messages():
                    if isinstance(message, BarMessage):
                        await self._on_bar(message)
                    elif isinstance(message, BarBatchMessage):
                        await self._on_batch(message)
                    elif isinstance(message, ContextMessage):
                        self._on_context(message)
                    elif isinstance(message, Reconnected):
                        # a drop can cut a timestamp in half: forget its partial bars (the
                        # restarted or backfilled stream sends it again, whole) and skip
                        # only what was already handed to the strategy
                        self._pending = {}
                        self._ts_ns = self._last_flushed
                        self._resume_after = self._last_flushed
                    if self._stop:
                        self.stopped = True
                        break
            except asyncio.CancelledError:
                # the owner cancels a runtime stuck waiting on a silent feed: stop cleanly
                self.stopped = True
            if self.stopped:
                self._drop_pending()
            else:
                await self._flush_pending()  # the stream ended: its last timestamp is whole
            strategy.on_end()
        finally:
            strategy.broker = None

    @property
    def current_ts_ns(self) -> int | None:
        """The timestamp being received or handled (the last one, once the run ended)."""
        return self._ts_ns

    @property
    def last_flushed(self) -> int | None:
        """The last timestamp handed to the strategy (and journaled), if any."""
        return self._last_flushed

    def counters(self) -> dict[str, Any]:
        """What the run counted (the daemon's summary and the result's config report them)."""
        return {
            "bars": self.bars_seen,
            "timestamps": self.timestamps,
            "late_bars": self.late,
            "duplicate_bars": self.duplicates,
            "invalid_bars": dict(self.invalid_bars),
            **self.intake.counters(),
            "feature_skips": self.feature_skips,
            "replayed_bars_skipped": self.replayed,
        }

    def state(self) -> dict[str, Any]:
        """What a restart needs to carry on (see ``journal``)."""
        self._sync_bar_counts()
        now = self._last_flushed
        state: dict[str, Any] = {
            "bar_counts": dict(self._bar_count),
            "context": {} if now is None else self.context.in_force(now),
        }
        if self.gate is not None:
            state["gate"] = self.gate.state()
        if self.risk is not None:
            state["risk"] = self.risk.state()
        return state

    # -- messages in ------------------------------------------------------------------------

    def _is_old(self, ts_ns: int, n_bars: int, asset_id: str = "") -> bool:
        """Count and report bars that belong to a timestamp already handled."""
        if self._resume_after is not None and ts_ns <= self._resume_after:
            self.replayed += n_bars
            return True
        self.bars_seen += n_bars
        if self._last_flushed is not None and ts_ns <= self._last_flushed:
            self._skip("late_bar", ts_ns, n_bars, asset_id)
            return True
        return False

    def _skip(self, kind: str, ts_ns: int, n_bars: int, asset_id: str = "") -> None:
        """Count a late or repeated bar; log the first ten, then every hundredth."""
        if kind == "late_bar":
            self.late += n_bars
            count = self.late
        else:
            self.duplicates += n_bars
            count = self.duplicates
        if count <= 10 or count % 100 == 0:
            self._log.warning(kind, ts=str(utc_datetime(ts_ns)), asset=asset_id, total=count)

    @property
    def invalid_bars(self) -> dict[str, int]:
        """Bars refused by the bar rules, by the rule they broke."""
        return self.intake.invalid_bars

    @property
    def unknown_context(self) -> int:
        """Context messages dropped: a name nobody declared (or one too many)."""
        return self.intake.unknown_context

    def _on_context(self, message: ContextMessage) -> None:
        if self.intake.context_refused(message.name, message.ts_ns, message.value):
            return
        self.context.observe(message.name, message.ts_ns, message.value)

    async def _on_bar(self, bar: BarMessage) -> None:
        intake = self.intake
        if intake.from_future(bar.ts_ns, self.wall_clock(), 1, bar.asset_id):
            return
        if intake.asset_refused(bar.asset_id, bar.ts_ns):
            return
        if self._is_old(bar.ts_ns, 1, bar.asset_id):
            return
        if self._ts_ns is not None and bar.ts_ns < self._ts_ns:
            self._skip("late_bar", bar.ts_ns, 1, bar.asset_id)
            return
        if self._ts_ns is not None and bar.ts_ns > self._ts_ns:
            await self._flush_pending()
        if bar.asset_id in self._pending:
            self._skip("duplicate_bar", bar.ts_ns, 1, bar.asset_id)
            return
        self._ts_ns = bar.ts_ns
        self._pending[bar.asset_id] = bar
        universe = self.universe
        if universe and len(self._pending) >= len(universe) and universe.issubset(self._pending):
            await self._flush_pending()

    async def _on_batch(self, batch: BarBatchMessage) -> None:
        if self.intake.from_future(batch.ts_ns, self.wall_clock(), len(batch)):
            return
        ids = batch.asset_ids
        arrays = {name: getattr(batch, name) for name in _PRICE_COLUMNS}
        arrays.update({f"signal:{n}": v for n, v in batch.signals.items()})
        keep = self.intake.kept(ids, batch.ts_ns)
        read_only = batch.read_only and keep is None
        if keep is not None:
            ids = [ids[i] for i in keep]
            arrays = {name: column[keep] for name, column in arrays.items()}
            if not ids:
                return
        if self._is_old(batch.ts_ns, len(ids)):
            return
        if self._ts_ns is not None and batch.ts_ns < self._ts_ns:
            self._skip("late_bar", batch.ts_ns, len(ids))
            return
        await self._flush_pending()
        ids, order = self._name_order(ids)
        if order is not None:  # the strategy sees assets in name order, as in a backtest
            arrays = {name: column[order] for name, column in arrays.items()}
            read_only = False
        names = tuple(sorted(batch.signals))
        await self._dispatch(batch.ts_ns, ids, arrays, names, read_only=read_only)

    def _name_order(self, ids: list[str]) -> tuple[list[str], list[int] | None]:
        """``ids`` in name order, and the order that sorts them (None: already sorted). The
        decoder hands over the same list while a stream's universe repeats: sorted once."""
        known, sorted_ids, order = self._sorted
        if ids is known:
            return sorted_ids, order
        if ids == sorted(ids):
            sorted_ids, order = ids, None
        else:
            order = sorted(range(len(ids)), key=ids.__getitem__)
            sorted_ids = [ids[i] for i in order]
        self._sorted = (ids, sorted_ids, order)
        return sorted_ids, order

    def _drop_pending(self) -> None:
        """Stopping mid-timestamp: its bars so far may be a part of it, and handling a part
        would lose the rest (a restart skips what was handled). Never handled, never
        journaled: a restart receives the timestamp again, whole."""
        if self._pending:
            self._log.info(
                "partial_timestamp_dropped",
                ts=str(utc_datetime(self._ts_ns or 0)),
                bars=len(self._pending),
            )
            self._pending = {}

    async def _flush_pending(self) -> None:
        if not self._pending or self._ts_ns is None:
            return
        bars = [self._pending[a] for a in sorted(self._pending)]
        self._pending = {}
        names = tuple(sorted({name for bar in bars for name in bar.signals}))
        arrays = {
            "open": np.array([b.open for b in bars]),
            "high": np.array([b.high for b in bars]),
            "low": np.array([b.low for b in bars]),
            "close": np.array([b.close for b in bars]),
            "volume": np.array([b.volume for b in bars]),
        }
        for n in names:
            arrays[f"signal:{n}"] = np.array([b.signals.get(n, math.nan) for b in bars])
        await self._dispatch(self._ts_ns, [b.asset_id for b in bars], arrays, names)

    # -- one timestamp ------------------------------------------------------------------------

    async def _dispatch(
        self,
        ts_ns: int,
        asset_ids: list[str],
        arrays: dict[str, npt.NDArray[np.float64]],
        names: tuple[str, ...],
        *,
        read_only: bool = False,
    ) -> None:
        """Hand one complete timestamp (asset-sorted columns; ``read_only``: read-only
        arrays, handed to the strategy as they are) to the dispatcher."""
        self._ts_ns = ts_ns
        valid_ids, arrays = self.intake.valid(ts_ns, asset_ids, arrays)
        if valid_ids is not asset_ids:  # some refused: new columns
            asset_ids, read_only = valid_ids, False
        if not asset_ids:
            return
        snapshot = self.context.at_ns(ts_ns)
        decide = True
        if self.features is not None:
            try:
                per_asset, market = await ask_features(self.features, asset_ids, ts_ns, arrays)
            except FeatureError as err:
                decide = False
                self.feature_skips += 1
                self._log.warning(
                    "features_skipped",
                    ts=str(utc_datetime(ts_ns)),
                    assets=len(asset_ids),
                    error=str(err),
                )
            else:
                snapshot = self.features.join(ts_ns, asset_ids, arrays, per_asset, market, snapshot)
        bar_index, bar_offset = self._next_bar_index(asset_ids)
        block = BarBlock.single(
            ts_ns,
            asset_ids,
            arrays,
            bar_index,
            needs_rows=self._dispatcher.needs_rows,
            bar_offset=bar_offset,
            # a feature join adds (writable) signal columns: names and views made again
            signal_names=names if self.features is None else None,
            read_only=read_only and self.features is None,
            finder=self._rows,
        )
        if self._record is not None:
            self._record((ts_ns, asset_ids, dict(arrays)))
        gate = self.gate
        if gate is not None:
            gate.begin_timestamp(ts_ns, asset_ids, self.wall_clock())
        self._dispatcher.step(block, snapshot, decide=decide)
        if gate is not None:
            gate.end_timestamp()
        self.context.forget_before(ts_ns)
        self._last_flushed = ts_ns
        self.timestamps += 1
        if self.on_timestamp is not None:
            self.on_timestamp(ts_ns)
        if self.after_timestamp is not None:
            await self.after_timestamp(ts_ns)
        now = time.monotonic()
        if now - self._yielded_s >= _YIELD_EVERY_S:
            # a feed with a backlog never suspends: let the loop's other tasks (the kill
            # switch, the health pulse, the venue's streams) run between timestamps
            self._yielded_s = now
            await asyncio.sleep(0)

    def _next_bar_index(self, asset_ids: list[str]) -> tuple[npt.NDArray[np.int64], int]:
        """Each asset's bar count so far, as an array and an offset to add to it. A stream
        that repeats its universe (the usual case) moves the offset by one; the per-asset
        counts are written back only when it changes, or for ``state()``."""
        if asset_ids is self._last_ids or asset_ids == self._last_ids:
            self._last_offset += 1
        else:
            self._sync_bar_counts()
            self._last_index = np.fromiter(
                map(self._bar_count.get, asset_ids, repeat(0)),
                dtype=np.int64,
                count=len(asset_ids),
            )
            self._last_offset = 0
        self._last_ids = asset_ids
        return self._last_index, self._last_offset

    def _sync_bar_counts(self) -> None:
        if self._last_ids:
            counts = (self._last_index + (self._last_offset + 1)).tolist()
            self._bar_count.update(zip(self._last_ids, counts, strict=True))
