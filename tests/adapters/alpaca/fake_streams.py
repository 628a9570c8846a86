"""The fake Alpaca's two WebSocket streams, written from the docs (payloads in ``payloads/``).

Market data (https://docs.alpaca.markets/docs/streaming-market-data): ``connected`` on open,
``auth`` within the timeout (or the key headers on the upgrade request), then ``subscribe``.
JSON travels in TEXT frames; a client that asks for ``Content-Type: application/msgpack`` (as
alpaca-py does) gets msgpack in BINARY frames, with ``t`` as a msgpack Timestamp. The
documented errors (table: https://docs.alpaca.markets/docs/streaming-market-data#errors):
400 a frame of the wrong kind or not parseable, 401 a subscribe before auth, 402 bad keys,
403 auth twice, 404 no auth in time (switch), 406 connection limit (switch).

trade_updates (https://docs.alpaca.markets/docs/websocket-streaming): ``auth`` (or the legacy
``authenticate`` that alpaca-py sends) → ``authorization``; ``listen`` → ``listening`` (or
``unauthorized`` before auth); the server's frames are BINARY, as the docs say of the paper
endpoint (``trade_frames = "text"`` switches). A client frame that is not TEXT JSON gets the
documented ``{"action":"error"}`` frame and the close.
"""

from __future__ import annotations

import asyncio
import json
import time
from datetime import datetime
from typing import Any

import msgpack
from aiohttp import WSMsgType, web

from tests.adapters.alpaca.payloads_io import KEY_ID, SECRET, payload

__all__ = ["FakeStreams"]


def _packed_bar(bar: dict[str, Any]) -> dict[str, Any]:
    moment = datetime.fromisoformat(bar["t"].replace("Z", "+00:00"))
    return dict(bar, t=msgpack.Timestamp.from_datetime(moment))


