"""The user data stream over Binance's WebSocket API, one subscription per ``events()`` call:
a subscribe, the events, and an error when it ends (the asyncio shell around ``codec``'s
WebSocket API frames). Reconnecting is the caller's: the daemon's supervisor
(``tradeloop.service.tasks``) calls ``executions()`` again with backoff, and counts and
reports a stream that stays down (``restore_deadline_s``: the gate goes to ``on_task_lost``).

https://developers.binance.com/docs/binance-spot-api-docs/user-data-stream and
https://developers.binance.com/docs/binance-spot-api-docs/websocket-api/general-api-information:

- ``userDataStream.subscribe.signature`` subscribes with an HMAC-signed request (no logon);
- ``{"event": {"e": "serverShutdown"}}``: the server is going away: ``ConnectionLostError``;
- ``{"event": {"e": "eventStreamTerminated"}}``: the subscription ended: ``ConnectionLostError``;
- a connection lives at most 24 hours: it ends itself before ``max_connection_age_s``
  (``ConnectionLostError``, "renewing");
- a refused subscribe goes through the error map: -1021 resyncs the clock, then raises
  ``ClockSkewError`` (the next subscribe carries the corrected timestamp); a 5xx/-1006/-1007
  or a dropped connection is ``ConnectionLostError``; a 429/418 is ``RateLimitError`` (the
  supervisor waits its ``retry_after_s``); a key the venue refuses (-2015, -1022) is a
  ``ConfigError``: no retry can fix it.

``events()`` never ends quietly. After a subscription that follows an earlier one it yields
``Resubscribed(since_ms)`` first: the time from which the caller fetches fills over REST, as
those of the gap were never streamed.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import structlog
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, WebSocketException

from adapters.binance.codec import decode_ws_api_frame, subscription_id, user_stream_subscription
from adapters.binance.config import BinanceSettings
from adapters.binance.errors import ClockSkewError
from adapters.binance.rest import BinanceRest
from tradeloop.errors import AdapterError, ConfigError, ConnectionLostError, VenueProtocolError

__all__ = ["Resubscribed", "UserStream"]

_BACKFILL_MARGIN_MS = 5_000  # fills are re-fetched from a little before a dropped connection


@dataclass(frozen=True, slots=True)
class Resubscribed:
    """Subscribed again after a gap: fills from ``since_ms`` on may not have been streamed."""

    since_ms: int
    reason: str


class UserStream:
    """``executionReport`` events of one account, across reconnections."""

    def __init__(self, settings: BinanceSettings, rest: BinanceRest, key: str, secret: str):
        self.settings = settings
        self._rest = rest
        self._key, self._secret = key, secret
        self.subscriptions = 0
        self._gap_from_ms: int | None = None  # fills from here on may not have been streamed
        self._ended = ""  # why the last subscription ended
        self._log = structlog.get_logger().bind(venue="binance", component="user_stream")

    async def events(self) -> AsyncIterator[dict[str, Any] | Resubscribed]:
        """One subscription: ``Resubscribed`` first if an earlier one ended, then every
        ``event`` object until the subscription ends, which always raises."""
        opened_ms = self._rest.timestamp_ms()
        try:
            async with connect(self.settings.ws_api_url, max_size=2**20) as ws:
                await self._subscribe(ws)
                if self._gap_from_ms is not None:
                    yield Resubscribed(self._gap_from_ms, self._ended)
                self._gap_from_ms = opened_ms - _BACKFILL_MARGIN_MS
                async for event in self._read(ws):
                    yield event
            raise ConnectionLostError("binance user data stream: closed by the server")
        except ClockSkewError as err:  # a subscribe refused for our clock: resync first
            self._ended = str(err)
            await self._rest.sync_time()
            raise
        except (ConnectionClosed, OSError, WebSocketException) as err:
            # OSError covers timeouts and refused connects
            self._ended = f"{type(err).__name__}: {err}"
            raise ConnectionLostError(f"binance user data stream: {self._ended}") from err
        except (AdapterError, ConfigError) as err:
            self._ended = str(err)
            raise
        finally:
            if self._gap_from_ms is None:  # never subscribed: the gap starts here
                self._gap_from_ms = opened_ms - _BACKFILL_MARGIN_MS

    async def _read(self, ws: ClientConnection) -> AsyncIterator[dict[str, Any]]:
        """The events of one subscription, until the server ends it or the connection ages."""
        opened = time.monotonic()
        while True:
            left_s = self.settings.max_connection_age_s - (time.monotonic() - opened)
            if left_s <= 0:
                raise ConnectionLostError(
                    f"binance user data stream: connection older than "
                    f"{self.settings.max_connection_age_s:g} s (Binance cuts at 24 h): renewing"
                )
            try:
                async with asyncio.timeout(left_s):
                    frame = await ws.recv()
            except TimeoutError:
                continue  # the age check above renews the connection
            try:
                raw = decode_ws_api_frame(frame)
            except VenueProtocolError as err:
                self._log.warning("user_stream_frame_skipped", reason=str(err))
                continue
            event = raw.get("event")
            if not isinstance(event, dict):
                continue  # an answer to a request of ours (none are open after subscribing)
            kind = event.get("e")
            if kind == "serverShutdown":
                raise ConnectionLostError("binance WebSocket API: serverShutdown: reconnecting")
            if kind == "eventStreamTerminated":
                raise ConnectionLostError("binance user data stream terminated by the server")
            yield event

    async def _subscribe(self, ws: ClientConnection) -> None:
        request_id = uuid.uuid4().hex
        await ws.send(
            user_stream_subscription(
                request_id,
                self._key,
                self._secret,
                timestamp_ms=self._rest.timestamp_ms(),
                recv_window_ms=self.settings.recv_window_ms,
            )
        )
        async with asyncio.timeout(self.settings.request_timeout_s):
            while True:
                raw = decode_ws_api_frame(await ws.recv())
                if raw.get("id") == request_id:
                    sub = subscription_id(raw)  # raises the error map's error if refused
                    self.subscriptions += 1
                    self._log.info("user_stream_subscribed", subscription_id=sub)
                    return
