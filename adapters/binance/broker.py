"""BinanceClient: orders, lookups, the account and fills over Binance spot's REST and
WebSocket APIs (the asyncio shell around ``codec``; the ``VenueClient`` of tradeloop.venue).

Rules it keeps: a submit is sent once (timeouts, 5xx and dropped connections are
``OutcomeUnknownError``, resolved by ``order(cid)``); a 429/418 blocks every request until
its ``Retry-After`` has passed (``RateLimitError``, never a retry storm); the only retry is
one resend after a -1021 clock-skew refusal, following a resync of the server-time offset.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Mapping
from typing import Any

import aiohttp
import orjson
import structlog
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, WebSocketException
from yarl import URL

from adapters.binance.codec import (
    ClientIds,
    ClockSkewError,
    UnknownOrderError,
    decode_ws_api_frame,
    error_for,
    execution_from_report,
    execution_from_trade,
    order_params,
    order_state,
    query_string,
    server_offset_ms,
    signed_query,
    snapshot_from,
    subscription_id,
    user_stream_subscription,
)
from adapters.binance.config import BinanceSettings
from tradeloop.errors import (
    ConnectionLostError,
    OrderRejectedError,
    OutcomeUnknownError,
    RateLimitError,
    VenueProtocolError,
)
from tradeloop.venue import Execution, VenueOrder, VenueOrderState, VenueSnapshot

__all__ = ["BinanceClient"]

_MS = 1_000_000
_WEIGHT_LIMIT_1M = 6000  # REQUEST_WEIGHT per minute per IP (exchangeInfo's default)
_BACKFILL_MARGIN_MS = 5_000  # fills are re-fetched from a little before a dropped connection


class BinanceClient:
    """One Binance spot account, trading ``settings.symbols`` against ``quote_asset``."""

    def __init__(self, settings: BinanceSettings) -> None:
        self.settings = settings
        self._key, self._secret = settings.require_credentials()
        self.ids = ClientIds()
        self.offset_ms = 0  # server clock minus ours
        self.used_weight_1m = 0  # the last X-MBX-USED-WEIGHT-1M the server reported
        self.requests = 0  # requests that went out (a blocked one does not count)
        self._blocked_until = 0.0  # time.monotonic() before which nothing is sent
        self._session: aiohttp.ClientSession | None = None
        self._order_ids: dict[tuple[str, int], str] = {}  # (symbol, orderId) → our cid
        self._log = structlog.get_logger().bind(venue="binance", component="client")

    def __repr__(self) -> str:
        return f"BinanceClient(rest_url={self.settings.rest_url!r}, key=***)"

    # ------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        if self._session is None:
            timeout = aiohttp.ClientTimeout(total=self.settings.request_timeout_s)
            self._session = aiohttp.ClientSession(timeout=timeout)
        await self.sync_time()

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def sync_time(self) -> None:
        """Measure the server-time offset (GET /api/v3/time) that signed timestamps add."""
        sent_ms = time.time_ns() // _MS
        payload = await self._request("GET", "/api/v3/time", {}, signed=False, what="time")
        received_ms = time.time_ns() // _MS
        server_ms = payload.get("serverTime") if isinstance(payload, dict) else None
        if type(server_ms) is not int:
            raise VenueProtocolError(f"binance GET /api/v3/time: no serverTime in {payload!r}")
        self.offset_ms = server_offset_ms(server_ms, sent_ms, received_ms)
        self._log.info("time_synced", offset_ms=self.offset_ms)

    # ------------------------------------------------------------ orders

    async def submit(self, order: VenueOrder) -> VenueOrderState:
        venue_id = self.ids.to_venue(order.client_order_id)
        params = order_params(order, venue_id)
        what = f"binance submit {order.client_order_id} {order.side} {order.qty:g} {order.asset_id}"
        try:
            payload = await self._signed("POST", "/api/v3/order", params, what, order_request=True)
        except ClockSkewError as err:  # refused twice, so it was never accepted
            raise OrderRejectedError(str(err)) from err
        except UnknownOrderError as err:
            raise OrderRejectedError(str(err)) from err
        try:
            state = order_state(payload, self.ids)
        except VenueProtocolError as err:
            # accepted (HTTP 200) but unreadable: it exists in some state we cannot tell
            raise OutcomeUnknownError(f"{what}: accepted, answer unreadable ({err})") from err
        self._remember(state)
        self._log.info(
            "order_submitted",
            client_order_id=order.client_order_id,
            venue_order_id=state.venue_order_id,
            status=str(state.status),
        )
        return state

    async def cancel(self, client_order_id: str, asset_id: str) -> None:
        params = {"symbol": asset_id, "origClientOrderId": self.ids.to_venue(client_order_id)}
        what = f"binance cancel {client_order_id} {asset_id}"
        try:
            await self._signed("DELETE", "/api/v3/order", params, what, order_request=True)
        except (UnknownOrderError, ClockSkewError) as err:
            raise OrderRejectedError(f"{err} (no open order to cancel: look it up)") from err
        self._log.info("order_cancel_sent", client_order_id=client_order_id)

    async def order(self, client_order_id: str, asset_id: str) -> VenueOrderState | None:
        """The venue's view of one order by client order id; None if Binance never had it."""
        params = {"symbol": asset_id, "origClientOrderId": self.ids.to_venue(client_order_id)}
        what = f"binance order {client_order_id} {asset_id}"
        try:
            payload = await self._signed("GET", "/api/v3/order", params, what)
        except UnknownOrderError:
            return None
        state = order_state(payload, self.ids)
        self._remember(state)
        return state

    async def snapshot(self) -> VenueSnapshot:
        account = await self._signed("GET", "/api/v3/account", {}, "binance account")
        open_orders: list[Any] = []
        for symbol in self.settings.symbols:
            rows = await self._signed(
                "GET", "/api/v3/openOrders", {"symbol": symbol}, f"binance openOrders {symbol}"
            )
            if not isinstance(rows, list):
                raise VenueProtocolError(f"binance openOrders {symbol}: not a list: {rows!r}")
            open_orders += rows
        snapshot = snapshot_from(
            account, open_orders, self.settings.symbols, self.settings.quote_asset, self.ids
        )
        for state in snapshot.open_orders:
            self._remember(state)
        return snapshot

    # ------------------------------------------------------------ fills

    async def recent_executions(self, since_ns: int) -> list[Execution]:
        """Fills from ``since_ns`` on (GET /api/v3/myTrades per symbol, paged by trade id)."""
        since_ms = since_ns // _MS
        executions: list[Execution] = []
        for symbol in self.settings.symbols:
            rows = await self._my_trades(symbol, since_ms)
            await self._learn_client_ids(symbol, rows)
            base = self.settings.base_asset(symbol)
            for row in rows:
                key = (symbol, row.get("orderId"))
                cid = self._order_ids.get(key) if isinstance(key[1], int) else None  # type: ignore[arg-type]
                if cid is None:
                    raise VenueProtocolError(
                        f"binance myTrades {symbol}#{row.get('id')}: order {row.get('orderId')} "
                        "has no client order id in allOrders"
                    )
                executions.append(execution_from_trade(row, cid, self.settings.quote_asset, base))
        executions.sort(key=lambda e: e.ts_ns)
        return executions

    async def _my_trades(self, symbol: str, since_ms: int) -> list[dict[str, Any]]:
        params: dict[str, Any] = {"symbol": symbol, "startTime": since_ms, "limit": 1000}
        rows: list[dict[str, Any]] = []
        while True:
            what = f"binance myTrades {symbol}"
            page = await self._signed("GET", "/api/v3/myTrades", params, what)
            if not isinstance(page, list):
                raise VenueProtocolError(f"binance myTrades {symbol}: not a list: {page!r}")
            rows += [r for r in page if isinstance(r, dict) and r.get("time", 0) >= since_ms]
            if len(page) < 1000:
                return rows
            # the next page by trade id (fromId cannot be combined with startTime)
            params = {"symbol": symbol, "fromId": int(page[-1]["id"]) + 1, "limit": 1000}

    async def _learn_client_ids(self, symbol: str, rows: list[dict[str, Any]]) -> None:
        """myTrades rows carry orderId only: look unknown orders up in allOrders."""
        unknown = {
            row["orderId"]
            for row in rows
            if type(row.get("orderId")) is int and (symbol, row["orderId"]) not in self._order_ids
        }
        if not unknown:
            return
        params = {"symbol": symbol, "orderId": min(unknown), "limit": 1000}
        what = f"binance allOrders {symbol}"
        orders = await self._signed("GET", "/api/v3/allOrders", params, what)
        if not isinstance(orders, list):
            raise VenueProtocolError(f"binance allOrders {symbol}: not a list: {orders!r}")
        for payload in orders:
            self._remember(order_state(payload, self.ids))

    async def executions(self) -> AsyncIterator[Execution]:
        """Fills from the user data stream (WebSocket API), reconnecting on its own.

        After every reconnection, the fills since the dropped connection opened are fetched
        again over REST and yielded too: nothing is lost, duplicates are the broker's to drop.
        """
        attempt = 0
        backfill_from_ms: int | None = None
        while True:
            subscribed_ms = self._timestamp_ms()
            try:
                async with connect(self.settings.ws_api_url, max_size=2**20) as ws:
                    await self._subscribe(ws)
                    attempt = 0
                    if backfill_from_ms is not None:
                        for execution in await self.recent_executions(backfill_from_ms * _MS):
                            yield execution
                    backfill_from_ms = subscribed_ms - _BACKFILL_MARGIN_MS
                    async for frame in ws:
                        fill = self._execution(frame)
                        if fill is not None:
                            yield fill
                wait_s, reason = 0.0, "closed by the server"
            except (ConnectionClosed, ConnectionLostError, OSError, WebSocketException) as err:
                wait_s, reason = 0.0, repr(err)  # OSError covers timeouts and refused connects
            except RateLimitError as err:  # from the REST backfill: wait as told
                wait_s, reason = err.retry_after_s, str(err)
            if backfill_from_ms is None:
                backfill_from_ms = subscribed_ms - _BACKFILL_MARGIN_MS
            attempt += 1
            delay_s = min(15.0, self.settings.reconnect_backoff_s * 2 ** (attempt - 1))
            delay_s = max(delay_s, wait_s)
            self._log.warning(
                "executions_reconnecting", attempt=attempt, delay_s=delay_s, reason=reason
            )
            await asyncio.sleep(delay_s)

    async def _subscribe(self, ws: ClientConnection) -> None:
        request_id = uuid.uuid4().hex
        await ws.send(
            user_stream_subscription(
                request_id,
                self._key,
                self._secret,
                timestamp_ms=self._timestamp_ms(),
                recv_window_ms=self.settings.recv_window_ms,
            )
        )
        async with asyncio.timeout(self.settings.request_timeout_s):
            while True:
                raw = decode_ws_api_frame(await ws.recv())
                if raw.get("id") == request_id:
                    sub = subscription_id(raw)
                    self._log.info("executions_subscribed", subscription_id=sub)
                    return

    def _execution(self, frame: str | bytes) -> Execution | None:
        try:
            raw = decode_ws_api_frame(frame)
            event = raw.get("event")
            if not isinstance(event, dict):
                return None
            if event.get("e") == "eventStreamTerminated":
                raise ConnectionLostError("binance user data stream terminated by the server")
            symbol = event.get("s")
            if not isinstance(symbol, str) or symbol not in self.settings.symbols:
                return None
            return execution_from_report(
                event, self.ids, self.settings.quote_asset, self.settings.base_asset(symbol)
            )
        except VenueProtocolError as err:
            self._log.warning("execution_report_skipped", reason=str(err))
            return None

    # ------------------------------------------------------------ requests

    def _timestamp_ms(self) -> int:
        return time.time_ns() // _MS + self.offset_ms

    def _remember(self, state: VenueOrderState) -> None:
        if state.venue_order_id.isdigit():
            key = (state.asset_id, int(state.venue_order_id))
            self._order_ids[key] = state.client_order_id

    async def _signed(
        self,
        method: str,
        path: str,
        params: Mapping[str, Any],
        what: str,
        *,
        order_request: bool = False,
    ) -> Any:
        try:
            return await self._request(
                method, path, params, signed=True, what=what, order_request=order_request
            )
        except ClockSkewError:
            # -1021: Binance refused the request before acting on it (our timestamp was
            # outside recvWindow), so nothing was created: one resend after a resync is safe,
            # even for a submit. A second -1021 propagates.
            self._log.warning("clock_skew_resync", request=what, offset_ms=self.offset_ms)
            await self.sync_time()
            return await self._request(
                method, path, params, signed=True, what=what, order_request=order_request
            )

    async def _request(
        self,
        method: str,
        path: str,
        params: Mapping[str, Any],
        *,
        signed: bool,
        what: str,
        order_request: bool = False,
    ) -> Any:
        wait_s = self._blocked_until - time.monotonic()
        if wait_s > 0:
            raise RateLimitError(
                f"{what}: not sent, Binance asked us to wait (retry after {wait_s:.1f} s)",
                retry_after_s=wait_s,
            )
        if self._session is None:
            raise ConnectionLostError(f"{what}: the client is not started (call start())")
        if signed:
            query = signed_query(
                params,
                self._secret,
                timestamp_ms=self._timestamp_ms(),
                recv_window_ms=self.settings.recv_window_ms,
            )
            headers = {"X-MBX-APIKEY": self._key}
        else:
            query, headers = query_string(params), {}
        # encoded=True: the bytes sent are the bytes signed
        url = URL(f"{self.settings.rest_url}{path}" + (f"?{query}" if query else ""), encoded=True)
        self.requests += 1
        try:
            async with self._session.request(method, url, headers=headers) as response:
                body = await response.read()
                status = response.status
                used = response.headers.get("X-MBX-USED-WEIGHT-1M")
                retry_after = response.headers.get("Retry-After")
        except (aiohttp.ClientError, TimeoutError) as err:
            failure = f"{what}: {method} {path} failed ({type(err).__name__})"
            if order_request:
                raise OutcomeUnknownError(f"{failure}: the order may exist; look it up") from err
            raise ConnectionLostError(failure) from err
        self._note_weight(used)
        if status == 200:
            try:
                return orjson.loads(body)
            except orjson.JSONDecodeError as err:
                if order_request:
                    raise OutcomeUnknownError(f"{what}: HTTP 200 with no JSON body") from err
                raise VenueProtocolError(f"{what}: HTTP 200 with no JSON body") from err
        error = error_for(
            status, body, what=what, retry_after=retry_after, order_request=order_request
        )
        if isinstance(error, RateLimitError):
            self._blocked_until = time.monotonic() + error.retry_after_s
            self._log.warning("rate_limited", status=status, retry_after_s=error.retry_after_s)
        elif isinstance(error, OutcomeUnknownError) and not order_request:
            raise ConnectionLostError(str(error))
        raise error

    def _note_weight(self, header: str | None) -> None:
        if header is None or not header.isdigit():
            return
        self.used_weight_1m = int(header)
        if self.used_weight_1m > 0.8 * _WEIGHT_LIMIT_1M:
            self._log.warning("rate_limit_weight_high", used_weight_1m=self.used_weight_1m)
