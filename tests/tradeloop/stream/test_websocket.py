"""``WebSocketFeed`` and ``ReplayServer`` on 127.0.0.1: frames travel uncompressed (inflating
a bars frame cost the receiver more latency than the bytes it saved; see the module)."""

from __future__ import annotations

from pathlib import Path

from websockets.asyncio.client import connect

from tradeloop.events import BarBatchMessage
from tradeloop.stream.codec import decode
from tradeloop.stream.server import ReplayServer
from tradeloop.stream.websocket import WebSocketFeed

DATA = Path(__file__).resolve().parents[3] / "examples" / "data"


async def test_feed_offers_no_deflate_and_the_server_grants_it_to_no_client() -> None:
    server = await ReplayServer(DATA / "sample.parquet", batched=True, binary=True).start()
    try:
        async with WebSocketFeed(server.url).connection() as feed:
            assert feed.request is not None
            assert "Sec-WebSocket-Extensions" not in feed.request.headers
            assert feed.protocol.extensions == []
            first = decode(await feed.recv())
            assert isinstance(first, BarBatchMessage)  # the binary frame, as sent
        async with connect(server.url) as other:  # the library's default offers deflate
            assert other.request is not None
            assert "permessage-deflate" in other.request.headers["Sec-WebSocket-Extensions"]
            assert other.protocol.extensions == []
    finally:
        await server.close()
