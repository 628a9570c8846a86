"""GET /history in pages: a large request cannot make the server build one huge answer, and
the feed follows the pages to the same messages (the server on 127.0.0.1, aiohttp client)."""

from __future__ import annotations

from pathlib import Path

import aiohttp
import polars as pl

from tradeloop import Context
from tradeloop.events import BarMessage, ContextMessage
from tradeloop.stream.codec import NEXT_START_HEADER
from tradeloop.stream.server import ReplayServer
from tradeloop.stream.websocket import WebSocketFeed

DATA = Path(__file__).resolve().parents[3] / "examples" / "data"


def _keys(messages: list[object]) -> list[tuple[object, ...]]:
    return [
        (type(m).__name__, m.ts_ns, getattr(m, "asset_id", getattr(m, "name", "")))  # type: ignore[attr-defined]
        for m in messages
    ]


async def test_history_answers_in_pages_and_the_feed_follows_them() -> None:
    vix = Context(pl.read_parquet(DATA / "vix.parquet"))
    whole = await ReplayServer(DATA / "sample.parquet", context=vix).start()
    paged = await ReplayServer(
        DATA / "sample.parquet", context=vix, max_history_messages=12
    ).start()
    try:
        times = whole.table.unique_ts_ns
        start, end = int(times[10]), int(times[40])
        url = f"http://127.0.0.1:{paged.port}/history?start_ns={start}&end_ns={end}"
        async with aiohttp.ClientSession() as session, session.get(url) as response:
            body = await response.text()
            following = response.headers[NEXT_START_HEADER]
        # 5 assets a timestamp: 12 bars allow two whole timestamps (10 bars), not three
        assert (
            sum('"type": "bar"' in line or '"type":"bar"' in line for line in body.splitlines())
            == 10
        )
        assert int(following) == int(times[12])
        one = await WebSocketFeed(whole.url).history(start, end)
        pages = await WebSocketFeed(paged.url).history(start, end)
    finally:
        await whole.close()
        await paged.close()
    assert _keys(pages) == _keys(one)
    assert sum(isinstance(m, BarMessage) for m in one) == 31 * 5
    assert any(isinstance(m, ContextMessage) for m in one)
