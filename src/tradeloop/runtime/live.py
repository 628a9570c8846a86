"""The asyncio runtime: bars from a stream, one Dispatcher step per timestamp.

The same ``Dispatcher`` as the replay handles each timestamp, so a strategy behaves the
same live. A timestamp is handed over when the first bar of a later timestamp arrives (or
the stream ends): a stream sends every asset's bar for one time before the next time.
After a reconnect, a half-received timestamp is dropped and received again whole.
Context messages update a buffer; each timestamp sees the latest value observed at or
before it. Late bars (older than the timestamp in progress) and repeated (asset, time)
bars are counted and skipped.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import AsyncIterator, Callable
from typing import Any, Protocol

import numpy as np

from tradeloop.broker.simulation import SimulationBroker
from tradeloop.data.context import EMPTY_SNAPSHOT, ContextSnapshot
from tradeloop.data.stream import BarMessage, ContextMessage, Message
from tradeloop.data.supervisor import Reconnected
from tradeloop.runtime.dispatch import BarBlock, Dispatcher, RiskHook
from tradeloop.strategy.base import Strategy

__all__ = ["LiveRuntime", "MessageSource"]


class MessageSource(Protocol):
    def messages(self) -> AsyncIterator[Message | Reconnected]: ...


class LiveRuntime:
    """Drive ``strategy`` and ``broker`` from ``feed`` until the stream ends."""

    def __init__(
        self,
        feed: MessageSource,
        strategy: Strategy,
        broker: SimulationBroker,
        *,
        risk: Any = None,
        resume: dict[str, Any] | None = None,
        on_timestamp: Callable[[int], None] | None = None,
    ) -> None:
        self.feed = feed
        self.strategy = strategy
        self.broker = broker
        self.risk: RiskHook | None = risk
        self.bars_seen = 0
        self.timestamps = 0
        self.late = 0
        self.duplicates = 0
        self._pending: dict[str, BarMessage] = {}
        self._ts_ns: int | None = None
        self._context: dict[str, list[tuple[int, Any]]] = {}
        self._bar_count: dict[str, int] = dict((resume or {}).get("bar_counts", {}))
        self._resume_after: int | None = (resume or {}).get("last_ts_ns")
        self.replayed = 0  # bars at or before the resume point, already handled before a restart
        self.on_timestamp = on_timestamp
        self._last_flushed: int | None = self._resume_after
        self._stop = False
        self.stopped = False

    def request_stop(self) -> None:
        """Stop after the message in hand: the current timestamp is still handled."""
        self._stop = True

    async def run(self) -> None:
        strategy, broker = self.strategy, self.broker
        if self.risk is not None:
            self.risk.bind(broker)  # type: ignore[attr-defined]
        self._dispatcher = Dispatcher(strategy, broker, None, self.risk)
        if type(strategy).on_fill is not Strategy.on_fill:
            broker.fill_listeners.append(strategy.on_fill)
        strategy.broker = broker
        try:
            strategy.on_start()
            try:
                async for message in self.feed.messages():
                    if isinstance(message, ContextMessage):
                        self._context.setdefault(message.name, []).append(
                            (message.ts_ns, message.value)
                        )
                    elif isinstance(message, BarMessage):
                        self._on_bar(message)
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
            self._flush()
            strategy.on_end()
        finally:
            strategy.broker = None

    def state(self) -> dict[str, Any]:
        """What a restart needs to carry on (see ``journal``)."""
        return {"bar_counts": dict(self._bar_count)}

    def _on_bar(self, bar: BarMessage) -> None:
        if self._resume_after is not None and bar.ts_ns <= self._resume_after:
            self.replayed += 1
            return
        self.bars_seen += 1
        if self._ts_ns is not None and bar.ts_ns < self._ts_ns:
            self.late += 1
            return
        if self._ts_ns is not None and bar.ts_ns > self._ts_ns:
            self._flush()
        if bar.asset_id in self._pending:
            self.duplicates += 1
            return
        self._ts_ns = bar.ts_ns
        self._pending[bar.asset_id] = bar

    def _flush(self) -> None:
        if not self._pending or self._ts_ns is None:
            return
        bars = [self._pending[a] for a in sorted(self._pending)]
        self._pending = {}
        ts_ns = self._ts_ns
        names = sorted({name for bar in bars for name in bar.signals})
        columns = {
            "open": [b.open for b in bars],
            "high": [b.high for b in bars],
            "low": [b.low for b in bars],
            "close": [b.close for b in bars],
            "volume": [b.volume for b in bars],
        }
        signals = {n: [b.signals.get(n, math.nan) for b in bars] for n in names}
        counts = self._bar_count
        bar_index = np.array([counts.get(b.asset_id, 0) for b in bars], dtype=np.int64)
        for b in bars:
            counts[b.asset_id] = counts.get(b.asset_id, 0) + 1
        arrays = {k: np.array(v) for k, v in columns.items()}
        arrays.update({f"signal:{n}": np.array(v) for n, v in signals.items()})
        block = BarBlock(
            [b.asset_id for b in bars], columns, bar_index, signals, arrays, tuple(names)
        )
        block.move(ts_ns, 0, len(bars))
        self._dispatcher.step(block, self._snapshot(ts_ns))
        self._last_flushed = ts_ns
        self.timestamps += 1
        if self.on_timestamp is not None:
            self.on_timestamp(ts_ns)

    def _snapshot(self, ts_ns: int) -> ContextSnapshot:
        if not self._context:
            return EMPTY_SNAPSHOT
        values: dict[str, Any] = {}
        for name, points in self._context.items():
            value = None
            for when, observed in reversed(points):
                if when <= ts_ns and observed is not None and observed == observed:
                    value = observed
                    break
            values[name] = value
            del points[: max(len(points) - 64, 0)]  # the buffer keeps recent values only
        return ContextSnapshot(values)
