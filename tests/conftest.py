"""Shared test helpers: tiny hand-written bar frames, a strategy driven by a script, and a
stream of listed messages for the live runtime."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

import polars as pl

from tradeloop import MarketEvent, Strategy
from tradeloop.events import Message

DAY0 = datetime(2024, 1, 1, 21, 0, tzinfo=UTC)


def day(i: int) -> datetime:
    """The i-th daily bar time (21:00 UTC, after the US close)."""
    return DAY0 + timedelta(days=i)


def bars(
    rows: list[tuple[Any, ...]], signals: Mapping[str, list[float]] | None = None
) -> pl.DataFrame:
    """Rows of (day, asset, open, high, low, close[, volume]) as a long frame."""
    out = pl.DataFrame(
        {
            "timestamp": [day(r[0]) for r in rows],
            "asset_id": [r[1] for r in rows],
            "open": [float(r[2]) for r in rows],
            "high": [float(r[3]) for r in rows],
            "low": [float(r[4]) for r in rows],
            "close": [float(r[5]) for r in rows],
            "volume": [float(r[6]) if len(r) > 6 else 1_000_000.0 for r in rows],
        }
    )
    for name, values in (signals or {}).items():
        out = out.with_columns(pl.Series(name, values, dtype=pl.Float64))
    return out


Action = Callable[[Strategy, MarketEvent], Any]


class Scripted(Strategy):
    """Runs ``script[(day_index, asset)](self, event)`` on the matching bar; records results."""

    def __init__(self, script: Mapping[tuple[int, str], Action]) -> None:
        super().__init__()
        self.script = dict(script)
        self.returned: dict[tuple[int, str], Any] = {}
        self.seen: list[tuple[datetime, str, float]] = []

    def on_market_event(self, event: MarketEvent, context: Mapping[str, Any]) -> None:
        index = (event.timestamp - DAY0).days
        self.seen.append((event.timestamp, event.asset_id, self.get_position(event.asset_id)))
        action = self.script.get((index, event.asset_id))
        if action is not None:
            self.returned[(index, event.asset_id)] = action(self, event)


class Messages:
    """A ``LiveRuntime`` feed of the listed messages, in order, then the end of the stream."""

    def __init__(self, messages: list[Message]) -> None:
        self.items = messages

    async def messages(self) -> AsyncIterator[Message]:
        for message in self.items:
            yield message