class FakeStreams:
    """Mixin of ``FakeAlpaca``: the data stream and the trade_updates stream."""

    auth_delay_s: float
    auth_never: bool
    auth_error: int | None
    refuse_406: int
    stall: bool
    data_connections: int
    connection_times: list[float]
    auth_messages: list[dict[str, Any]]
    subscriptions: list[dict[str, Any]]
    refused_frames: int
    trade_connections: int
    trade_frames: str
    duplicate_updates: bool
    subscribed: asyncio.Event
    trade_listening: asyncio.Event
    _changed: asyncio.Condition
    _data_clients: dict[web.WebSocketResponse, bool]  # → speaks msgpack
    _trade_clients: set[web.WebSocketResponse]

    # -- market data ----------------------------------------------------------------------------

    async def _send_data(self, frame: list[dict[str, Any]]) -> None:
        for ws, packed in list(self._data_clients.items()):
            if packed:
                await ws.send_bytes(msgpack.packb([_packed_bar(bar) for bar in frame]))
            else:
                await ws.send_str(json.dumps(frame))

    async def drop_data_clients(self) -> None:
        for ws in list(self._data_clients):
            self._data_clients.pop(ws, None)
            await ws.close()
        self.subscribed.clear()

    async def _data_stream(self, request: web.Request) -> web.WebSocketResponse:
        packed = request.headers.get("Content-Type") == "application/msgpack"
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        self.data_connections += 1
        self.connection_times.append(time.monotonic())
        async with self._changed:
            self._changed.notify_all()

        async def send(obj: Any) -> None:
            await (ws.send_bytes(msgpack.packb(obj)) if packed else ws.send_str(json.dumps(obj)))

        await send(payload("ws_connected.json"))
        authed = False
        if request.headers.get("APCA-API-KEY-ID"):  # the documented header authentication
            ok = (
                request.headers.get("APCA-API-KEY-ID"),
                request.headers.get("APCA-API-SECRET-KEY"),
            )
            authed = ok == (KEY_ID, SECRET)
            await send(payload("ws_authenticated.json" if authed else "ws_error_402.json"))
            if not authed:
                await ws.close()
                return ws
        try:
            async for message in ws:
                action = self._data_action(message, packed)
                if action is None:
                    if message.type not in (WSMsgType.TEXT, WSMsgType.BINARY):
                        break
                    self.refused_frames += 1
                    await send(payload("ws_error_400.json"))
                    continue
                if action.get("action") == "auth":
                    self.auth_messages.append(action)
                    if authed:
                        await send(payload("ws_error_403.json"))
                        continue
                    if self.auth_never:
                        continue
                    await asyncio.sleep(self.auth_delay_s)
                    error = self._auth_error(action)
                    if error is not None:
                        await send(payload(error))
                        await ws.close()
                        break
                    authed = True
                    await send(payload("ws_authenticated.json"))
                elif action.get("action") == "subscribe":
                    if not authed:
                        await send(payload("ws_error_401.json"))
                        continue
                    self.subscriptions.append(action)
                    async with self._changed:
                        self._changed.notify_all()
                    answer = payload("ws_subscription.json")
                    answer[0]["bars"] = list(action.get("bars", []))
                    answer[0]["updatedBars"] = list(action.get("updatedBars", []))
                    await send(answer)
                    if not self.stall:
                        self._data_clients[ws] = packed
                        self.subscribed.set()
                else:
                    await send(payload("ws_error_400.json"))
        finally:
            self._data_clients.pop(ws, None)
        return ws

    @staticmethod
    def _data_action(message: Any, packed: bool) -> dict[str, Any] | None:
        """The client's message, or None for a frame of the wrong kind or unparseable."""
        try:
            if message.type is WSMsgType.TEXT and not packed:
                action = json.loads(message.data)
            elif message.type is WSMsgType.BINARY and packed:
                action = msgpack.unpackb(message.data)
            else:
                return None
        except (ValueError, msgpack.ExtraData, msgpack.FormatError):
            return None
        return action if isinstance(action, dict) else None

    def _auth_error(self, action: dict[str, Any]) -> str | None:
        if self.refuse_406 > 0:
            self.refuse_406 -= 1
            return "ws_error_406.json"
        if self.auth_error is not None:
            return f"ws_error_{self.auth_error}.json"
        if action.get("key") != KEY_ID or action.get("secret") != SECRET:
            return "ws_error_402.json"
        return None

    # -- trade_updates --------------------------------------------------------------------------

    async def _send_trade_frame(self, ws: web.WebSocketResponse, obj: Any) -> None:
        text = json.dumps(obj)
        await (ws.send_str(text) if self.trade_frames == "text" else ws.send_bytes(text.encode()))

    async def send_updates(self, *updates: dict[str, Any]) -> None:
        for update in updates:
            for _ in range(2 if self.duplicate_updates else 1):
                for ws in list(self._trade_clients):
                    await self._send_trade_frame(ws, update)

    async def trade_error(self, message: str = "internal server error") -> None:
        """The documented in-stream error: the error frame, then the close, to every listener."""
        frame = dict(payload("ws_trade_error.json"), data={"error_message": message})
        for ws in list(self._trade_clients):
            self._trade_clients.discard(ws)
            await self._send_trade_frame(ws, frame)
            await ws.close()
        self.trade_listening.clear()

    async def drop_trade_clients(self) -> None:
        for ws in list(self._trade_clients):
            self._trade_clients.discard(ws)
            await ws.close()
        self.trade_listening.clear()

    async def _trade_stream(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        self.trade_connections += 1
        authed = False
        try:
            async for message in ws:
                if message.type is WSMsgType.BINARY:
                    self.refused_frames += 1
                    error = {"error_message": "binary frames are not accepted: send JSON as text"}
                    await self._send_trade_frame(
                        ws, dict(payload("ws_trade_error.json"), data=error)
                    )
                    await ws.close()
                    break
                if message.type is not WSMsgType.TEXT:
                    break
                action = json.loads(message.data)
                if action.get("action") in ("auth", "authenticate"):
                    data = action.get("data") or {}
                    key = action.get("key", data.get("key_id"))
                    secret = action.get("secret", data.get("secret_key"))
                    authed = (key, secret) == (KEY_ID, SECRET)
                    name = "ws_trade_authorized.json" if authed else "ws_trade_unauthorized.json"
                    await self._send_trade_frame(ws, payload(name))
                    if not authed:
                        await ws.close()
                        break
                elif action.get("action") == "listen":
                    if not authed:
                        await self._send_trade_frame(
                            ws, payload("ws_trade_listen_unauthorized.json")
                        )
                        continue
                    await self._send_trade_frame(ws, payload("ws_trade_listening.json"))
                    self._trade_clients.add(ws)
                    self.trade_listening.set()
        finally:
            self._trade_clients.discard(ws)
        return ws
