"""AlpacaClient: the ``VenueClient`` for Alpaca's trading API (the asyncio shell of ``codec``).

REST with the key headers (Alpaca does not sign requests); fills from the ``trade_updates``
stream, opened by ``start`` and kept open in a background task that reconnects and, after a
reconnect, re-reads the FILL activities since shortly before the drop (duplicates are fine:
the broker de-duplicates on ``trade_id``).

Rate limits: ``X-Ratelimit-Remaining: 0`` holds every request until ``X-Ratelimit-Reset``,
and a 429 until its ``Retry-After``. Reads wait such a hold out when it is shorter than
``max_rate_wait_s``; a submit or cancel never waits or retries on its own: it raises
``RateLimitError`` (nothing was sent). Timeouts, dropped connections and 5xx raise
``OutcomeUnknownError``: the caller looks the order up by client id, never resubmits.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from collections.abc import AsyncIterator, Callable, Mapping
from typing import Any

import aiohttp
import orjson
import structlog

from adapters.alpaca.codec import (
    AlpacaAuthError,
    TradeStreamControl,
    alpaca_client_order_id,
    decode_activity,
    decode_order,
    decode_trade_update,
    encode_order,
    rfc3339,
)
from adapters.alpaca.config import AlpacaSettings
from tradeloop.errors import (
    ConfigError,
    ConnectionLostError,
    OrderError,
    OrderRejectedError,
    OutcomeUnknownError,
    RateLimitError,
    VenueProtocolError,
)
from tradeloop.events import OrderStatus
from tradeloop.venue import Execution, VenueOrder, VenueOrderState, VenueSnapshot

__all__ = ["AlpacaClient"]

_DEFAULT_RETRY_S = 3.0  # what alpaca-py waits after a 429 that names no time
_READ_ATTEMPTS = 3
_ACTIVITY_PAGE = 100
_REFILL_MARGIN_NS = 5_000_000_000  # re-read fills from this long before a drop
_OPEN = (OrderStatus.ACCEPTED, OrderStatus.PARTIALLY_FILLED, OrderStatus.UNKNOWN)


class AlpacaClient:
    """Orders, lookups, the account snapshot and fills of one Alpaca account."""

    def __init__(self, settings: AlpacaSettings, *, clock: Callable[[], float] = time.time) -> None:
        self.settings = settings
        self.clock = clock  # wall clock: X-Ratelimit-Reset is a Unix time
        self.stream_connections = 0
        self.rate_limited = 0
        self._session: aiohttp.ClientSession | None = None
        self._hold_until = 0.0
        self._ours: dict[str, str] = {}  # venue client order id → ours
        self._cid_of_order: dict[str, str] = {}  # venue order id → our client order id
        self._fills: asyncio.Queue[Execution | BaseException] = asyncio.Queue()
        self._stream_task: asyncio.Task[None] | None = None
        self._last_frame_ns = 0
        self._log = structlog.get_logger().bind(component="alpaca_client")

    # -- lifecycle ----------------------------------------------------------------------------

    async def start(self) -> None:
        """Check the keys (``GET /v2/account``) and open the trade_updates stream."""
        timeout = aiohttp.ClientTimeout(total=self.settings.request_timeout_s)
        self._session = aiohttp.ClientSession(headers=self.settings.headers, timeout=timeout)
        await self._get("/v2/account")
        ready: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._stream_task = asyncio.create_task(self._stream(ready))
        try:
            await asyncio.wait_for(asyncio.shield(ready), 3 * self.settings.auth_timeout_s)
        except TimeoutError:
            await self.close()
            raise ConnectionLostError(
                f"{self.settings.trade_updates_url}: trade_updates not listening after "
                f"{3 * self.settings.auth_timeout_s:g} s"
            ) from None
        except BaseException:
            await self.close()
            raise

    async def close(self) -> None:
        if self._stream_task is not None:
            self._stream_task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._stream_task
            self._stream_task = None
        if self._session is not None:
            await self._session.close()
            self._session = None

    # -- orders -------------------------------------------------------------------------------

    async def submit(self, order: VenueOrder) -> VenueOrderState:
        """Place ``order``; ``OrderRejectedError`` if refused, ``OutcomeUnknownError`` if unsure."""
        try:
            body = encode_order(order)
        except OrderError as err:
            raise OrderRejectedError(f"not sent: {err}") from err
        cid = order.client_order_id
        self._ours[body["client_order_id"]] = cid
        status, raw = await self._request("POST", "/v2/orders", json=body, read=False)
        where = f"order {cid} ({order.side} {order.qty:g} {order.asset_id})"
        if status in (200, 201):
            return self._order_state(raw)
        message = _message(raw)
        if status == 422 and "client_order_id" in message and "unique" in message:
            existing = await self.order(cid, order.asset_id)  # it was placed before
            if existing is not None:
                self._log.warning("order_already_placed", client_order_id=cid)
                return existing
        if status == 401:
            raise AlpacaAuthError(f"{where}: alpaca answered 401 ({message}); check the keys")
        if 400 <= status < 500:
            raise OrderRejectedError(f"{where}: alpaca refused it ({status}: {message})")
        raise OutcomeUnknownError(
            f"{where}: alpaca answered {status} ({message}); the order may exist: look it up "
            "by client order id, do not send it again"
        )

    async def cancel(self, client_order_id: str, asset_id: str) -> None:
        """Ask to cancel; ``OrderRejectedError`` when there is no open order to cancel."""
        state = await self.order(client_order_id, asset_id)
        if state is None:
            raise OrderRejectedError(f"cancel {client_order_id}: alpaca has no such order")
        if state.status not in _OPEN:
            raise OrderRejectedError(
                f"cancel {client_order_id}: the order is already {state.status.value}"
            )
        path = f"/v2/orders/{state.venue_order_id}"
        status, raw = await self._request("DELETE", path, read=False)
        if status in (200, 204):
            self._log.info("cancel_requested", client_order_id=client_order_id)
            return
        if status in (404, 422):  # filled or cancelled meanwhile: not cancelable
            raise OrderRejectedError(f"cancel {client_order_id}: {status} {_message(raw)}")
        raise OutcomeUnknownError(f"cancel {client_order_id}: alpaca answered {status}")

    async def order(self, client_order_id: str, asset_id: str) -> VenueOrderState | None:
        """The venue's view of one order by client id; None when Alpaca never heard of it."""
        venue_cid = alpaca_client_order_id(client_order_id)
        self._ours[venue_cid] = client_order_id
        status, raw = await self._get(
            "/v2/orders:by_client_order_id", {"client_order_id": venue_cid}, missing_ok=True
        )
        return None if status == 404 else self._order_state(raw)

    async def snapshot(self) -> VenueSnapshot:
        """Cash, signed positions and open orders, as Alpaca sees them."""
        _, account = await self._get("/v2/account")
        _, positions = await self._get("/v2/positions")
        _, orders = await self._get(
            "/v2/orders", {"status": "open", "limit": "500", "direction": "asc"}
        )
        try:
            cash = float(orjson.loads(account)["cash"])
            held = {}
            for p in orjson.loads(positions):
                qty = abs(float(p["qty"]))
                held[str(p["symbol"])] = -qty if p.get("side") == "short" else qty
            open_orders = [self._order_state(orjson.dumps(o)) for o in orjson.loads(orders)]
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError) as err:
            raise VenueProtocolError(f"account snapshot not understood ({err!r})") from err
        return VenueSnapshot(cash, held, open_orders)

    # -- fills --------------------------------------------------------------------------------

    async def executions(self) -> AsyncIterator[Execution]:
        """Fills from trade_updates as they come (reconnects are handled inside)."""
        while True:
            item = await self._fills.get()
            if isinstance(item, BaseException):
                raise item
            yield item

    async def recent_executions(self, since_ns: int) -> list[Execution]:
        """Fills at or after ``since_ns`` from the FILL account activities (oldest first)."""
        params = {
            "after": rfc3339(max(0, since_ns - 1_000_000_000)),  # "after" is exclusive
            "direction": "asc",
            "page_size": str(_ACTIVITY_PAGE),
        }
        out: list[Execution] = []
        while True:
            _, raw = await self._get("/v2/account/activities/FILL", params)
            try:
                page: list[dict[str, Any]] = orjson.loads(raw)
            except orjson.JSONDecodeError as err:
                raise VenueProtocolError(f"FILL activities not understood ({err})") from err
            for activity in page:
                cid = await self._cid_for_order(str(activity.get("order_id")))
                execution = decode_activity(activity, cid, self._ours)
                if execution.ts_ns >= since_ns:
                    out.append(execution)
            if len(page) < _ACTIVITY_PAGE:
                return out
            params["page_token"] = str(page[-1]["id"])

    async def _cid_for_order(self, venue_order_id: str) -> str:
        cid = self._cid_of_order.get(venue_order_id)
        if cid is None:
            _, raw = await self._get(f"/v2/orders/{venue_order_id}")
            cid = self._order_state(raw).client_order_id
        return cid

    async def _stream(self, ready: asyncio.Future[None]) -> None:
        """Keep trade_updates open; fills go to the queue, a fatal error ends it there."""
        attempt = 0
        while True:
            try:
                await self._listen(ready)
            except asyncio.CancelledError:
                raise
            except (ConfigError, VenueProtocolError) as err:
                if not ready.done():
                    ready.set_exception(err)
                self._fills.put_nowait(err)
                return
            except (ConnectionLostError, OutcomeUnknownError, RateLimitError) as err:
                reason = str(err)
            except (aiohttp.ClientError, OSError, TimeoutError) as err:
                reason = self.settings.redact(f"{type(err).__name__}: {err}")
            attempt += 1
            delay = min(30.0, 0.25 * 2 ** (attempt - 1)) * (0.5 + random.random())
            self._log.warning(
                "trade_stream_reconnecting", attempt=attempt, delay_s=round(delay, 3), reason=reason
            )
            await asyncio.sleep(delay)

    async def _listen(self, ready: asyncio.Future[None]) -> None:
        assert self._session is not None, "start() first"
        url, settings = self.settings.trade_updates_url, self.settings
        async with self._session.ws_connect(url, heartbeat=20.0) as ws:
            auth = {"action": "auth", "key": settings.key_id, "secret": settings.secret}
            await ws.send_bytes(orjson.dumps(auth))
            answer = await self._control(ws, "authorization")
            if not answer.ok:
                raise AlpacaAuthError(
                    f"{url}: trade_updates refused the keys ({answer.message}); check "
                    "APCA_API_KEY_ID / APCA_API_SECRET_KEY"
                )
            listen = {"action": "listen", "data": {"streams": ["trade_updates"]}}
            await ws.send_bytes(orjson.dumps(listen))
            await self._control(ws, "listening")
            self.stream_connections += 1
            if self._last_frame_ns:  # a reconnect: what the gap missed comes from REST
                since = self._last_frame_ns - _REFILL_MARGIN_NS
                for execution in await self.recent_executions(since):
                    self._fills.put_nowait(execution)
            self._last_frame_ns = time.time_ns()
            if not ready.done():
                ready.set_result(None)
            self._log.info("trade_stream_listening", connections=self.stream_connections)
            while True:
                frame = await ws.receive()
                if frame.type not in (aiohttp.WSMsgType.TEXT, aiohttp.WSMsgType.BINARY):
                    raise ConnectionLostError(f"{url}: trade_updates closed ({frame.type.name})")
                self._last_frame_ns = time.time_ns()
                event = decode_trade_update(frame.data, self._ours)
                if isinstance(event, Execution):
                    self._fills.put_nowait(event)
                elif isinstance(event, VenueOrderState):
                    self._cid_of_order[event.venue_order_id] = event.client_order_id
                    self._log.debug(
                        "order_update", client_order_id=event.client_order_id, status=event.status
                    )

    async def _control(
        self, ws: aiohttp.ClientWebSocketResponse, stream: str
    ) -> TradeStreamControl:
        async with asyncio.timeout(self.settings.auth_timeout_s):
            while True:
                frame = await ws.receive()
                if frame.type not in (aiohttp.WSMsgType.TEXT, aiohttp.WSMsgType.BINARY):
                    raise ConnectionLostError(f"trade_updates closed while waiting for {stream}")
                event = decode_trade_update(frame.data, self._ours)
                if isinstance(event, TradeStreamControl) and event.stream == stream:
                    return event

    # -- HTTP ---------------------------------------------------------------------------------

    def _order_state(self, raw: bytes) -> VenueOrderState:
        try:
            state = decode_order(orjson.loads(raw), self._ours)
        except orjson.JSONDecodeError as err:
            raise VenueProtocolError(f"order not understood: {raw[:160]!r}") from err
        self._cid_of_order[state.venue_order_id] = state.client_order_id
        return state

    async def _get(
        self, path: str, params: Mapping[str, str] | None = None, *, missing_ok: bool = False
    ) -> tuple[int, bytes]:
        """A read: waits out short rate limits and retries them; other failures raise."""
        for attempt in range(_READ_ATTEMPTS):
            try:
                status, raw = await self._request("GET", path, params=params, read=True)
            except RateLimitError as err:
                if (
                    attempt + 1 == _READ_ATTEMPTS
                    or err.retry_after_s > self.settings.max_rate_wait_s
                ):
                    raise
                await asyncio.sleep(err.retry_after_s)
                continue
            if status == 200 or (status == 404 and missing_ok):
                return status, raw
            if status in (401, 403):
                raise AlpacaAuthError(
                    f"GET {path}: alpaca answered {status} ({_message(raw)}); check "
                    "APCA_API_KEY_ID / APCA_API_SECRET_KEY and that trading_url matches them"
                )
            raise OutcomeUnknownError(f"GET {path}: alpaca answered {status} ({_message(raw)})")
        raise AssertionError("unreachable")

    async def _request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, str] | None = None,
        json: Any = None,
        read: bool,
    ) -> tuple[int, bytes]:
        """One HTTP exchange; ``RateLimitError`` while a limit holds (nothing is sent then)."""
        if self._session is None:
            raise ConnectionLostError("AlpacaClient: start() was not called (or close() was)")
        wait_s = self._hold_until - self.clock()
        if wait_s > 0:
            if read and wait_s <= self.settings.max_rate_wait_s:
                await asyncio.sleep(wait_s)
            else:
                raise RateLimitError(
                    f"{method} {path}: alpaca's rate limit holds for {wait_s:.1f} s more", wait_s
                )
        url = self.settings.trading_url + path
        data = None if json is None else orjson.dumps(json)
        headers = None if json is None else {"Content-Type": "application/json"}
        try:
            async with self._session.request(
                method, url, params=params, data=data, headers=headers
            ) as response:
                raw = await response.read()
                status = response.status
                self._note_limits(response.headers, status)
        except (aiohttp.ClientError, OSError, TimeoutError) as err:
            reason = self.settings.redact(f"{type(err).__name__}: {err}")
            raise OutcomeUnknownError(f"{method} {path}: no answer ({reason})") from err
        if status == 429:
            self.rate_limited += 1
            wait_s = max(0.0, self._hold_until - self.clock())
            self._log.warning("rate_limited", method=method, path=path, retry_after_s=wait_s)
            raise RateLimitError(f"{method} {path}: alpaca answered 429 (rate limit)", wait_s)
        return status, raw

    def _note_limits(self, headers: Mapping[str, str], status: int) -> None:
        now = self.clock()
        reset = _number(headers.get("X-Ratelimit-Reset"))
        if status == 429:
            retry = _number(headers.get("Retry-After"))
            if retry is None:
                retry = reset - now if reset is not None and reset > now else _DEFAULT_RETRY_S
            self._hold_until = max(self._hold_until, now + retry)
        elif headers.get("X-Ratelimit-Remaining") == "0" and reset is not None and reset > now:
            self._hold_until = max(self._hold_until, reset)


def _number(text: str | None) -> float | None:
    try:
        return None if text is None else float(text)
    except ValueError:
        return None


def _message(raw: bytes) -> str:
    """Alpaca's ``{"code":..,"message":..}`` error text (or the raw body, shortened)."""
    with contextlib.suppress(orjson.JSONDecodeError, AttributeError, TypeError):
        return str(orjson.loads(raw).get("message", ""))[:300]
    return raw[:300].decode(errors="replace")
