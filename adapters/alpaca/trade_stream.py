"""One trade_updates connection (https://docs.alpaca.markets/docs/websocket-streaming).

Open it, authenticate (``{"action":"auth",...}`` → ``authorization``/``authorized``), listen to
``trade_updates`` (→ ``listening``), then read events until it ends. JSON goes out in TEXT
frames, as the official clients send it; the server's frames are read whether it sends them
as text or binary (the docs say binary for the paper endpoint).

It never ends quietly: a close, a socket error or the documented ``{"action":"error"}`` frame
raise ``ConnectionLostError`` naming what happened; refused keys raise ``AlpacaAuthError``;
a frame that cannot be read raises ``VenueProtocolError``. Reconnecting is the caller's
(``AlpacaClient.executions``, restarted by the daemon's supervisor).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Mapping
from typing import Any, TypeAlias

import aiohttp
import orjson

from adapters.alpaca.config import AlpacaSettings
from adapters.alpaca.errors import AUTH_HINT, AlpacaAuthError
from adapters.alpaca.trading import StreamFill, TradeStreamControl, decode_trade_update
from tradeloop.errors import ConnectionLostError
from tradeloop.venue import VenueOrderState

__all__ = ["TradeEvent", "TradeStream"]

TradeEvent: TypeAlias = StreamFill | VenueOrderState
_DATA = (aiohttp.WSMsgType.TEXT, aiohttp.WSMsgType.BINARY)


class TradeStream:
    """An authenticated, listening trade_updates socket; ``events()`` reads it to its end."""

    def __init__(
        self,
        settings: AlpacaSettings,
        session: aiohttp.ClientSession,
        our_ids: Mapping[str, str],
        on_order: Callable[[Mapping[str, Any]], None] | None = None,
    ) -> None:
        self.settings = settings
        self.session = session
        self.our_ids = our_ids
        self.on_order = on_order  # sees every order object first (names a group's legs)
        self._ws: aiohttp.ClientWebSocketResponse | None = None

    async def open(self) -> None:
        """Connect, authenticate and listen; raises as the module docstring says."""
        url, settings = self.settings.trade_updates_url, self.settings
        try:
            self._ws = await self.session.ws_connect(url, heartbeat=20.0)
            auth = {"action": "auth", "key": settings.key_id, "secret": settings.secret}
            await self._ws.send_str(orjson.dumps(auth).decode())
            answer = await self._control("authorization")
            if not answer.ok:
                raise AlpacaAuthError(
                    f"{url}: trade_updates refused the keys ({answer.message}). {AUTH_HINT}"
                )
            listen = {"action": "listen", "data": {"streams": ["trade_updates"]}}
            await self._ws.send_str(orjson.dumps(listen).decode())
            listening = await self._control("listening")
            if not listening.ok:
                raise ConnectionLostError(f"{url}: trade_updates not among the streams listened")
        except (aiohttp.ClientError, OSError) as err:
            await self.close()
            reason = settings.redact(f"{type(err).__name__}: {err}")
            raise ConnectionLostError(f"{url}: trade_updates connection failed ({reason})") from err
        except BaseException:
            await self.close()
            raise

    async def events(self) -> AsyncIterator[TradeEvent]:
        """Fills and order updates until the connection ends (which always raises)."""
        try:
            while True:
                frame = await self._receive("an event")
                event = decode_trade_update(frame, self.our_ids, self.on_order)
                if isinstance(event, StreamFill | VenueOrderState):
                    yield event
        except (aiohttp.ClientError, OSError) as err:
            reason = self.settings.redact(f"{type(err).__name__}: {err}")
            raise ConnectionLostError(f"trade_updates socket failed ({reason})") from err
        finally:
            await self.close()

    async def close(self) -> None:
        if self._ws is not None:
            await self._ws.close()
            self._ws = None

    async def _control(self, stream: str) -> TradeStreamControl:
        try:
            async with asyncio.timeout(self.settings.auth_timeout_s):
                while True:
                    event = decode_trade_update(await self._receive(stream), self.our_ids)
                    if isinstance(event, TradeStreamControl) and event.stream == stream:
                        return event
                    if isinstance(event, TradeStreamControl) and not event.ok:
                        return event  # "unauthorized" in answer to the listen
        except TimeoutError:
            raise ConnectionLostError(
                f"{self.settings.trade_updates_url}: no {stream!r} answer within "
                f"{self.settings.auth_timeout_s:g} s"
            ) from None

    async def _receive(self, waiting_for: str) -> str | bytes:
        assert self._ws is not None, "open() first"
        frame = await self._ws.receive()
        if frame.type in _DATA:
            data: str | bytes = frame.data
            return data
        code = self._ws.close_code
        raise ConnectionLostError(
            f"{self.settings.trade_updates_url}: trade_updates closed ({frame.type.name}, code "
            f"{code}) while waiting for {waiting_for}"
        )
