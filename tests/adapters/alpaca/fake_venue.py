"""A fake Alpaca on 127.0.0.1:0: the v2 data stream, bars REST, trading REST, assets, account
activities and trade_updates, built from the recorded payloads in ``payloads/`` (full
envelopes, each beside the doc page it copies), with fault switches.

The test drives the market: ``publish(i)`` sends minute ``i``'s bars (one batched frame) to
every subscribed data client and stores them for ``GET /v2/stocks/bars``; ``fill(...)`` fills
an order and returns its trade_updates event; ``charge_fee`` books a FEE activity;
``trade_error`` sends the documented trade_updates error frame. It refuses what Alpaca refuses
(``fake_rules``). Switches are plain attributes (see __init__); the streams are
``fake_streams``.
"""

from __future__ import annotations

import asyncio
import copy
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from adapters.alpaca.config import KEY_ID_ENV, SECRET_ENV, AlpacaSettings
from aiohttp import web

from adapters.alpaca import AlpacaClient
from tests.adapters.alpaca.fake_classes import FakeOrderClasses
from tests.adapters.alpaca.fake_market import FakeMarket
from tests.adapters.alpaca.fake_rules import class_refusal, list_orders_refusal, order_refusal
from tests.adapters.alpaca.fake_streams import FakeStreams
from tests.adapters.alpaca.payloads_io import (
    KEY_ID,
    MINUTE0,
    PAYLOADS,
    SECRET,
    minute_ns,
    minute_text,
    payload,
)
from tradeloop.venue import Execution

__all__ = [
    "ENV",
    "KEY_ID",
    "MINUTE0",
    "PAYLOADS",
    "SECRET",
    "FakeAlpaca",
    "client_for",
    "listening",
    "minute_ns",
    "minute_text",
    "payload",
]


ENV = {KEY_ID_ENV: KEY_ID, SECRET_ENV: SECRET}


def client_for(fake: FakeAlpaca, env: dict[str, str] | None = None, **options: Any) -> AlpacaClient:
    """An ``AlpacaClient`` with every URL pointing at ``fake`` (not started)."""
    table = fake.settings(trade_updates_url=f"ws://127.0.0.1:{fake.port}/stream", **options)
    return AlpacaClient(AlpacaSettings.from_mapping(table, env or ENV))


async def listening(
    fake: FakeAlpaca, client: AlpacaClient
) -> tuple[AsyncIterator[Execution], asyncio.Future[Execution]]:
    """``client.executions()`` connected, listening and caught up; its first fill pending."""
    fake.activities_read.clear()
    stream = client.executions()
    pending = asyncio.ensure_future(anext(stream))
    await asyncio.wait_for(fake.activities_read.wait(), 5.0)  # the catch-up read is done
    return stream, pending


def _dec(value: float) -> str:
    """A quantity as Alpaca writes it: the exact decimal, no exponent (never ``:g``'s 6 digits)."""
    return format(Decimal(repr(round(value, 9))).normalize(), "f")


def _wire(value: Any) -> str | None:
    """A number as Alpaca echoes it: a decimal string (alpaca-py sends JSON numbers)."""
    return None if value is None else format(Decimal(str(value)).normalize(), "f")


def _compact(text: str) -> str:
    """``2024-03-04T14:30:00.123456Z`` → ``20240304143000123``: an activity id's time part."""
    return text[:23].replace("-", "").replace(":", "").replace("T", "").replace(".", "")


