"""Historical data as a stream of messages: the source of ``ReplayFeed`` (in process) and of
``ReplayServer`` (over WebSocket). Pure apart from ``ReplayFeed``'s pacing.

At each timestamp come first the context values observed by then, then the bars: one
``bars`` message with every asset (``batched=True``) or one ``bar`` message per asset.
"""

from __future__ import annotations

import asyncio
import bisect
from collections.abc import AsyncIterator, Iterator
from typing import Any

import numpy as np

from tradeloop.data.bars import BarTable
from tradeloop.data.context import Context
from tradeloop.data.feed import HistoricalFeed
from tradeloop.events import BarBatchMessage, BarMessage, ContextMessage, Message

__all__ = ["ReplayFeed", "load_replay", "replay_messages"]


def load_replay(
    data: Any, context: Any = None, signal_columns: list[str] | None = None
) -> tuple[BarTable, Context]:
    """Validate ``data`` (anything ``HistoricalFeed`` reads) and ``context`` once."""
    feed = data if isinstance(data, HistoricalFeed) else HistoricalFeed(data, signal_columns)
    table = BarTable.from_frame(feed.frame())
    return table, context if isinstance(context, Context) else Context(context)


def replay_messages(
    table: BarTable,
    context: Context,
    *,
    batched: bool = False,
    start: int = 0,
    stop: int | None = None,
) -> Iterator[tuple[int, list[Message]]]:
    """(ts_ns, messages) per timestamp: context observed by then, then the bars; only the
    timestamps ``start:stop`` (by index), each with what the full replay sends there."""
    updates = sorted(
        (int(ts), name, value)
        for name in context.names
        for ts, value in zip(*context.series_points(name), strict=True)
    )
    times = table.unique_ts_ns.tolist()
    u = 0
    if start > 0:  # what earlier timestamps sent is not sent again
        u = bisect.bisect_right([update[0] for update in updates], times[start - 1])
    names = table.asset_ids
    name_of = np.array(names, dtype=object)
    signals = list(table.signals.items())
    volume = np.nan_to_num(table.volume, nan=0.0)
    for k in range(start, len(times) if stop is None else min(stop, len(times))):
        ts_ns = times[k]
        batch: list[Message] = []
        while u < len(updates) and updates[u][0] <= ts_ns:
            batch.append(ContextMessage(updates[u][1], updates[u][0], updates[u][2]))
            u += 1
        a, b = int(table.ts_bounds[k]), int(table.ts_bounds[k + 1])
        if batched:
            batch.append(
                BarBatchMessage(
                    ts_ns,
                    name_of[table.asset_code_of(slice(a, b))].tolist(),
                    table.open[a:b],
                    table.high[a:b],
                    table.low[a:b],
                    table.close[a:b],
                    volume[a:b],
                    {n: v[a:b] for n, v in signals},
                )
            )
        else:
            batch.extend(_bars(table, name_of, signals, volume, ts_ns, a, b))
        yield ts_ns, batch


def _bars(
    table: BarTable,
    name_of: Any,
    signals: list[tuple[str, Any]],
    volume: Any,
    ts_ns: int,
    a: int,
    b: int,
) -> Iterator[BarMessage]:
    """One ``bar`` message per row of ``a:b`` (columns sliced once, not indexed per bar)."""
    signal_rows = [(n, v[a:b].tolist()) for n, v in signals]
    for j, (asset, open_, high, low, close, vol) in enumerate(
        zip(
            name_of[table.asset_code_of(slice(a, b))].tolist(),
            table.open[a:b].tolist(),
            table.high[a:b].tolist(),
            table.low[a:b].tolist(),
            table.close[a:b].tolist(),
            volume[a:b].tolist(),
            strict=True,
        )
    ):
        values = {n: v[j] for n, v in signal_rows if v[j] == v[j]}  # NaN: no value
        yield BarMessage(asset, ts_ns, open_, high, low, close, vol, values)


class ReplayFeed:
    """Historical bars as a live stream, in process: as fast as possible (``speed=0``) or at
    ``speed`` × real time. One ``bars`` message per timestamp; give it to ``LiveRuntime``
    to paper-trade history without a socket."""

    def __init__(
        self,
        data: Any,
        *,
        context: Any = None,
        signal_columns: list[str] | None = None,
        speed: float = 0.0,
        batched: bool = True,
    ) -> None:
        self.table, self.context = load_replay(data, context, signal_columns)
        self.speed = speed
        self.batched = batched

    @property
    def context_names(self) -> tuple[str, ...]:
        """The context series this replay carries (a run expects them from the start)."""
        return self.context.names

    async def messages(self) -> AsyncIterator[Message]:
        previous: int | None = None
        for k, (ts_ns, messages) in enumerate(
            replay_messages(self.table, self.context, batched=self.batched)
        ):
            if self.speed > 0 and previous is not None:
                await asyncio.sleep((ts_ns - previous) / 1e9 / self.speed)
            elif k % 64 == 63:
                await asyncio.sleep(0)  # let the rest of the loop (health checks) run
            previous = ts_ns
            for message in messages:
                yield message
