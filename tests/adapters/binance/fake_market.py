"""The fake Binance's market data: the combined kline stream (forming and closed klines, server
pings, ``serverShutdown``, drops and stalls) and GET /api/v3/klines, from the recorded payloads.

https://developers.binance.com/docs/binance-spot-api-docs/web-socket-streams (combined streams,
pings every 20 s, ``{"stream": "!serverShutdown", ...}``, the 24 h cut) and
https://developers.binance.com/docs/binance-spot-api-docs/rest-api/market-data-endpoints
(klines rows). A mixin of ``FakeBinance``, which owns the attributes it reads.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import orjson
from aiohttp import WSMsgType, web

from tests.adapters.binance.recorded import payload

__all__ = ["MINUTE_MS", "T0_MS", "FakeMarketData"]

T0_MS = 1_672_515_780_000  # the recorded kline's open time (2022-12-31 19:43 UTC)
MINUTE_MS = 60_000


class _StreamClient:
    def __init__(self, ws: web.WebSocketResponse, streams: set[str]) -> None:
        self.ws = ws
        self.streams = streams  # ``/stream?streams=a/b``, then SUBSCRIBE / UNSUBSCRIBE
        self.queue: asyncio.Queue[bytes | None] = asyncio.Queue()
        self.stalled = False


class FakeMarketData:
    """Bar ``k`` of each symbol opens at ``t0_ms + k`` minutes; ``start_clock`` publishes."""

    def _init_market(self, bars: int, bar_interval_s: float, ping_interval_s: float | None) -> None:
        self.n_bars = bars
        self.bar_interval_s = bar_interval_s
        self.ping_interval_s = ping_interval_s
        self.t0_ms = T0_MS  # bar k opens at t0_ms + k minutes
        self.published = 0  # bars 0..published-1 are closed
        self.stream_clients: set[_StreamClient] = set()
        self.stream_connections = 0
        self.pongs = 0
        self.drop_at: int | None = None  # fault: close every stream socket at this bar
        self.stall_at: int | None = None  # fault: go silent on open sockets at this bar
        self.shutdown_at: int | None = None  # fault: send serverShutdown at this bar
        self.malformed_at: int | None = None  # fault: one broken closed kline at this bar
        self.kline_requests: list[dict[str, str]] = []
        self.flat_bars = False  # switch: every bar o = c = price, h = price + 2, l = price - 2

    def on_closed_bar(self, symbol: str, kline: dict[str, Any]) -> None:
        """Called with each closed bar after it is sent (the fake's book matches it)."""

    def kline(self, symbol: str, k: int, *, closed: bool) -> dict[str, Any]:
        """Bar ``k`` of ``symbol`` from the recorded kline, with its own times and prices."""
        frame = payload("ws_kline_closed.json" if closed else "ws_kline.json")
        open_ms = self.t0_ms + k * MINUTE_MS
        base = self.prices[symbol] + (0 if self.flat_bars else k)
        frame["stream"] = f"{symbol.lower()}@kline_1m"
        data = frame["data"]
        data["s"] = symbol
        data["E"] = open_ms + (MINUTE_MS if closed else 2_000)
        data["k"].update(
            t=open_ms,
            T=open_ms + MINUTE_MS - 1,
            s=symbol,
            o=f"{base:.8f}",
            h=f"{base + 2:.8f}",
            l=f"{base - (2 if self.flat_bars else 1):.8f}",
            c=f"{base + (0 if self.flat_bars else 1):.8f}",
            v=f"{10 + k:.8f}",
        )
        return frame

    def start_clock(self) -> asyncio.Task[Any]:
        """Publish bar after bar (forming update, then the closed kline), connected or not."""
        return self._spawn(self._publish())

    async def _publish(self) -> None:
        started = time.monotonic()
        for k in range(self.n_bars):
            await asyncio.sleep(
                max(0.0, started + (k + 0.5) * self.bar_interval_s - time.monotonic())
            )
            self._broadcast([self.kline(s, k, closed=False) for s in self.symbols])
            await asyncio.sleep(
                max(0.0, started + (k + 1) * self.bar_interval_s - time.monotonic())
            )
            self.published = k + 1
            if k == self.drop_at:
                for client in list(self.stream_clients):
                    self.stream_clients.discard(client)
                    await client.ws.close()
            if k == self.stall_at:
                for client in self.stream_clients:
                    client.stalled = True
            if k == self.shutdown_at:  # combined streams wrap it as !serverShutdown
                notice = {"stream": "!serverShutdown", "data": payload("ws_server_shutdown.json")}
                self._broadcast([notice])
            frames = [self.kline(s, k, closed=True) for s in self.symbols]
            if k == self.malformed_at:
                frames[0]["data"]["k"]["c"] = "not-a-price"
            self._broadcast(frames)
            for frame in frames:
                self.on_closed_bar(frame["data"]["s"], frame["data"]["k"])

    def _broadcast(self, frames: list[Any]) -> None:
        """Each frame to the clients subscribed to its stream (``!serverShutdown``: to all)."""
        for client in self.stream_clients:
            if not client.stalled:
                for frame in frames:
                    stream = frame.get("stream", "")
                    if stream.startswith("!") or stream in client.streams:
                        client.queue.put_nowait(orjson.dumps(frame))

    async def _stream(self, request: web.Request) -> web.StreamResponse:
        ws = web.WebSocketResponse(autoping=False)  # so the pongs can be counted
        await ws.prepare(request)
        self.stream_connections += 1
        named = request.query.get("streams", "")
        client = _StreamClient(ws, {name for name in named.split("/") if name})
        self.stream_clients.add(client)
        reader = self._spawn(self._read_stream(client))
        cutter = self._spawn(self._cut_after(ws, self.max_connection_age_s))
        pinger = self._spawn(self._ping(client)) if self.ping_interval_s else None
        try:
            while not ws.closed:
                frame = await client.queue.get()
                if frame is None or ws.closed:
                    break
                await ws.send_str(frame.decode())
        except ConnectionError:
            pass
        finally:
            self.stream_clients.discard(client)
            reader.cancel()
            cutter.cancel()
            if pinger is not None:
                pinger.cancel()
        return ws

    async def _read_stream(self, client: _StreamClient) -> None:
        async for message in client.ws:
            if message.type == WSMsgType.PONG:
                self.pongs += 1
            elif message.type == WSMsgType.PING:
                await client.ws.pong(message.data)
            elif message.type == WSMsgType.TEXT:
                answer = _control(client, orjson.loads(message.data))
                client.queue.put_nowait(orjson.dumps(answer))
        client.queue.put_nowait(None)

    async def _ping(self, client: _StreamClient) -> None:
        """Ping like Binance; a client that stops answering is cut off."""
        assert self.ping_interval_s is not None
        answered = self.pongs
        while not client.ws.closed:
            await client.ws.ping(b"binance")
            await asyncio.sleep(self.ping_interval_s)
            if self.pongs == answered:
                await client.ws.close(code=1008, message=b"pong timeout")
                return
            answered = self.pongs

    async def _klines(self, request: web.Request) -> web.Response:
        q = request.query
        self.kline_requests.append(dict(q))
        symbol = q["symbol"]
        start = int(q.get("startTime", 0))
        end = int(q.get("endTime", 2**62))
        limit = min(int(q.get("limit", 500)), 1000)
        template = payload("http_get_klines.json")[0]
        rows = []
        for k in range(self.published + 1):  # the last one is still forming
            frame = self.kline(symbol, k, closed=k < self.published)["data"]["k"]
            if start <= frame["t"] <= end:
                row = list(template)
                row[0:7] = [frame["t"], frame["o"], frame["h"], frame["l"], frame["c"]]
                row[5:7] = [frame["v"], frame["T"]]
                rows.append(row)
        return web.json_response(rows[:limit])


def _control(client: _StreamClient, request: Any) -> dict[str, Any]:
    """SUBSCRIBE / UNSUBSCRIBE / LIST_SUBSCRIPTIONS ("Live Subscribing/Unsubscribing to
    streams"): ``{"result": null, "id": id}``, the list for LIST_SUBSCRIPTIONS."""
    method = request.get("method") if isinstance(request, dict) else None
    ident = request.get("id") if isinstance(request, dict) else None
    params = request.get("params", []) if isinstance(request, dict) else []
    if method == "SUBSCRIBE":
        client.streams |= set(params)
        return {"result": None, "id": ident}
    if method == "UNSUBSCRIBE":
        client.streams -= set(params)
        return {"result": None, "id": ident}
    if method == "LIST_SUBSCRIPTIONS":
        return {"result": sorted(client.streams), "id": ident}
    return {"error": {"code": 2, "msg": f"Invalid request: unknown method {method!r}"}, "id": ident}
