"""A fake Binance spot on 127.0.0.1:0 (aiohttp), speaking the real protocol from the recorded
payloads in ``payloads/``, refusing what Binance refuses (``fake_exchange``), with switches
for the faults a live venue produces.

One port serves the combined kline stream (``/stream?streams=...``, with server pings), the
REST API (``/api/v3/...``) and the WebSocket API user data stream (``/ws-api/v3``,
``userDataStream.subscribe.signature``). Written from the docs:

- SIGNED requests: ``signature`` = HMAC-SHA256 over ``totalParams``, the query string
  concatenated with the form-encoded request body; parameters may be in either (the query
  string wins); ``timestamp`` within ``recvWindow`` (default 5000, at most 60000) or -1021:
  https://developers.binance.com/docs/binance-spot-api-docs/rest-api/request-security
- HTTP codes (429 / 418 with Retry-After, 5XX "execution status UNKNOWN"):
  https://developers.binance.com/docs/binance-spot-api-docs/rest-api/http-return-codes
- The WebSocket API: requests ``{"id", "method", "params"}``, answers ``{"id", "status",
  "result" | "error", "rateLimits"}``; ``{"event": {"e": "serverShutdown"}}`` before the
  server goes; a connection lives 24 hours:
  https://developers.binance.com/docs/binance-spot-api-docs/websocket-api/general-api-information
- Market streams: combined frames, pings, ``serverShutdown``, the 24 h cut:
  https://developers.binance.com/docs/binance-spot-api-docs/web-socket-streams
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from decimal import Decimal
from typing import Any
from urllib.parse import parse_qsl

from adapters.binance.codec import sign
from aiohttp import web

from tests.adapters.binance.fake_exchange import FakeExchange, Refusal
from tests.adapters.binance.fake_market import MINUTE_MS, T0_MS, FakeMarketData
from tests.adapters.binance.fake_order_lists import OrderLists
from tests.adapters.binance.fake_user_stream import FakeUserStream
from tests.adapters.binance.recorded import PAYLOADS, payload

__all__ = ["MINUTE_MS", "PAYLOADS", "T0_MS", "FakeBinance", "Fault", "payload"]

SIGNED = (
    "/api/v3/order",
    "/api/v3/order/test",
    "/api/v3/openOrders",
    "/api/v3/allOrders",
    "/api/v3/account",
    "/api/v3/myTrades",
    "/api/v3/orderList/oco",
    "/api/v3/orderList/oto",
    "/api/v3/orderList/otoco",
)


class Fault:
    """One injected answer for the next request to ``method path``."""

    def __init__(
        self,
        method: str,
        path: str,
        status: int,
        body: Any,
        headers: dict[str, str],
        after_accept: bool,
    ) -> None:
        self.method, self.path, self.status = method, path, status
        self.body, self.headers, self.after_accept = body, headers, after_accept


class FakeBinance(FakeMarketData, FakeUserStream):
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
        self.retry_after_s = retry_after_s
        self._init_market(bars, bar_interval_s, ping_interval_s)
        self._init_user_stream()
        self.max_connection_age_s = 24 * 3600.0  # Binance cuts every connection at 24 h
        # trading
        self.exchange = FakeExchange(self.server_ms, self._send_report)
        self.lists = OrderLists(self.exchange)
        self.match_bars = False  # switch: match resting orders against each closed bar
        self.exchange.set_balances(USDT=10_000, BTC=0.5)
        self.exchange.balances["USDT"][1] = Decimal(500)  # locked by orders placed elsewhere
        self.exchange.prices = {s: Decimal(100 * (i + 1)) for i, s in enumerate(symbols)}
        self.exchange.prices.setdefault("BNBUSDT", Decimal(600))
        self.exchange.prices.setdefault("LTCBTC", Decimal("0.002"))
        self.clock_ahead_ms = 0  # the server's clock minus the wall clock
        self.statuses: list[int] = []  # fault: answer the next requests with these (429, 418)
        self.faults: list[Fault] = []  # fault: injected answers, see inject()
        self.accept_then_delay_s = 0.0  # fault: accepted, then the answer is this late
        self.requests: list[tuple[str, str]] = []
        self.posted_client_ids: list[str] = []  # every order POST that reached the engine
        self.signed_requests = 0
        self._tasks: set[asyncio.Task[Any]] = set()
        self._runner: web.AppRunner | None = None
        self.port = 0

    # ------------------------------------------------------------ state (the engine's)

    @property
    def orders(self) -> dict[tuple[str, str], dict[str, Any]]:
        return self.exchange.orders

    @property
    def trades(self) -> list[dict[str, Any]]:
        return self.exchange.trades

    @property
    def balances(self) -> dict[str, list[Decimal]]:
        return self.exchange.balances

    @balances.setter
    def balances(self, value: dict[str, list[float]]) -> None:
        """``{"USDT": [free, locked]}`` (locked may be left out)."""
        self.exchange.balances = {
            a: [Decimal(str(v[0])), Decimal(str(v[1] if len(v) > 1 else 0))]
            for a, v in value.items()
        }

    @property
    def prices(self) -> dict[str, Decimal]:
        return self.exchange.prices

    def fill(
        self,
        cid: str,
        qty: float | str,
        price: float | str | None = None,
        *,
        symbol: str = "BTCUSDT",
    ) -> dict[str, Any]:
        """Trade ``qty`` of an open order now (at ``price``, default the symbol's price)."""
        at = Decimal(str(price)) if price is not None else None
        return self.exchange.fill(cid, Decimal(str(qty)), at, symbol=symbol)

    def inject(
        self,
        method: str,
        path: str,
        status: int,
        code: int | None = None,
        msg: str = "",
        *,
        headers: dict[str, str] | None = None,
        text: str | None = None,
        after_accept: bool = False,
    ) -> None:
        """Answer the next ``method path`` with ``status`` and ``{"code", "msg"}`` (or ``text``);
        ``after_accept``: an order POST is placed first, then answered so."""
        body: Any = text if text is not None else {"code": code, "msg": msg}
        self.faults.append(Fault(method, path, status, body, headers or {}, after_accept))

    # ------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        app = web.Application(middlewares=[self._faults])
        app.router.add_get("/stream", self._stream)
        app.router.add_get("/ws-api/v3", self._ws_api)
        app.router.add_get("/api/v3/time", self._time)
        app.router.add_get("/api/v3/ping", self._ping_rest)
        app.router.add_get("/api/v3/klines", self._klines)
        app.router.add_get("/api/v3/exchangeInfo", self._public(self.exchange.exchange_info))
        app.router.add_get("/api/v3/ticker/price", self._public(self.exchange.ticker))
        app.router.add_post("/api/v3/order", self._signed(self._post_order))
        app.router.add_post("/api/v3/order/test", self._signed(self._test_order))
        app.router.add_get("/api/v3/order", self._signed(self.exchange.query))
        app.router.add_delete("/api/v3/order", self._signed(self._cancel))
        app.router.add_post("/api/v3/orderList/oco", self._signed(self._post_list("oco")))
        app.router.add_post("/api/v3/orderList/oto", self._signed(self._post_list("oto")))
        app.router.add_post("/api/v3/orderList/otoco", self._signed(self._post_list("otoco")))
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

    async def _cut_after(self, ws: web.WebSocketResponse, age_s: float) -> None:
        await asyncio.sleep(age_s)
        await ws.close(code=1000, message=b"24 hours")

    def _spawn(self, coro: Any) -> asyncio.Task[Any]:
        task = asyncio.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    # ------------------------------------------------------------ REST plumbing

    @web.middleware
    async def _faults(self, request: web.Request, handler: Callable[..., Any]) -> Any:
        self.requests.append((request.method, request.path))
        api = request.path.startswith("/api/")
        if self.statuses and api:
            status = self.statuses.pop(0)
            return web.json_response(
                {
                    "code": -1003,
                    "msg": "Too much request weight used; current limit is 6000 "
                    "request weight per 1 MINUTE.",
                },
                status=status,
                headers={"Retry-After": self.retry_after_s, "X-MBX-USED-WEIGHT-1M": "6001"},
            )
        fault = next(
            (f for f in self.faults if (f.method, f.path) == (request.method, request.path)), None
        )
        if fault is not None and not fault.after_accept:
            self.faults.remove(fault)
            return _answer(fault)
        response = await handler(request)
        if fault is not None and response.status == 200:  # placed, then the answer is lost
            self.faults.remove(fault)
            return _answer(fault)
        if api:
            used = sum(1 for _, path in self.requests if path.startswith("/api/"))
            response.headers["X-MBX-USED-WEIGHT-1M"] = str(used)
        return response

    def server_ms(self) -> int:
        return time.time_ns() // 1_000_000 + self.clock_ahead_ms

    async def _time(self, request: web.Request) -> web.Response:
        answer = payload("http_get_time.json")
        answer["serverTime"] = self.server_ms()
        return web.json_response(answer)

    async def _ping_rest(self, request: web.Request) -> web.Response:
        return web.json_response({})

    def _public(self, handler: Callable[[dict[str, str]], Any]) -> Callable[..., Any]:
        async def public(request: web.Request) -> web.Response:
            try:
                return web.json_response(handler(dict(request.query)))
            except Refusal as refusal:
                return _error(refusal.status, refusal.code, refusal.msg)

        return public

    def _signed(self, handler: Callable[[dict[str, str]], Any]) -> Callable[..., Any]:
        """A SIGNED endpoint: key, signature over query string + body, timestamp window."""

        async def checked(request: web.Request) -> web.StreamResponse:
            self.signed_requests += 1
            query, body = request.raw_path.partition("?")[2], await request.text()
            key = request.headers.get("X-MBX-APIKEY")
            if not key:
                return _error(401, -2014, "API-key format invalid.")
            if key != self.api_key:
                return _error(401, -2015, "Invalid API-key, IP, or permissions for action.")
            query_part, query_sig = _without_signature(query)
            body_part, body_sig = _without_signature(body)
            signature = body_sig or query_sig
            if not signature or sign(self.api_secret, query_part + body_part) != signature.lower():
                return _error(400, -1022, "Signature for this request is not valid.")
            # both places count; a parameter in both: the query string's wins
            params = dict(parse_qsl(body_part)) | dict(parse_qsl(query_part))
            if "timestamp" not in params:
                return _error(
                    400,
                    -1102,
                    "Mandatory parameter 'timestamp' was not sent, was empty/null, or malformed.",
                )
            window = int(float(params.get("recvWindow", "5000")))
            if window > 60_000:
                return _error(400, -1131, "recvWindow must be less than 60000")
            now, ts = self.server_ms(), int(params["timestamp"])
            if ts >= now + 1000 or now - ts > window:
                return _error(
                    400, -1021, "Timestamp for this request is outside of the recvWindow."
                )
            try:
                result = await _maybe_await(handler(params))
            except Refusal as refusal:
                return _error(refusal.status, refusal.code, refusal.msg)
            return result if isinstance(result, web.StreamResponse) else web.json_response(result)

        return checked

    async def _post_order(self, p: dict[str, str]) -> Any:
        self.posted_client_ids.append(p.get("newClientOrderId", ""))
        answer = self.exchange.place(p)
        if self.accept_then_delay_s:
            await asyncio.sleep(self.accept_then_delay_s)
        return answer

    def _post_list(self, kind: str) -> Callable[[dict[str, str]], Any]:
        async def post(p: dict[str, str]) -> Any:
            self.posted_client_ids.append(p.get("listClientOrderId", ""))
            if kind == "oco":
                return self.lists.place_oco(p)
            return self.lists.place_oto(p, pair=kind == "otoco")

        return post

    def _cancel(self, p: dict[str, str]) -> Any:
        answer = self.exchange.cancel(p)
        self.lists.cancelled((p["symbol"], answer["origClientOrderId"]))
        return answer

    def on_closed_bar(self, symbol: str, kline: dict[str, Any]) -> None:
        """The clock closed a bar: the book trades what it reached (``fake_order_lists``)."""
        if self.match_bars:
            self.lists.match(symbol, kline)

    async def _test_order(self, p: dict[str, str]) -> Any:
        return self.exchange.place(p, test=True)

    async def _open_orders(self, p: dict[str, str]) -> Any:
        if "symbol" in p:
            self.exchange.symbol(p["symbol"])
        wanted = p.get("symbol")
        return [
            o
            for (s, _), o in self.orders.items()
            if s == (wanted or s) and o["status"] in ("NEW", "PARTIALLY_FILLED")
        ]

    async def _all_orders(self, p: dict[str, str]) -> Any:
        self.exchange.symbol(p.get("symbol"))
        first = int(p.get("orderId", 0))
        rows = [
            o for (s, _), o in self.orders.items() if s == p["symbol"] and o["orderId"] >= first
        ]
        return sorted(rows, key=lambda o: o["orderId"])[: int(p.get("limit", 500))]

    async def _account(self, p: dict[str, str]) -> Any:
        account = payload("http_get_account.json")
        omit = p.get("omitZeroBalances") == "true"
        account["balances"] = [
            {"asset": a, "free": f"{free:.8f}", "locked": f"{locked:.8f}"}
            for a, (free, locked) in self.balances.items()
            if not (omit and not free + locked)
        ]
        account["updateTime"] = self.server_ms()
        return account

    async def _my_trades(self, p: dict[str, str]) -> Any:
        self.exchange.symbol(p.get("symbol"))
        rows = [t for t in self.trades if t["symbol"] == p["symbol"]]
        if "orderId" in p:
            rows = [t for t in rows if str(t["orderId"]) == p["orderId"]]
        if "fromId" in p:
            rows = [t for t in rows if t["id"] >= int(p["fromId"])]
        elif "startTime" in p:
            rows = [t for t in rows if t["time"] >= int(p["startTime"])]
        return rows[: int(p.get("limit", 500))]


def _without_signature(text: str) -> tuple[str, str]:
    """``text`` without its ``signature=`` parameter, and that signature ('' if none)."""
    if text.startswith("signature="):
        head, _, sig = "", "", text.removeprefix("signature=")
    else:
        head, _, sig = text.rpartition("&signature=")
        if not _:
            return text, ""
    return head, sig.partition("&")[0]


async def _maybe_await(value: Any) -> Any:
    return await value if asyncio.iscoroutine(value) else value


def _answer(fault: Fault) -> web.Response:
    headers = {"X-MBX-USED-WEIGHT-1M": "1", **fault.headers}
    if isinstance(fault.body, str):
        return web.Response(status=fault.status, text=fault.body, headers=headers)
    return web.json_response(fault.body, status=fault.status, headers=headers)


def _error(status: int, code: int, msg: str) -> web.Response:
    body = payload("http_error.json")
    body.update(code=code, msg=msg)
    return web.json_response(body, status=status)
