"""The fake Binance's WebSocket API user data stream: ``userDataStream.subscribe.signature``
(apiKey, signature over the params sorted by name, timestamp within recvWindow), executionReport
events, ``serverShutdown``, ``eventStreamTerminated``, refusals as error frames.

https://developers.binance.com/docs/binance-spot-api-docs/websocket-api/user-data-stream-requests
and https://developers.binance.com/docs/binance-spot-api-docs/user-data-stream (events);
https://developers.binance.com/docs/binance-spot-api-docs/websocket-api/response-format (error
frames). A mixin of ``FakeBinance``, which owns the attributes it reads.
"""

from __future__ import annotations

import contextlib
from typing import Any

import orjson
from adapters.binance.codec import query_string, sign
from aiohttp import WSMsgType, web

from tests.adapters.binance.recorded import payload

__all__ = ["FakeUserStream"]


class FakeUserStream:
    """Every executionReport of the engine goes to every subscribed connection."""

    def _init_user_stream(self) -> None:
        self.duplicate_reports = False  # fault: every execution report sent twice
        self.hold_reports = False  # fault: keep reports back until release_reports()
        self.ws_api_answers: list[dict[str, Any]] = []  # fault: the next subscribe answers
        self.user_sockets: list[web.WebSocketResponse] = []
        self.ws_api_connections = 0
        self.subscriptions = 0
        self._held: list[bytes] = []

    def _send_report(self, event: dict[str, Any]) -> None:
        data = orjson.dumps({"subscriptionId": 0, "event": event})
        copies = [data, data] if self.duplicate_reports else [data]
        if self.hold_reports:
            self._held += copies
            return
        self._send_user(copies)

    def release_reports(self, *, reverse: bool = False) -> None:
        """Send the held reports (``reverse``: out of order)."""
        held, self._held = self._held, []
        self._send_user(held[::-1] if reverse else held)

    def _send_user(self, frames: list[bytes]) -> None:
        for ws in list(self.user_sockets):
            for data in frames:
                self._spawn(ws.send_str(data.decode()))

    async def drop_user_stream(self) -> None:
        for ws in list(self.user_sockets):
            self.user_sockets.remove(ws)
            await ws.close()

    def server_shutdown_user_stream(self) -> None:
        """The WebSocket API's ``serverShutdown`` event, on every user-stream connection."""
        self._send_user([orjson.dumps(payload("ws_api_server_shutdown.json"))])

    def terminate_user_stream(self) -> None:
        self._send_user([orjson.dumps(payload("ws_api_event_stream_terminated.json"))])

    async def _ws_api(self, request: web.Request) -> web.StreamResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        self.ws_api_connections += 1
        cutter = self._spawn(self._cut_after(ws, self.max_connection_age_s))
        try:
            async for message in ws:
                if message.type == WSMsgType.TEXT:
                    answer = self._ws_api_answer(ws, orjson.loads(message.data))
                    await ws.send_str(orjson.dumps(answer).decode())
        finally:
            cutter.cancel()
            with contextlib.suppress(ValueError):
                self.user_sockets.remove(ws)
        return ws

    def _ws_api_answer(self, ws: web.WebSocketResponse, req: dict[str, Any]) -> dict[str, Any]:
        answer = payload("ws_api_subscribe_response.json")
        answer["id"] = req.get("id")
        params = dict(req.get("params", {}))
        signature = params.pop("signature", "")
        if params.get("returnRateLimits") is False or params.get("returnRateLimits") == "false":
            del answer["rateLimits"]
        refused = self._ws_api_refusal(req, params, signature)
        if refused is not None:
            del answer["result"]
            return answer | refused | {"id": req.get("id")}
        answer["result"] = {"subscriptionId": self.subscriptions}
        self.subscriptions += 1
        self.user_sockets.append(ws)
        return answer

    def _ws_api_refusal(
        self, req: dict[str, Any], params: dict[str, Any], signature: str
    ) -> dict[str, Any] | None:
        if self.ws_api_answers:
            return self.ws_api_answers.pop(0)
        if req.get("method") != "userDataStream.subscribe.signature":
            return _ws_error(400, -1020, "This operation is not supported.")
        if params.get("apiKey") != self.api_key:
            return _ws_error(401, -2015, "Invalid API-key, IP, or permissions for action.")
        signed = query_string(dict(sorted(params.items())))
        if signature != sign(self.api_secret, signed):
            return _ws_error(400, -1022, "Signature for this request is not valid.")
        now, ts = self.server_ms(), int(params.get("timestamp", 0))
        if ts >= now + 1000 or now - ts > int(float(params.get("recvWindow", 5000))):
            return _ws_error(400, -1021, "Timestamp for this request is outside of the recvWindow.")
        return None


def _ws_error(status: int, code: int, msg: str) -> dict[str, Any]:
    frame = payload("ws_api_error.json")
    frame.update(status=status, error={"code": code, "msg": msg})
    return frame
