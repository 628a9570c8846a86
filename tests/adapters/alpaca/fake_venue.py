"""A fake Alpaca on 127.0.0.1:0: the v2 data stream, bars REST, trading REST and trade_updates,
built from the recorded payloads in ``payloads/`` (full envelopes), with fault switches.

The test drives the market: ``publish(i)`` sends minute ``i``'s bars (one batched frame) to
every subscribed data client and stores them for ``GET /v2/stocks/bars``; ``fill(...)`` fills
an order and pushes the trade_updates event. Switches are plain attributes (see __init__).
"""

from __future__ import annotations

import asyncio
import base64
import copy
import json
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from aiohttp import WSMsgType, web

PAYLOADS = Path(__file__).parent / "payloads"
KEY_ID = "PKTESTKEYID0000000001"
SECRET = "sEcReT-do-not-leak-0123456789abcdefghij"
MINUTE0 = datetime(2024, 3, 4, 14, 30, tzinfo=UTC)


def payload(name: str) -> Any:
    return json.loads((PAYLOADS / name).read_text())


def minute_text(i: int) -> str:
    return (MINUTE0 + timedelta(minutes=i)).strftime("%Y-%m-%dT%H:%M:%SZ")


def minute_ns(i: int) -> int:
    return int((MINUTE0 + timedelta(minutes=i)).timestamp()) * 1_000_000_000