def _now_text() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class FakeAlpaca(FakeMarket, FakeStreams, FakeOrderClasses):
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
        self.fail_next: list[tuple[str, str, int, str]] = []  # (method, path prefix, status, file)
        self.trade_frames = "binary"  # what the server sends on trade_updates (docs: binary)
        self.next_headers: dict[str, str] = {}  # added to the next response (rate-limit headers)
        self.activities_read = asyncio.Event()  # set by every GET of account activities
        self.activity_ids_differ = False  # FILL activity ids not built from the execution_id
        self.lookup_misses = 0  # by-client-id lookups answered 404 although the order exists
        self.fractionable: dict[str, bool] = dict.fromkeys(symbols, True)
        self.cash = 100_000.0
        # -- what happened
        self.data_connections = 0
        self.connection_times: list[float] = []  # monotonic, one per data connection
        self.auth_messages: list[dict[str, Any]] = []
        self.subscriptions: list[dict[str, Any]] = []
        self.bar_requests: list[dict[str, str]] = []
        self.requests: list[tuple[str, str]] = []
        self.trade_connections = 0
        self.refused_frames = 0  # stream frames of the wrong kind (binary JSON, …)
        self.refusals: list[str] = []  # the payload file of every refused request
        self.subscribed = asyncio.Event()
        self._changed = asyncio.Condition()
        self.trade_listening = asyncio.Event()
        # -- state
        self.bars: dict[tuple[str, int], dict[str, Any]] = {}  # (symbol, minute) → REST bar
        self.orders: dict[str, dict[str, Any]] = {}
        self.leg_parent: dict[str, str] = {}  # an order class's leg id → its parent's id
        self.positions: dict[str, float] = {}
        self.activities: list[dict[str, Any]] = []
        self._data_clients: dict[web.WebSocketResponse, bool] = {}
        self._trade_clients: set[web.WebSocketResponse] = set()
        self._runner: web.AppRunner | None = None
        self.port = 0

    # -- lifecycle ------------------------------------------------------------------------------

    async def start(self) -> FakeAlpaca:
        @web.middleware
        async def add_headers(request: web.Request, handler: Any) -> web.StreamResponse:
            response: web.StreamResponse = await handler(request)
            if self.next_headers and not isinstance(response, web.WebSocketResponse):
                response.headers.update(self.next_headers)
                self.next_headers = {}
            return response

        app = web.Application(middlewares=[add_headers])
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
        app.router.add_get("/v2/account/activities/{activity_type}", self._get_activities)
        app.router.add_get("/v2/account/activities", self._get_activities)
        app.router.add_get("/v2/assets/{symbol}", self._get_asset)
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

    async def wait_for(self, predicate: Any, timeout_s: float = 5.0) -> None:
        """Until ``predicate()`` holds (checked on each connection and subscription)."""
        async with asyncio.timeout(timeout_s), self._changed:
            await self._changed.wait_for(predicate)

    # -- trading REST ---------------------------------------------------------------------------

    def _denied(self, request: web.Request) -> web.Response | None:
        """401 without the keys (https://docs.alpaca.markets/docs/authentication); then the
        injected faults: a 429 (with the given headers) or any status with a payload."""
        self.requests.append((request.method, request.path))
        headers = request.headers
        if headers.get("APCA-API-KEY-ID") != KEY_ID or headers.get("APCA-API-SECRET-KEY") != SECRET:
            return web.json_response(payload("http_error_401.json"), status=401)
        for n, (prefix, limit_headers) in enumerate(self.rate_limit):
            if request.path.startswith(prefix):
                del self.rate_limit[n]
                return web.json_response(
                    payload("http_error_429.json"), status=429, headers=limit_headers
                )
        for n, (method, prefix, status, name) in enumerate(self.fail_next):
            if request.method == method and request.path.startswith(prefix):
                del self.fail_next[n]
                return web.json_response(payload(name), status=status)
        return None

    def _refuse(self, status: int, name: str) -> web.Response:
        self.refusals.append(name)
        return web.json_response(payload(name), status=status)

    def last_price(self, symbol: str) -> float | None:
        """The close of ``symbol``'s latest published bar (a market entry's base price)."""
        minutes = [i for (s, i) in self.bars if s == symbol]
        return float(self.bars[(symbol, max(minutes))]["c"]) if minutes else None

    def asset(self, symbol: str) -> dict[str, Any] | None:
        """``GET /v2/assets/{symbol}`` for a listed symbol (AAPL's recorded shape)."""
        if symbol not in self.fractionable:
            return None
        return dict(
            payload("http_get_asset.json"), symbol=symbol, fractionable=self.fractionable[symbol]
        )

    async def _get_asset(self, request: web.Request) -> web.Response:
        if (denied := self._denied(request)) is not None:
            return denied
        found = self.asset(request.match_info["symbol"])
        if found is None:
            return self._refuse(404, "http_error_404_asset.json")
        return web.json_response(found)

    async def _post_order(self, request: web.Request) -> web.Response:
        if (denied := self._denied(request)) is not None:
            return denied
        body = await request.json()
        if self.reject_next is not None:
            status, name = self.reject_next
            self.reject_next = None
            return web.json_response(payload(name), status=status)
        taken = {o["client_order_id"] for o in self.orders.values()}
        refused = order_refusal(body, self.asset(str(body.get("symbol"))), taken)
        if refused is None:
            refused = class_refusal(body, self.last_price(str(body["symbol"])))
        if refused is not None:
            return self._refuse(*refused)
        cid = body.get("client_order_id") or str(uuid.uuid4())
        order = copy.deepcopy(payload("http_post_order.json"))
        prices = {k: _wire(body.get(k)) for k in ("limit_price", "stop_price")}
        order.update(
            id=str(uuid.uuid4()),
            client_order_id=cid,
            symbol=body["symbol"],
            qty=_wire(body["qty"]),
            side=body["side"],
            type=body["type"],
            order_type=body["type"],
            time_in_force=body["time_in_force"],
            created_at=_now_text(),
            submitted_at=_now_text(),
            status="accepted",
            **prices,
        )
        self.orders[order["id"]] = order
        self.build_legs(order, body)
        await self._send_trade("new", order)
        if self.accept_then_hang_s:
            await asyncio.sleep(self.accept_then_hang_s)
        if self.accept_then_status is not None:
            status, self.accept_then_status = self.accept_then_status, None
            return web.json_response(payload("http_error_500.json"), status=status)
        return web.json_response(order)

    async def _list_orders(self, request: web.Request) -> web.Response:
        """``status`` open | closed | all (default open), ``limit`` 1..500 (default 50),
        ``direction`` asc | desc (default desc), ``after`` (submitted after)."""
        if (denied := self._denied(request)) is not None:
            return denied
        query = request.query
        if (refused := list_orders_refusal(query)) is not None:
            return self._refuse(*refused)
        status = query.get("status", "open")
        rows = [
            o
            for o in self.orders.values()
            if status == "all" or (o["status"] in _OPEN) == (status == "open")
        ]
        rows = [o for o in rows if o["submitted_at"] > query.get("after", "")]
        rows.sort(key=lambda o: o["submitted_at"], reverse=query.get("direction") != "asc")
        return web.json_response(rows[: int(query.get("limit", "50"))])

    async def _order_by_cid(self, request: web.Request) -> web.Response:
        if (denied := self._denied(request)) is not None:
            return denied
        cid = request.query["client_order_id"]
        if self.lookup_misses > 0:  # eventual consistency: not visible yet right after a submit
            self.lookup_misses -= 1
            return web.json_response(payload("http_error_404.json"), status=404)
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
            return self._refuse(422, "http_error_422_not_cancelable.json")
        order.update(status="canceled", canceled_at=_now_text())
        await self._send_trade("canceled", order)
        await self.cancel_legs(order["id"])
        return web.Response(status=204)

    async def _get_positions(self, request: web.Request) -> web.Response:
        if (denied := self._denied(request)) is not None:
            return denied
        out = []
        for template in payload("http_get_positions.json"):
            qty = self.positions.get(template["symbol"], 0.0)
            if qty:
                side = "long" if qty > 0 else "short"
                out.append(dict(template, qty=_dec(qty), qty_available=_dec(qty), side=side))
        return web.json_response(out)

    async def _get_account(self, request: web.Request) -> web.Response:
        if (denied := self._denied(request)) is not None:
            return denied
        return web.json_response(dict(payload("http_get_account.json"), cash=f"{self.cash:.2f}"))

    async def _get_activities(self, request: web.Request) -> web.Response:
        """``/v2/account/activities/{type}`` or ``?activity_types=A,B``; ``after`` (exclusive),
        ``direction`` asc, ``page_size``, ``page_token`` = the last id of the previous page
        (https://docs.alpaca.markets/reference/getaccountactivities-1)."""
        if (denied := self._denied(request)) is not None:
            return denied
        self.activities_read.set()
        kinds = request.match_info.get("activity_type") or request.query.get("activity_types", "")
        wanted = set(kinds.split(",")) if kinds else None
        after = request.query.get("after", "")
        size = int(request.query.get("page_size", "100"))
        rows = [
            a
            for a in self.activities
            if (wanted is None or a["activity_type"] in wanted) and _when(a) > after
        ]
        if "page_token" in request.query:
            ids = [a["id"] for a in rows]
            rows = rows[ids.index(request.query["page_token"]) + 1 :]
        return web.json_response(rows[:size])

    def charge_fee(self, amount: float, symbol: str = "AAPL", kind: str = "FEE") -> dict[str, Any]:
        """A regulatory fee taken from cash, as a FEE (or CFEE) non-trade activity."""
        self.cash -= amount
        template = next(
            a for a in payload("http_get_activities_fee.json") if a["activity_type"] == kind
        )
        day = datetime.now(UTC).strftime("%Y-%m-%d")
        fee = dict(
            template,
            id=f"{day.replace('-', '')}000000000::{uuid.uuid4()}",
            date=day,
            net_amount=f"{-amount:.2f}",
            symbol=symbol,
        )
        self.activities.append(fee)
        return fee

    # -- fills and trade_updates ----------------------------------------------------------------

    def fill(self, order_id: str, qty: float, price: float) -> dict[str, Any]:
        """Fill ``qty`` of an order at ``price``: book it, return the trade update (unsent)."""
        order = self.orders[order_id]
        before = float(order["filled_qty"])
        cum = before + qty
        avg = (before * float(order["filled_avg_price"] or 0) + qty * price) / cum
        done = cum >= float(order["qty"])
        order.update(
            filled_qty=_dec(cum),
            filled_avg_price=f"{avg:.4f}",
            status="filled" if done else "partially_filled",
            updated_at=_now_text(),
        )
        sign = 1 if order["side"] == "buy" else -1
        self.positions[order["symbol"]] = self.positions.get(order["symbol"], 0.0) + sign * qty
        self.cash -= sign * qty * price
        execution_id = str(uuid.uuid4())
        # what the docs leave open: is the activity id's uuid the stream's execution_id?
        activity_uuid = str(uuid.uuid4()) if self.activity_ids_differ else execution_id
        now = _now_text()
        event = "fill" if done else "partial_fill"
        self.activities.append(
            dict(
                payload("http_get_activities_fill.json")[0],
                id=f"{_compact(now)}::{activity_uuid}",
                transaction_time=now,
                type=event,
                price=_dec(price),
                qty=_dec(qty),
                side=order["side"],
                symbol=order["symbol"],
                leaves_qty=_dec(float(order["qty"]) - cum),
                order_id=order_id,
                cum_qty=_dec(cum),
                order_status=order["status"],
            )
        )
        return {
            "stream": "trade_updates",
            "data": {
                "event": event,
                "execution_id": execution_id,
                "timestamp": now,
                "price": _dec(price),
                "qty": _dec(qty),
                "position_qty": _dec(self.positions[order["symbol"]]),
                "order": copy.deepcopy(order),
            },
        }

    async def _send_trade(self, event: str, order: dict[str, Any]) -> None:
        update = {
            "stream": "trade_updates",
            "data": {"event": event, "timestamp": _now_text(), "order": copy.deepcopy(order)},
        }
        await self.send_updates(update)


_OPEN = {"new", "accepted", "pending_new", "partially_filled", "pending_cancel"}


def _when(activity: dict[str, Any]) -> str:
    """A FILL's ``transaction_time``; a non-trade activity's ``date`` (compared as text)."""
    return str(activity.get("transaction_time") or activity.get("date"))
