"""A fake Binance spot on 127.0.0.1:0 (aiohttp), speaking the real protocol from the recorded
payloads in ``payloads/``, with switches for the faults a live venue produces.

One port serves the combined kline stream (``/stream?streams=...``, with server pings),
the REST API (``/api/v3/...``, signatures and recvWindow checked) and the WebSocket API
user data stream (``/ws-api/v3``, ``userDataStream.subscribe.signature``).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
from adapters.binance.codec import query_string, sign
from aiohttp import WSMsgType, web

PAYLOADS = Path(__file__).parent / "payloads"
T0_MS = 1_672_515_780_000  # the recorded kline's open time (2022-12-31 19:43 UTC)
MINUTE_MS = 60_000
COMMISSION = 0.001  # charged in the quote asset


def payload(name: str) -> Any:
    return orjson.loads((PAYLOADS / name).read_bytes())


class _StreamClient:
    def __init__(self, ws: web.WebSocketResponse) -> None:
        self.ws = ws
        self.queue: asyncio.Queue[bytes | None] = asyncio.Queue()
        self.stalled = False


class FakeBinance:
    def __init__(
        self,
        *,
        api_key: str,
        api_secret: str,
        symbols: tuple[str, ...] = ("BTCUSDT", "ETHUSDT"),
        bars: int = 40,
        bar_interval_s: float = 0.02,
        ping_interval_s: float | None = None,
        retry_after_s: str = "1",
    ) -> None:
        self.api_key, self.api_secret = api_key, api_secret
        self.symbols = symbols
        self.n_bars = bars
        self.bar_interval_s = bar_interval_s
        self.ping_interval_s = ping_interval_s
        self.retry_after_s = retry_after_s
        # market data
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
        # trading
        self.clock_ahead_ms = 0  # the server's clock minus the wall clock
        self.statuses: list[int] = []  # fault: answer the next requests with these (429, 418)
        self.accept_then_fail = 0  # fault: this many order POSTs are accepted, then answer 500
        self.accept_then_delay_s = 0.0  # fault: accepted, then the answer is this late
        self.duplicate_reports = False  # fault: every execution report sent twice
        self.hold_reports = False  # fault: keep reports back until release_reports()
        self.requests: list[tuple[str, str]] = []
        self.posted_client_ids: list[str] = []  # every order POST that reached the handler
        self.signed_requests = 0
        self.orders: dict[tuple[str, str], dict[str, Any]] = {}
        self.trades: list[dict[str, Any]] = []
        self.balances: dict[str, list[float]] = {"USDT": [10_000.0, 500.0], "BTC": [0.5, 0.0]}
        self.prices = {s: 100.0 * (i + 1) for i, s in enumerate(symbols)}
        self.user_sockets: list[web.WebSocketResponse] = []
        self.subscriptions = 0
        self._held: list[bytes] = []
        self._next_order_id = 1000
        self._next_trade_id = 5000
        self._tasks: set[asyncio.Task[Any]] = set()
        self._runner: web.AppRunner | None = None
        self.port = 0

    # ------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        app = web.Application(middlewares=[self._faults])
        app.router.add_get("/stream", self._stream)
        app.router.add_get("/ws-api/v3", self._ws_api)
        app.router.add_get("/api/v3/time", self._time)
        app.router.add_get("/api/v3/klines", self._klines)
        app.router.add_post("/api/v3/order", self._signed(self._post_order))
        app.router.add_get("/api/v3/order", self._signed(self._get_order))
        app.router.add_delete("/api/v3/order", self._signed(self._delete_order))
        app.router.add_get("/api/v3/openOrders", self._signed(self._open_orders))
        app.router.add_get("/api/v3/allOrders", self._signed(self._all_orders))
        app.router.add_get("/api/v3/account", self._signed(self._account))
        app.router.add_get("/api/v3/myTrades", self._signed(self._my_trades))
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        for client in list(self.stream_clients):
            await client.ws.close()
        for ws in list(self.user_sockets):
            await ws.close()
        if self._runner is not None:
            await self._runner.cleanup()

    @property
    def settings(self) -> dict[str, Any]:
        """A ``[venue]`` table pointing at this server."""
        return {
            "symbols": list(self.symbols),
            "ws_url": f"ws://127.0.0.1:{self.port}",
            "rest_url": f"http://127.0.0.1:{self.port}",
            "ws_api_url": f"ws://127.0.0.1:{self.port}/ws-api/v3",
        }

    def _spawn(self, coro: Any) -> asyncio.Task[Any]:
        task = asyncio.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    # ------------------------------------------------------------ market data

    def kline(self, symbol: str, k: int, *, closed: bool) -> dict[str, Any]:
        """Bar ``k`` of ``symbol`` from the recorded kline, with its own times and prices."""
        frame = payload("ws_kline_closed.json" if closed else "ws_kline.json")
        open_ms = self.t0_ms + k * MINUTE_MS
        base = self.prices[symbol] + k
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
            l=f"{base - 1:.8f}",
            c=f"{base + 1:.8f}",
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
            if k == self.shutdown_at:
                self._broadcast([payload("ws_server_shutdown.json")])
            frames = [self.kline(s, k, closed=True) for s in self.symbols]
            if k == self.malformed_at:
                frames[0]["data"]["k"]["c"] = "not-a-price"
            self._broadcast(frames)

    def _broadcast(self, frames: list[Any]) -> None:
        for client in self.stream_clients:
            if not client.stalled:
                for frame in frames:
                    client.queue.put_nowait(orjson.dumps(frame))

    async def _stream(self, request: web.Request) -> web.StreamResponse:
        ws = web.WebSocketResponse(autoping=False)  # so the pongs can be counted
        await ws.prepare(request)
        self.stream_connections += 1
        client = _StreamClient(ws)
        self.stream_clients.add(client)
        reader = self._spawn(self._read_stream(client))
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
            if pinger is not None:
                pinger.cancel()
        return ws

    async def _read_stream(self, client: _StreamClient) -> None:
        async for message in client.ws:
            if message.type == WSMsgType.PONG:
                self.pongs += 1
            elif message.type == WSMsgType.PING:
                await client.ws.pong(message.data)
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

    # ------------------------------------------------------------ REST plumbing

    @web.middleware
    async def _faults(self, request: web.Request, handler: Callable[..., Any]) -> Any:
        self.requests.append((request.method, request.path))
        if self.statuses and request.path.startswith("/api/"):
            status = self.statuses.pop(0)
            return web.json_response(
                {
                    "code": -1003,
                    "msg": "Too many requests; current limit is 6000 weight per 1 MINUTE.",
                },
                status=status,
                headers={"Retry-After": self.retry_after_s, "X-MBX-USED-WEIGHT-1M": "6001"},
            )
        response = await handler(request)
        if request.path.startswith("/api/"):
            used = sum(1 for _, path in self.requests if path.startswith("/api/"))
            response.headers["X-MBX-USED-WEIGHT-1M"] = str(used)
        return response

    def server_ms(self) -> int:
        return time.time_ns() // 1_000_000 + self.clock_ahead_ms

    async def _time(self, request: web.Request) -> web.Response:
        answer = payload("http_get_time.json")
        answer["serverTime"] = self.server_ms()
        return web.json_response(answer)

    def _signed(self, handler: Callable[[dict[str, str]], Any]) -> Callable[..., Any]:
        async def checked(request: web.Request) -> web.Response:
            raw = request.raw_path.partition("?")[2] + (await request.text())
            self.signed_requests += 1
            if request.headers.get("X-MBX-APIKEY") != self.api_key:
                return _error(401, -2015, "Invalid API-key, IP, or permissions for action.")
            payload_text, _, signature = raw.rpartition("&signature=")
            if not signature or sign(self.api_secret, payload_text) != signature:
                return _error(400, -1022, "Signature for this request is not valid.")
            params = dict(request.query)
            now = self.server_ms()
            ts, window = int(params["timestamp"]), int(params.get("recvWindow", 5000))
            if ts >= now + 1000 or now - ts > window:
                return _error(
                    400, -1021, "Timestamp for this request is outside of the recvWindow."
                )
            result = await handler(params)
            return result if isinstance(result, web.StreamResponse) else web.json_response(result)

        return checked

    # ------------------------------------------------------------ orders

    async def _post_order(self, p: dict[str, str]) -> Any:
        symbol, cid = p["symbol"], p["newClientOrderId"]
        self.posted_client_ids.append(cid)
        old = self.orders.get((symbol, cid))
        if old is not None and old["status"] in ("NEW", "PARTIALLY_FILLED"):
            return _error(400, -2010, "Duplicate order sent.")
        qty = float(p["quantity"])
        if qty < 0.0001:
            return _error(400, -1013, "Filter failure: LOT_SIZE")
        price = float(p.get("price", self.prices[symbol]))
        if p["side"] == "BUY" and qty * price > self.balances["USDT"][0]:
            return _error(400, -2010, "Account has insufficient balance for requested action.")
        order = payload("http_get_order.json")
        self._next_order_id += 1
        order.update(
            symbol=symbol,
            orderId=self._next_order_id,
            clientOrderId=cid,
            side=p["side"],
            type=p["type"],
            price=p.get("price", "0.00000000"),
            origQty=p["quantity"],
            executedQty="0.00000000",
            cummulativeQuoteQty="0.00000000",
            status="NEW",
            timeInForce=p.get("timeInForce", "GTC"),
            stopPrice=p.get("stopPrice", "0.0"),
            time=self.server_ms(),
            updateTime=self.server_ms(),
        )
        self.orders[(symbol, cid)] = order
        self._report(order, "NEW")
        if p["type"] == "MARKET":
            self.fill(cid, qty, symbol=symbol)
        answer = {k: order[k] for k in payload("http_post_order.json") if k in order}
        answer["transactTime"] = order["time"]
        if self.accept_then_fail:
            self.accept_then_fail -= 1
            return web.Response(status=500, text="Internal error; unable to process your request.")
        if self.accept_then_delay_s:
            await asyncio.sleep(self.accept_then_delay_s)
        return answer

    async def _get_order(self, p: dict[str, str]) -> Any:
        order = self.orders.get((p["symbol"], p["origClientOrderId"]))
        if order is None:
            return _error(400, -2013, "Order does not exist.")
        return order

    async def _delete_order(self, p: dict[str, str]) -> Any:
        order = self.orders.get((p["symbol"], p["origClientOrderId"]))
        if order is None or order["status"] not in ("NEW", "PARTIALLY_FILLED"):
            return _error(400, -2011, "Unknown order sent.")
        order["status"] = "CANCELED"
        self._report(order, "CANCELED")
        answer = payload("http_delete_order.json")
        answer.update({k: order[k] for k in answer if k in order})
        answer.update(
            origClientOrderId=order["clientOrderId"], clientOrderId="cancel" + str(order["orderId"])
        )
        return answer

    async def _open_orders(self, p: dict[str, str]) -> Any:
        return [
            o
            for (symbol, _), o in self.orders.items()
            if symbol == p["symbol"] and o["status"] in ("NEW", "PARTIALLY_FILLED")
        ]

    async def _all_orders(self, p: dict[str, str]) -> Any:
        first = int(p.get("orderId", 0))
        rows = [
            o for (s, _), o in self.orders.items() if s == p["symbol"] and o["orderId"] >= first
        ]
        return sorted(rows, key=lambda o: o["orderId"])[: int(p.get("limit", 500))]

    async def _account(self, p: dict[str, str]) -> Any:
        account = payload("http_get_account.json")
        account["balances"] = [
            {"asset": a, "free": f"{free:.8f}", "locked": f"{locked:.8f}"}
            for a, (free, locked) in self.balances.items()
        ]
        return account

    async def _my_trades(self, p: dict[str, str]) -> Any:
        rows = [t for t in self.trades if t["symbol"] == p["symbol"]]
        if "fromId" in p:
            rows = [t for t in rows if t["id"] >= int(p["fromId"])]
        elif "startTime" in p:
            rows = [t for t in rows if t["time"] >= int(p["startTime"])]
        return rows[: int(p.get("limit", 500))]

    def fill(
        self, cid: str, qty: float, price: float | None = None, *, symbol: str = "BTCUSDT"
    ) -> dict[str, Any]:
        """Trade ``qty`` of an order: the trade, the order's state, balances, the report."""
        order = self.orders[(symbol, cid)]
        price = price if price is not None else self.prices[symbol]
        self._next_trade_id += 1
        executed = float(order["executedQty"]) + qty
        quote = float(order["cummulativeQuoteQty"]) + qty * price
        fee = qty * price * COMMISSION
        order.update(
            executedQty=f"{executed:.8f}",
            cummulativeQuoteQty=f"{quote:.8f}",
            status="FILLED" if executed >= float(order["origQty"]) - 1e-12 else "PARTIALLY_FILLED",
            updateTime=self.server_ms(),
        )
        trade = payload("http_get_my_trades.json")[0]
        trade.update(
            symbol=symbol,
            id=self._next_trade_id,
            orderId=order["orderId"],
            price=f"{price:.8f}",
            qty=f"{qty:.8f}",
            quoteQty=f"{qty * price:.8f}",
            commission=f"{fee:.8f}",
            commissionAsset="USDT",
            time=self.server_ms(),
            isBuyer=order["side"] == "BUY",
        )
        self.trades.append(trade)
        base = self.balances.setdefault(symbol.removesuffix("USDT"), [0.0, 0.0])
        sign_ = 1 if order["side"] == "BUY" else -1
        base[0] += sign_ * qty
        self.balances["USDT"][0] -= sign_ * qty * price + fee
        self._report(order, "TRADE", trade)
        return trade

    # ------------------------------------------------------------ user data stream

    def _report(
        self, order: dict[str, Any], kind: str, trade: dict[str, Any] | None = None
    ) -> None:
        frame = payload("ws_api_execution_report.json")
        event = frame["event"]
        event.update(
            E=self.server_ms(),
            s=order["symbol"],
            c=order["clientOrderId"],
            S=order["side"],
            o=order["type"],
            q=order["origQty"],
            p=order["price"],
            x=kind,
            X=order["status"],
            i=order["orderId"],
            z=order["executedQty"],
            T=self.server_ms(),
            l=trade["qty"] if trade else "0.00000000",
            L=trade["price"] if trade else "0.00000000",
            n=trade["commission"] if trade else "0",
            N=trade["commissionAsset"] if trade else None,
            t=trade["id"] if trade else -1,
        )
        if kind == "CANCELED":
            event.update(C=order["clientOrderId"], c="cancel" + str(order["orderId"]))
        data = orjson.dumps(frame)
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

    async def _ws_api(self, request: web.Request) -> web.StreamResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        async for message in ws:
            if message.type != WSMsgType.TEXT:
                continue
            req = orjson.loads(message.data)
            params = dict(req.get("params", {}))
            signature = params.pop("signature", "")
            answer = payload("ws_api_subscribe_response.json")
            answer["id"] = req["id"]
            if req.get("method") != "userDataStream.subscribe.signature":
                answer.update(status=400, error={"code": -1020, "msg": "Unsupported operation."})
                del answer["result"]
            elif params.get("apiKey") != self.api_key or signature != sign(
                self.api_secret, query_string(dict(sorted(params.items())))
            ):
                answer.update(
                    status=400,
                    error={"code": -1022, "msg": "Signature for this request is not valid."},
                )
                del answer["result"]
            else:
                answer["result"] = {"subscriptionId": self.subscriptions}
                self.subscriptions += 1
                self.user_sockets.append(ws)
            await ws.send_str(orjson.dumps(answer).decode())
        with contextlib.suppress(ValueError):
            self.user_sockets.remove(ws)
        return ws


def _error(status: int, code: int, msg: str) -> web.Response:
    body = payload("http_error.json")
    body.update(code=code, msg=msg)
    return web.json_response(body, status=status)
