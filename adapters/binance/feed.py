"""BinanceFeed: closed klines from the combined stream (the asyncio shell around ``codec``).

A drop, a ``serverShutdown`` notice or the connection nearing Binance's 24 h limit raises
``ConnectionLostError``: reconnecting and backfilling belong to ``SupervisedFeed``, which
calls ``history()`` (GET /api/v3/klines, paged) for the gap. Server pings are answered by
the websockets library's protocol layer (pong frames), which keeps the connection alive.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator

import aiohttp
import orjson
import structlog
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidURI, WebSocketException

from adapters.binance.codec import ServerShutdown, decode_klines, decode_stream_frame
from adapters.binance.config import BinanceSettings
from adapters.binance.errors import error_for
from tradeloop.errors import ConnectionLostError, VenueProtocolError
from tradeloop.events import BarMessage, Message

__all__ = ["BinanceFeed"]

_MS = 1_000_000


class BinanceFeed:
    """Closed bars of ``settings.symbols`` at ``settings.interval``."""

    def __init__(self, settings: BinanceSettings) -> None:
        self.settings = settings
        streams = "/".join(f"{s.lower()}@kline_{settings.interval}" for s in settings.symbols)
        self.url = f"{settings.ws_url}/stream?streams={streams}"
        self.skipped = 0  # malformed frames, logged and dropped
        self.last_error = ""
        self._log = structlog.get_logger().bind(venue="binance", component="feed")

    async def messages(self) -> AsyncIterator[Message]:
        opened = time.monotonic()
        try:
            async with connect(self.url, max_size=2**20, open_timeout=10) as connection:
                self._log.info("feed_connected", streams=len(self.settings.symbols))
                async for frame in connection:
                    try:
                        message = decode_stream_frame(frame)
                    except VenueProtocolError as err:
                        self.skipped += 1
                        self.last_error = str(err)
                        self._log.warning("feed_frame_skipped", reason=str(err))
                        continue
                    if isinstance(message, ServerShutdown):
                        raise ConnectionLostError(
                            f"binance {self.url}: serverShutdown at {message.ts_ms}: reconnecting"
                        )
                    if message is not None:
                        yield message
                    if time.monotonic() - opened > self.settings.max_connection_age_s:
                        # Binance cuts every connection at 24 h; leave first, on our terms
                        raise ConnectionLostError(
                            f"binance {self.url}: connection older than "
                            f"{self.settings.max_connection_age_s:g} s: reconnecting"
                        )
            raise ConnectionLostError(f"binance {self.url}: the server closed the stream")
        except ConnectionClosed as err:
            raise ConnectionLostError(f"binance {self.url}: connection closed ({err})") from err
        except (OSError, InvalidURI, WebSocketException, TimeoutError) as err:
            raise ConnectionLostError(f"binance {self.url}: cannot connect ({err!r})") from err

    async def history(self, start_ns: int, end_ns: int | None) -> list[Message]:
        """Closed bars opening in ``[start_ns, end_ns]`` for every symbol, in time order."""
        start_ms = -(-start_ns // _MS)
        end_ms = None if end_ns is None else end_ns // _MS
        # A live bar at end_ns has closed, so every kline up to it has: the venue's own times
        # decide. Without an end, the wall clock tells the still-forming kline apart.
        closed_before_ms = time.time_ns() // _MS if end_ms is None else 2**62
        bars: list[BarMessage] = []
        timeout = aiohttp.ClientTimeout(total=self.settings.request_timeout_s)
        try:
            async with aiohttp.ClientSession(timeout=timeout) as session:
                for symbol in self.settings.symbols:
                    bars += await self._klines(session, symbol, start_ms, end_ms, closed_before_ms)
        except (aiohttp.ClientError, TimeoutError) as err:
            raise ConnectionLostError(f"binance klines: request failed ({err!r})") from err
        bars.sort(key=lambda bar: (bar.ts_ns, bar.asset_id))
        return list(bars)

    async def _klines(
        self,
        session: aiohttp.ClientSession,
        symbol: str,
        start_ms: int,
        end_ms: int | None,
        closed_before_ms: int,
    ) -> list[BarMessage]:
        limit = self.settings.klines_limit
        out: list[BarMessage] = []
        while True:
            params = {"symbol": symbol, "interval": self.settings.interval}
            params |= {"startTime": str(start_ms), "limit": str(limit)}
            if end_ms is not None:
                params["endTime"] = str(end_ms)
            url = f"{self.settings.rest_url}/api/v3/klines"
            async with session.get(url, params=params) as response:
                body = await response.read()
                if response.status != 200:  # the one error map: 429/418 wait, 5xx retry, ...
                    raise error_for(
                        response.status,
                        body,
                        what=f"binance klines {symbol}",
                        retry_after=response.headers.get("Retry-After"),
                        request="read",
                    )
            try:
                rows = orjson.loads(body)
            except orjson.JSONDecodeError as err:
                raise VenueProtocolError(f"binance klines {symbol}: not JSON ({err})") from err
            out += decode_klines(rows, symbol, closed_before_ms)
            if len(rows) < limit:
                return out
            start_ms = int(rows[-1][0]) + 1  # the next page starts after the last open time
            if end_ms is not None and start_ms > end_ms:
                return out
