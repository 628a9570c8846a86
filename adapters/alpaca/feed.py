"""AlpacaFeed: minute bars from Alpaca's v2 market data stream (the asyncio shell of ``codec``).

Per connection: wait for ``connected``, authenticate within ``auth_timeout_s``, subscribe
``bars`` and ``updatedBars``, then yield bars as ``CorrectionHold`` releases them. A drop, a
silent server or a retryable stream error raises ``ConnectionLostError`` (``SupervisedFeed``
reconnects and backfills through ``history``); bad keys or plan limits raise ``ConfigError``.
After error 406 (another connection to the feed is open on the account) the next connection
waits ``connection_limit_backoff_s``, doubling to 5 minutes: Alpaca counts every attempt.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import AsyncIterator, Callable
from typing import Any, TypeVar

import aiohttp
import orjson
import structlog

from adapters.alpaca.codec import (
    Authenticated,
    BarCorrection,
    Connected,
    CorrectionHold,
    DataEvent,
    DataStreamDecoder,
    StreamError,
    Subscribed,
    decode_bars_page,
    rfc3339,
)
from adapters.alpaca.config import AlpacaSettings
from adapters.alpaca.errors import (
    AlpacaAuthError,
    AuthTimeoutError,
    ConnectionLimitError,
    stream_error,
)
from tradeloop.errors import ConnectionLostError
from tradeloop.events import BarMessage, Message

__all__ = ["AlpacaFeed"]

_MAX_LIMIT_BACKOFF_S = 300.0
_E = TypeVar("_E")
_CLOSED = (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSING, aiohttp.WSMsgType.CLOSED)


class AlpacaFeed:
    """Bars of ``settings.symbols`` (closed minutes; corrections per ``CorrectionHold``)."""

    def __init__(
        self, settings: AlpacaSettings, *, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.settings = settings
        self.clock = clock
        self.decoder = DataStreamDecoder()
        self.hold = CorrectionHold(settings.correction_grace_s)
        self.connections = 0  # sockets opened
        self.limit_hits = 0  # 406 answers
        self._not_before = 0.0
        self._limit_backoff_s = settings.connection_limit_backoff_s
        self._log = structlog.get_logger().bind(component="alpaca_feed", feed=settings.feed)

    @property
    def skipped(self) -> int:
        return self.decoder.skipped

    @property
    def late_corrections(self) -> int:
        return self.hold.late

    async def messages(self) -> AsyncIterator[Message]:
        wait_s = self._not_before - self.clock()
        if wait_s > 0:  # a 406 earlier: connecting sooner would only be refused again
            self._log.info("connection_limit_wait", wait_s=round(wait_s, 3))
            await asyncio.sleep(wait_s)
        url = self.settings.data_ws_url
        try:
            async with (
                aiohttp.ClientSession() as session,
                session.ws_connect(url, heartbeat=20.0, max_msg_size=2**22) as ws,
            ):
                self.connections += 1
                backlog = await self._handshake(ws)
                self._limit_backoff_s = self.settings.connection_limit_backoff_s
                async for bar in self._bars(ws, backlog):
                    yield bar
        except ConnectionLimitError:
            self.limit_hits += 1
            self._not_before = self.clock() + self._limit_backoff_s
            self._log.warning("connection_limit", wait_s=self._limit_backoff_s)
            self._limit_backoff_s = min(_MAX_LIMIT_BACKOFF_S, 2 * self._limit_backoff_s)
            raise
        except (aiohttp.ClientError, OSError) as err:
            reason = self.settings.redact(f"{type(err).__name__}: {err}")
            raise ConnectionLostError(f"{url}: connection failed ({reason})") from err

    async def _handshake(self, ws: aiohttp.ClientWebSocketResponse) -> deque[DataEvent]:
        """connected → auth → subscription; returns any events that came along after it."""
        backlog: deque[DataEvent] = deque()
        timeout_s = self.settings.auth_timeout_s
        try:
            async with asyncio.timeout(timeout_s):
                await self._expect(ws, backlog, Connected)
                auth = {
                    "action": "auth",
                    "key": self.settings.key_id,
                    "secret": self.settings.secret,
                }
                await ws.send_str(
                    orjson.dumps(auth).decode()
                )  # the secret goes here and nowhere else
                await self._expect(ws, backlog, Authenticated)
        except TimeoutError:
            raise AuthTimeoutError(
                f"{self.settings.data_ws_url}: no authentication answer within {timeout_s:g} s"
            ) from None
        symbols = list(self.settings.symbols)
        subscribe = {"action": "subscribe", "bars": symbols, "updatedBars": symbols}
        await ws.send_str(orjson.dumps(subscribe).decode())  # JSON goes in TEXT frames
        try:
            async with asyncio.timeout(timeout_s):
                subscribed = await self._expect(ws, backlog, Subscribed)
        except TimeoutError:
            raise ConnectionLostError(f"no subscription answer within {timeout_s:g} s") from None
        missing = sorted(set(symbols) - set(subscribed.bars))
        self._log.info("subscribed", bars=len(subscribed.bars), missing=missing)
        return backlog

    async def _expect(
        self, ws: aiohttp.ClientWebSocketResponse, backlog: deque[DataEvent], kind: type[_E]
    ) -> _E:
        while True:
            while backlog:
                event = backlog.popleft()
                if isinstance(event, StreamError):
                    raise stream_error(event.code, event.msg)
                if isinstance(event, kind):
                    return event
            backlog.extend(self._decode(await ws.receive(), ws))

    def _decode(self, frame: aiohttp.WSMessage, ws: aiohttp.ClientWebSocketResponse) -> list[Any]:
        if frame.type in (aiohttp.WSMsgType.TEXT, aiohttp.WSMsgType.BINARY):
            return self.decoder.decode(frame.data)
        if frame.type in _CLOSED:
            raise ConnectionLostError(
                f"{self.settings.data_ws_url}: closed by the server (code {ws.close_code})"
            )
        if frame.type is aiohttp.WSMsgType.ERROR:
            reason = self.settings.redact(str(ws.exception()))
            raise ConnectionLostError(f"{self.settings.data_ws_url}: socket error ({reason})")
        return []

    async def _bars(
        self, ws: aiohttp.ClientWebSocketResponse, backlog: deque[DataEvent]
    ) -> AsyncIterator[BarMessage]:
        hold, clock = self.hold, self.clock
        try:
            while True:
                while backlog:
                    event = backlog.popleft()
                    if isinstance(event, BarMessage):
                        for bar in hold.add(event, clock()):
                            yield bar
                    elif isinstance(event, BarCorrection):
                        released, late = hold.correct(event, clock())
                        if late:
                            self._log.warning(
                                "bar_correction_late",
                                asset=event.bar.asset_id,
                                ts_ns=event.bar.ts_ns,
                                close=event.bar.close,
                                late_corrections=hold.late,
                            )
                        for bar in released:
                            yield bar
                    elif isinstance(event, StreamError):
                        raise stream_error(event.code, event.msg)
                for bar in hold.due(clock()):
                    yield bar
                timeout = None if hold.deadline is None else max(0.0, hold.deadline - clock())
                try:
                    frame = await ws.receive(timeout=timeout)
                except TimeoutError:
                    continue  # the held minute is due
                backlog.extend(self._decode(frame, ws))
        except (ConnectionLostError, AlpacaAuthError):
            for bar in hold.release():  # complete bars in hand are worth delivering
                yield bar
            raise

    async def history(self, start_ns: int, end_ns: int | None) -> list[Message]:
        """Every bar of ``[start_ns, end_ns]`` from ``GET /v2/stocks/bars``, in time order."""
        settings = self.settings
        params = {
            "symbols": ",".join(settings.symbols),
            "timeframe": "1Min",
            "start": rfc3339(start_ns),
            "feed": settings.feed,
            "adjustment": "raw",
            "limit": "10000",
        }
        if end_ns is not None:
            params["end"] = rfc3339(end_ns)
        url = f"{settings.data_url}/v2/stocks/bars"
        bars: list[BarMessage] = []
        timeout = aiohttp.ClientTimeout(total=settings.request_timeout_s)
        try:
            async with aiohttp.ClientSession(headers=settings.headers, timeout=timeout) as session:
                while True:
                    async with session.get(url, params=params) as response:
                        body = await response.read()
                        status = response.status
                    if status in (401, 403):
                        raise AlpacaAuthError(f"{url} answered {status}: the keys do not work")
                    if status != 200:
                        text = settings.redact(body[:200].decode(errors="replace"))
                        raise ConnectionLostError(f"{url} answered {status}: {text}")
                    page, token = decode_bars_page(body)
                    bars.extend(page)
                    if token is None:
                        break
                    params["page_token"] = token
        except (aiohttp.ClientError, OSError, TimeoutError) as err:
            reason = settings.redact(f"{type(err).__name__}: {err}")
            raise ConnectionLostError(f"{url}: history request failed ({reason})") from err
        bars.sort(key=lambda b: (b.ts_ns, b.asset_id))  # pages are grouped by symbol
        self._log.info("history_fetched", start_ns=start_ns, end_ns=end_ns, bars=len(bars))
        out: list[Message] = [*bars]
        return out
