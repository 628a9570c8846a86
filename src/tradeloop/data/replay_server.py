"""A WebSocket server that streams historical bars live (``tradeloop serve-replay``). I/O edge.

Every client gets the whole replay from the start, in time order: at each timestamp first
the context values observed by then, then every asset's bar, then (with ``speed`` > 0) a
pause of the bar interval divided by ``speed``. The wire format is ``data/stream.py``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import numpy as np
from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.exceptions import ConnectionClosed

from tradeloop.data.bars import BarTable
from tradeloop.data.context import Context
from tradeloop.data.feed import HistoricalFeed
from tradeloop.data.stream import BarMessage, ContextMessage, EndMessage, Message, encode

__all__ = ["ReplayServer", "replay_messages"]


def replay_messages(table: BarTable, context: Context) -> Iterator[tuple[int, list[Message]]]:
    """(ts_ns, messages) per timestamp: context observed by then, then the bars."""
    updates = sorted(
        (int(ts), name, value)
        for name in context.names
        for ts, value in zip(*context.series_points(name), strict=True)
    )
    u = 0
    names = table.asset_ids
    signals = list(table.signals.items())
    for k, ts_ns in enumerate(table.unique_ts_ns.tolist()):
        batch: list[Message] = []
        while u < len(updates) and updates[u][0] <= ts_ns:
            batch.append(ContextMessage(updates[u][1], updates[u][0], updates[u][2]))
            u += 1
        rows = range(int(table.ts_bounds[k]), int(table.ts_bounds[k + 1]))
        batch.extend(_bar(table, names, signals, ts_ns, i) for i in rows)
        yield ts_ns, batch


def _bar(
    table: BarTable,
    names: tuple[str, ...],
    signals: list[tuple[str, Any]],
    ts_ns: int,
    i: int,
) -> BarMessage:
    volume = float(table.volume[i])
    return BarMessage(
        names[int(table.asset_code[i])],
        ts_ns,
        float(table.open[i]),
        float(table.high[i]),
        float(table.low[i]),
        float(table.close[i]),
        volume if np.isfinite(volume) else 0.0,
        {n: float(v[i]) for n, v in signals if np.isfinite(v[i])},
    )


class ReplayServer:
    """Serve ``data`` (anything HistoricalFeed reads) and ``context`` on ``host:port``."""

    def __init__(
        self,
        data: Any,
        *,
        context: Any = None,
        signal_columns: list[str] | None = None,
        speed: float = 0.0,
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        feed = data if isinstance(data, HistoricalFeed) else HistoricalFeed(data, signal_columns)
        self.table = BarTable.from_frame(feed.frame())
        self.context = context if isinstance(context, Context) else Context(context)
        self.speed = speed
        self.host, self.port = host, port
        self._server: Server | None = None

    @property
    def url(self) -> str:
        return f"ws://{self.host}:{self.port}"

    async def start(self) -> ReplayServer:
        self._server = await serve(self._handle, self.host, self.port)
        self.port = self._server.sockets[0].getsockname()[1] if self._server.sockets else 0
        return self

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    async def serve_forever(self) -> None:
        await self.start()
        assert self._server is not None
        await self._server.serve_forever()

    async def _handle(self, connection: ServerConnection) -> None:
        previous: int | None = None
        try:
            for ts_ns, messages in replay_messages(self.table, self.context):
                if self.speed > 0 and previous is not None:
                    await asyncio.sleep((ts_ns - previous) / 1e9 / self.speed)
                previous = ts_ns
                for message in messages:
                    await connection.send(encode(message))
            await connection.send(encode(EndMessage()))
        except ConnectionClosed:
            return