def _now_text() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class FakeAlpaca:
    def __init__(self, symbols: tuple[str, ...] = ("AAPL", "SPY"), page_limit: int = 3) -> None:
        self.symbols = symbols
        self.page_limit = page_limit
        # -- data stream switches
        self.auth_delay_s = 0.0  # answer auth late
        self.auth_never = False  # never answer auth
        self.auth_error: int | None = None  # answer auth with this error code (402, 404)
        self.refuse_406 = 0  # this many next connections get error 406
        self.stall = False  # subscribe, then never send a bar
        # -- trading switches
        self.rate_limit: list[tuple[str, dict[str, str]]] = []  # (path prefix, 429 headers)
        self.accept_then_status: int | None = None  # create the order, then answer this (5xx)
        self.accept_then_hang_s = 0.0  # create the order, then answer this late
        self.reject_next: tuple[int, str] | None = None  # (status, payload file)
        self.duplicate_updates = False  # every trade update is sent twice
        self.cash = 100_000.0
        # -- what happened
        self.data_connections = 0
        self.connection_times: list[float] = []  # monotonic, one per data connection
        self.auth_messages: list[dict[str, Any]] = []
        self.subscriptions: list[dict[str, Any]] = []
        self.bar_requests: list[dict[str, str]] = []
        self.requests: list[tuple[str, str]] = []
        self.trade_connections = 0
        self.subscribed = asyncio.Event()
        self._changed = asyncio.Condition()
        self.trade_listening = asyncio.Event()
        # -- state
        self.bars: dict[tuple[str, int], dict[str, Any]] = {}  # (symbol, minute) → REST bar
        self.orders: dict[str, dict[str, Any]] = {}
        self.positions: dict[str, float] = {}
        self.activities: list[dict[str, Any]] = []
        self._data_clients: set[web.WebSocketResponse] = set()
        self._trade_clients: set[web.WebSocketResponse] = set()
        self._runner: web.AppRunner | None = None
        self.port = 0

    # -- lifecycle ------------------------------------------------------------------------------

    async def start(self) -> FakeAlpaca:
        app = web.Application()
        app.router.add_get("/v2/iex", self._data_stream)
        app.router.add_get("/v2/sip", self._data_stream)
        app.router.add_get("/stream", self._trade_stream)
        app.router.add_get("/v2/stocks/bars", self._get_bars)
        app.router.add_post("/v2/orders", self._post_order)
        app.router.add_get("/v2/orders", self._list_orders)
        app.router.add_get("/v2/orders:by_client_order_id", self._order_by_cid)
        app.router.add_get("/v2/orders/{id}", self._get_order)
        app.router.add_delete("/v2/orders/{id}", self._delete_order)
        app.router.add_get("/v2/positions", self._get_positions)
        app.router.add_get("/v2/account", self._get_account)
        app.router.add_get("/v2/account/activities/FILL", self._get_activities)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        return self

    async def close(self) -> None:
        for ws in [*self._data_clients, *self._trade_clients]:
            await ws.close()
        if self._runner is not None:
            await self._runner.cleanup()

    def settings(self, **extra: Any) -> dict[str, Any]:
        """A ``[venue]`` table pointing every URL here."""
        base = f"127.0.0.1:{self.port}"
        return {
            "symbols": list(self.symbols),
            "data_ws_url": f"ws://{base}/v2/iex",
            "data_url": f"http://{base}",
            "trading_url": f"http://{base}",
            **extra,
        }

    # -- the market -----------------------------------------------------------------------------

    def bar(self, symbol: str, i: int, kind: str = "b", bump: float = 0.0) -> dict[str, Any]:
        """Minute ``i`` of ``symbol``, shaped like the recorded bar of that symbol."""
        template = next(b for b in payload("ws_bars_batch.json") if b["S"] == symbol)
        base = template["o"] + 0.01 * i
        bar = dict(template, T=kind, t=minute_text(i), o=round(base, 4))
        bar.update(h=round(base + 0.2 + bump, 4), l=round(base - 0.1, 4))
        bar.update(c=round(base + 0.05 + bump, 4), v=template["v"] + i)
        return bar

    async def publish(self, i: int, symbols: tuple[str, ...] | None = None) -> None:
        """Minute ``i``'s bars, one batched frame, to every subscribed client; stored for REST."""
        frame = [self.bar(s, i) for s in symbols or self.symbols]
        for bar in frame:
            self.bars[(bar["S"], i)] = bar
        await self._send_data(frame)

    async def correct(self, i: int, symbol: str, bump: float) -> dict[str, Any]:
        """An ``"u"`` for minute ``i``: higher high and close (late trades); REST has it too."""
        bar = self.bar(symbol, i, "u", bump)
        self.bars[(symbol, i)] = dict(bar, T="b")
        await self._send_data([bar])
        return bar

    async def wait_for(self, predicate: Any, timeout_s: float = 5.0) -> None:
        """Until ``predicate()`` holds (checked on each connection and subscription)."""
        async with asyncio.timeout(timeout_s), self._changed:
            await self._changed.wait_for(predicate)

    async def drop_data_clients(self) -> None:
        for ws in list(self._data_clients):
            self._data_clients.discard(ws)
            await ws.close()
        self.subscribed.clear()

    async def _send_data(self, frame: list[dict[str, Any]]) -> None:
        text = json.dumps(frame)
        for ws in list(self._data_clients):
            await ws.send_str(text)

    async def _data_stream(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        self.data_connections += 1
        self.connection_times.append(time.monotonic())
        async with self._changed:
            self._changed.notify_all()
        await ws.send_str(json.dumps(payload("ws_connected.json")))
        try:
            async for message in ws:
                if message.type is not WSMsgType.TEXT and message.type is not WSMsgType.BINARY:
                    break
                action = json.loads(message.data)
                if action.get("action") == "auth":
                    self.auth_messages.append(action)
                    if self.auth_never:
                        continue
                    await asyncio.sleep(self.auth_delay_s)
                    error = self._auth_error(action)
                    if error is not None:
                        await ws.send_str(json.dumps(payload(error)))
                        await ws.close()
                        break
                    await ws.send_str(json.dumps(payload("ws_authenticated.json")))
                elif action.get("action") == "subscribe":
                    self.subscriptions.append(action)
                    async with self._changed:
                        self._changed.notify_all()
                    answer = payload("ws_subscription.json")
                    answer[0]["bars"] = action["bars"]
                    answer[0]["updatedBars"] = action.get("updatedBars", [])
                    await ws.send_str(json.dumps(answer))
                    if not self.stall:
                        self._data_clients.add(ws)
                        self.subscribed.set()
        finally:
            self._data_clients.discard(ws)
        return ws

    def _auth_error(self, action: dict[str, Any]) -> str | None:
        if self.refuse_406 > 0:
            self.refuse_406 -= 1
            return "ws_error_406.json"
        if self.auth_error is not None:
            return f"ws_error_{self.auth_error}.json"
        if action.get("key") != KEY_ID or action.get("secret") != SECRET:
            return "ws_error_402.json"
        return None

    async def _get_bars(self, request: web.Request) -> web.Response:
        if (denied := self._denied(request)) is not None:
            return denied
        query = dict(request.query)
        self.bar_requests.append(query)
        symbols = query["symbols"].split(",")
        start, end = query["start"], query.get("end", "9999")
        rows = sorted(
            (s, i)
            for (s, i) in self.bars
            if s in symbols and start <= minute_text(i) and minute_text(i) <= end
        )  # Alpaca pages by symbol, then time
        offset = int(base64.b64decode(query["page_token"])) if "page_token" in query else 0
        page = rows[offset : offset + self.page_limit]
        grouped: dict[str, list[dict[str, Any]]] = {}
        for s, i in page:
            rest = {k: v for k, v in self.bars[(s, i)].items() if k not in ("T", "S")}
            grouped.setdefault(s, []).append(rest)
        more = offset + self.page_limit < len(rows)
        token = base64.b64encode(str(offset + self.page_limit).encode()).decode() if more else None
        return web.json_response({"bars": grouped, "next_page_token": token})

    # -- trading REST ---------------------------------------------------------------------------

    def _denied(self, request: web.Request) -> web.Response | None:
        self.requests.append((request.method, request.path))
        headers = request.headers
        if headers.get("APCA-API-KEY-ID") != KEY_ID or headers.get("APCA-API-SECRET-KEY") != SECRET:
            return web.json_response(
                {"code": 40110000, "message": "request is not authorized"}, status=401
            )
        for n, (prefix, limit_headers) in enumerate(self.rate_limit):
            if request.path.startswith(prefix):
                del self.rate_limit[n]
                return web.json_response(
                    payload("http_error_429.json"), status=429, headers=limit_headers
                )
        return None

    async def _post_order(self, request: web.Request) -> web.Response:
        if (denied := self._denied(request)) is not None:
            return denied
        body = await request.json()
        if self.reject_next is not None:
            status, name = self.reject_next
            self.reject_next = None
            return web.json_response(payload(name), status=status)
        cid = body.get("client_order_id") or str(uuid.uuid4())
        if any(o["client_order_id"] == cid for o in self.orders.values()):
            return web.json_response(payload("http_error_422_unique.json"), status=422)
        order = copy.deepcopy(payload("http_post_order.json"))
        order.update(
            id=str(uuid.uuid4()),
            client_order_id=cid,
            symbol=body["symbol"],
            qty=body["qty"],
            side=body["side"],
            type=body["type"],
            order_type=body["type"],
            time_in_force=body["time_in_force"],
            limit_price=body.get("limit_price"),
            stop_price=body.get("stop_price"),
            created_at=_now_text(),
            status="accepted",
        )
        self.orders[order["id"]] = order
        await self._send_trade("new", order)
        if self.accept_then_hang_s:
            await asyncio.sleep(self.accept_then_hang_s)
        if self.accept_then_status is not None:
            status, self.accept_then_status = self.accept_then_status, None
            return web.json_response(payload("http_error_500.json"), status=status)
        return web.json_response(order)

    async def _list_orders(self, request: web.Request) -> web.Response:
        if (denied := self._denied(request)) is not None:
            return denied
        open_orders = [o for o in self.orders.values() if o["status"] in _OPEN]
        return web.json_response(open_orders)

    async def _order_by_cid(self, request: web.Request) -> web.Response:
        if (denied := self._denied(request)) is not None:
            return denied
        cid = request.query["client_order_id"]
        for order in self.orders.values():
            if order["client_order_id"] == cid:
                return web.json_response(order)
        return web.json_response(payload("http_error_404.json"), status=404)

    async def _get_order(self, request: web.Request) -> web.Response:
        if (denied := self._denied(request)) is not None:
            return denied
        order = self.orders.get(request.match_info["id"])
        if order is None:
            return web.json_response(payload("http_error_404.json"), status=404)
        return web.json_response(order)

    async def _delete_order(self, request: web.Request) -> web.Response:
        if (denied := self._denied(request)) is not None:
            return denied
        order = self.orders.get(request.match_info["id"])
        if order is None:
            return web.json_response(payload("http_error_404.json"), status=404)
        if order["status"] not in _OPEN:
            return web.json_response(payload("http_error_422_not_cancelable.json"), status=422)
        order.update(status="canceled", canceled_at=_now_text())
        await self._send_trade("canceled", order)
        return web.Response(status=204)

    async def _get_positions(self, request: web.Request) -> web.Response:
        if (denied := self._denied(request)) is not None:
            return denied
        out = []
        for template in payload("http_get_positions.json"):
            qty = self.positions.get(template["symbol"], 0.0)
            if qty:
                side = "long" if qty > 0 else "short"
                out.append(dict(template, qty=f"{qty:g}", qty_available=f"{qty:g}", side=side))
        return web.json_response(out)

    async def _get_account(self, request: web.Request) -> web.Response:
        if (denied := self._denied(request)) is not None:
            return denied
        return web.json_response(dict(payload("http_get_account.json"), cash=f"{self.cash:.2f}"))

    async def _get_activities(self, request: web.Request) -> web.Response:
        if (denied := self._denied(request)) is not None:
            return denied
        after = request.query.get("after", "")
        size = int(request.query.get("page_size", "100"))
        rows = [a for a in self.activities if a["transaction_time"] > after]
        if "page_token" in request.query:
            ids = [a["id"] for a in rows]
            rows = rows[ids.index(request.query["page_token"]) + 1 :]
        return web.json_response(rows[:size])

    # -- fills and trade_updates ----------------------------------------------------------------

    def fill(self, order_id: str, qty: float, price: float) -> dict[str, Any]:
        """Fill ``qty`` of an order at ``price``: book it, return the trade update (unsent)."""
        order = self.orders[order_id]
        before = float(order["filled_qty"])
        cum = before + qty
        avg = (before * float(order["filled_avg_price"] or 0) + qty * price) / cum
        done = cum >= float(order["qty"])
        order.update(
            filled_qty=f"{cum:g}",
            filled_avg_price=f"{avg:.4f}",
            status="filled" if done else "partially_filled",
            updated_at=_now_text(),
        )
        sign = 1 if order["side"] == "buy" else -1
        self.positions[order["symbol"]] = self.positions.get(order["symbol"], 0.0) + sign * qty
        self.cash -= sign * qty * price
        execution_id = str(uuid.uuid4())
        now = _now_text()
        event = "fill" if done else "partial_fill"
        self.activities.append(
            dict(
                payload("http_get_activities_fill.json")[0],
                id=f"{now[:23].replace('-', '').replace(':', '').replace('T', '')}::{execution_id}",
                transaction_time=now,
                type=event,
                price=f"{price:g}",
                qty=f"{qty:g}",
                side=order["side"],
                symbol=order["symbol"],
                leaves_qty=f"{float(order['qty']) - cum:g}",
                order_id=order_id,
                cum_qty=f"{cum:g}",
                order_status=order["status"],
            )
        )
        return {
            "stream": "trade_updates",
            "data": {
                "event": event,
                "execution_id": execution_id,
                "timestamp": now,
                "price": f"{price:g}",
                "qty": f"{qty:g}",
                "position_qty": f"{self.positions[order['symbol']]:g}",
                "order": copy.deepcopy(order),
            },
        }

    async def send_updates(self, *updates: dict[str, Any]) -> None:
        for update in updates:
            for _ in range(2 if self.duplicate_updates else 1):
                for ws in list(self._trade_clients):
                    await ws.send_bytes(json.dumps(update).encode())  # Alpaca sends binary

    async def _send_trade(self, event: str, order: dict[str, Any]) -> None:
        update = {
            "stream": "trade_updates",
            "data": {"event": event, "timestamp": _now_text(), "order": copy.deepcopy(order)},
        }
        await self.send_updates(update)

    async def drop_trade_clients(self) -> None:
        for ws in list(self._trade_clients):
            self._trade_clients.discard(ws)
            await ws.close()
        self.trade_listening.clear()

    async def _trade_stream(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        self.trade_connections += 1
        try:
            async for message in ws:
                if message.type is not WSMsgType.TEXT and message.type is not WSMsgType.BINARY:
                    break
                action = json.loads(message.data)
                if action.get("action") == "auth":
                    ok = action.get("key") == KEY_ID and action.get("secret") == SECRET
                    name = "ws_trade_authorized.json" if ok else "ws_trade_unauthorized.json"
                    await ws.send_bytes(json.dumps(payload(name)).encode())
                    if not ok:
                        await ws.close()
                        break
                elif action.get("action") == "listen":
                    await ws.send_bytes(json.dumps(payload("ws_trade_listening.json")).encode())
                    self._trade_clients.add(ws)
                    self.trade_listening.set()
        finally:
            self._trade_clients.discard(ws)
        return ws


_OPEN = {"new", "accepted", "pending_new", "partially_filled", "pending_cancel"}
