"""A fault-injecting proxy on 127.0.0.1:0 between the daemon and a fake venue: faults go in at
the process boundary, as a network or a venue produces them, whatever the fake is.

Everything is forwarded byte for byte (the raw path and query, so signatures still hold; the
body; the headers), REST and WebSocket alike, unless a switch says otherwise:

- ``fail(method, path, status, count)``: the next ``count`` matching requests get ``status``
  (with ``headers``) and never reach the venue (a 503 on the account, a 429 on klines);
- ``fail_after(method, path, status, count)``: forwarded (the venue acts on them), then
  answered with ``status`` instead of the venue's answer (a 5xx after the order was taken);
- ``drop(path)``: close every open WebSocket whose path starts with ``path``;
- ``refuse(path, count, answer)``: the next ``count`` JSON requests sent on such a WebSocket
  are answered with ``answer(request)`` instead of being forwarded (a refused subscription).

``injected`` lists what was done, for the test's report.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import aiohttp
import orjson
from aiohttp import WSMsgType, web

_HOP = {"transfer-encoding", "content-length", "connection", "content-encoding", "host"}


@dataclass
class _Rule:
    method: str
    path: str
    status: int
    count: int
    after: bool
    headers: dict[str, str]
    body: bytes


class FaultProxy:
    def __init__(self, upstream_port: int) -> None:
        self.upstream = f"127.0.0.1:{upstream_port}"
        self.port = 0
        self.injected: list[str] = []
        self._rules: list[_Rule] = []
        self._refusals: dict[str, tuple[int, Callable[[dict[str, Any]], dict[str, Any]]]] = {}
        self._sockets: list[tuple[str, web.WebSocketResponse, Any]] = []
        self._session: aiohttp.ClientSession | None = None
        self._runner: web.AppRunner | None = None

    async def start(self) -> FaultProxy:
        self._session = aiohttp.ClientSession(auto_decompress=False)
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        return self

    async def close(self) -> None:
        for _, ws, upstream in list(self._sockets):
            await upstream.close()
            await ws.close()
        if self._runner is not None:
            await self._runner.cleanup()
        if self._session is not None:
            await self._session.close()

    # -- switches -----------------------------------------------------------------------------

    def fail(self, method: str, path: str, status: int, count: int = 1, **headers: str) -> None:
        body = orjson.dumps({"code": -1000 - status, "msg": f"injected HTTP {status}"})
        self._rules.append(_Rule(method, path, status, count, False, headers, body))

    def fail_after(self, method: str, path: str, status: int, count: int = 1) -> None:
        body = b"Internal error; unable to process your request. Please try again."
        self._rules.append(_Rule(method, path, status, count, True, {}, body))

    async def drop(self, path: str) -> int:
        dropped = 0
        for item in list(self._sockets):
            socket_path, ws, upstream = item
            if socket_path.startswith(path):
                self._sockets.remove(item)
                await upstream.close()
                await ws.close()
                dropped += 1
        self.injected.append(f"drop {path} ({dropped} sockets)")
        return dropped

    def refuse(
        self, path: str, count: int, answer: Callable[[dict[str, Any]], dict[str, Any]]
    ) -> None:
        self._refusals[path] = (count, answer)

    # -- plumbing -------------------------------------------------------------------------------

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        if request.headers.get("Upgrade", "").lower() == "websocket":
            return await self._websocket(request)
        rule = self._rule(request)
        if rule is not None and not rule.after:
            self.injected.append(f"{request.method} {request.path} -> {rule.status}")
            return web.Response(status=rule.status, body=rule.body, headers=rule.headers)
        assert self._session is not None
        headers = {k: v for k, v in request.headers.items() if k.lower() not in _HOP}
        url = f"http://{self.upstream}{request.raw_path}"
        async with self._session.request(
            request.method, url, data=await request.read(), headers=headers
        ) as upstream:
            body = await upstream.read()
            answer = {k: v for k, v in upstream.headers.items() if k.lower() not in _HOP}
            status = upstream.status
        if rule is not None:  # the venue took it; the answer is lost in a 5xx
            self.injected.append(f"{request.method} {request.path} -> {status} then {rule.status}")
            return web.Response(status=rule.status, body=rule.body)
        return web.Response(status=status, body=body, headers=answer)

    def _rule(self, request: web.Request) -> _Rule | None:
        for rule in self._rules:
            if rule.count > 0 and rule.method == request.method and rule.path == request.path:
                rule.count -= 1
                return rule
        return None

    async def _websocket(self, request: web.Request) -> web.StreamResponse:
        assert self._session is not None
        ws = web.WebSocketResponse(autoping=True)
        await ws.prepare(request)
        try:
            upstream = await self._session.ws_connect(
                f"ws://{self.upstream}{request.raw_path}", autoping=True
            )
        except aiohttp.ClientError:
            await ws.close()
            return ws
        item = (request.path, ws, upstream)
        self._sockets.append(item)
        down = asyncio.ensure_future(self._downstream(upstream, ws))
        try:
            async for message in ws:
                if message.type is WSMsgType.TEXT:
                    refused = self._refused(request.path, message.data)
                    if refused is not None:
                        await ws.send_str(refused)
                        continue
                    await upstream.send_str(message.data)
                elif message.type is WSMsgType.BINARY:
                    await upstream.send_bytes(message.data)
        finally:
            down.cancel()
            with contextlib.suppress(BaseException):
                await down
            with contextlib.suppress(ValueError):
                self._sockets.remove(item)
            await upstream.close()
        return ws

    async def _downstream(self, upstream: Any, ws: web.WebSocketResponse) -> None:
        async for message in upstream:
            if ws.closed:
                break
            if message.type is WSMsgType.TEXT:
                await ws.send_str(message.data)
            elif message.type is WSMsgType.BINARY:
                await ws.send_bytes(message.data)
        await ws.close()

    def _refused(self, path: str, text: str) -> str | None:
        for prefix, (count, answer) in list(self._refusals.items()):
            if count > 0 and path.startswith(prefix):
                try:
                    request = orjson.loads(text)
                except orjson.JSONDecodeError:
                    return None
                self._refusals[prefix] = (count - 1, answer)
                self.injected.append(
                    f"refused {request.get('method') or request.get('action')} on {path}"
                )
                return orjson.dumps(answer(request)).decode()
        return None
