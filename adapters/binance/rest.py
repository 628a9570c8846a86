"""BinanceRest: one signed REST session to Binance spot (the asyncio shell around ``codec`` and
the error map in ``errors``).

Rules it keeps: every answer that is not HTTP 200 goes through ``errors.error_for`` (one map);
a request that could not complete is ``OutcomeUnknownError`` when it placed or cancelled an
order and ``ConnectionLostError`` otherwise; a 429/418 blocks every request until its
``Retry-After`` has passed (``RateLimitError``, never a retry storm); the only resend is one
after a -1021 clock-skew refusal (Binance refused before acting), following a resync of the
server-time offset from GET /api/v3/time.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

import aiohttp
import orjson
import structlog
from yarl import URL

from adapters.binance.codec import query_string, server_offset_ms, signed_query
from adapters.binance.config import BinanceSettings
from adapters.binance.errors import ClockSkewError, Request, error_for
from tradeloop.errors import (
    ConnectionLostError,
    OrderRejectedError,
    OutcomeUnknownError,
    RateLimitError,
    VenueProtocolError,
)

__all__ = ["BinanceRest"]

_MS = 1_000_000
_WEIGHT_LIMIT_1M = 6000  # REQUEST_WEIGHT per minute per IP (exchangeInfo's default)


class BinanceRest:
    """Requests to ``settings.rest_url``, signed with the account's HMAC key."""

    def __init__(self, settings: BinanceSettings, key: str, secret: str) -> None:
        self.settings = settings
        self._key, self._secret = key, secret
        self.offset_ms = 0  # server clock minus ours
        self.used_weight_1m = 0  # the last X-MBX-USED-WEIGHT-1M the server reported
        self.requests = 0  # requests that went out (a blocked one does not count)
        self._blocked_until = 0.0  # time.monotonic() before which nothing is sent
        self._session: aiohttp.ClientSession | None = None
        self._log = structlog.get_logger().bind(venue="binance", component="rest")

    def __repr__(self) -> str:
        return f"BinanceRest(rest_url={self.settings.rest_url!r}, key=***)"

    async def start(self) -> None:
        if self._session is None:
            timeout = aiohttp.ClientTimeout(total=self.settings.request_timeout_s)
            self._session = aiohttp.ClientSession(timeout=timeout)
        await self.sync_time()

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    def timestamp_ms(self) -> int:
        """Now on the server's clock (ours plus the measured offset)."""
        return time.time_ns() // _MS + self.offset_ms

    async def sync_time(self) -> None:
        """Measure the server-time offset (GET /api/v3/time) that signed timestamps add."""
        sent_ms = time.time_ns() // _MS
        payload = await self.call("GET", "/api/v3/time", {}, what="binance time", signed=False)
        received_ms = time.time_ns() // _MS
        server_ms = payload.get("serverTime") if isinstance(payload, dict) else None
        if type(server_ms) is not int:
            raise VenueProtocolError(f"binance GET /api/v3/time: no serverTime in {payload!r}")
        self.offset_ms = server_offset_ms(server_ms, sent_ms, received_ms)
        self._log.info("time_synced", offset_ms=self.offset_ms)

    async def call(
        self,
        method: str,
        path: str,
        params: Mapping[str, Any],
        *,
        what: str,
        signed: bool = True,
        request: Request = "read",
    ) -> Any:
        """One request; the decoded JSON of its HTTP 200 answer, or the error it means."""
        try:
            return await self._once(method, path, params, signed, what, request)
        except ClockSkewError:
            if not signed:
                raise
            # -1021: Binance refused the request before acting on it (our timestamp was
            # outside recvWindow), so nothing was created: one resend after a resync is safe,
            # even for a submit. A second -1021 propagates.
            self._log.warning("clock_skew_resync", request=what, offset_ms=self.offset_ms)
            await self.sync_time()
            try:
                return await self._once(method, path, params, signed, what, request)
            except ClockSkewError as again:
                raise _refused_twice(again, request) from again

    async def _once(
        self,
        method: str,
        path: str,
        params: Mapping[str, Any],
        signed: bool,
        what: str,
        request: Request,
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
                timestamp_ms=self.timestamp_ms(),
                recv_window_ms=self.settings.recv_window_ms,
            )
            headers = {"X-MBX-APIKEY": self._key}
        else:
            query, headers = query_string(params), {}
        # encoded=True: the bytes sent are the bytes signed
        url = URL(f"{self.settings.rest_url}{path}" + (f"?{query}" if query else ""), encoded=True)
        ordering = request in ("submit", "cancel")
        self.requests += 1
        try:
            async with self._session.request(method, url, headers=headers) as response:
                body = await response.read()
                status = response.status
                used = response.headers.get("X-MBX-USED-WEIGHT-1M")
                retry_after = response.headers.get("Retry-After")
        except (aiohttp.ClientError, TimeoutError) as err:
            failure = f"{what}: {method} {path} failed ({type(err).__name__})"
            if ordering:
                raise OutcomeUnknownError(f"{failure}: the order may exist; look it up") from err
            raise ConnectionLostError(failure) from err
        self._note_weight(used)
        if status == 200:
            try:
                return orjson.loads(body)
            except orjson.JSONDecodeError as err:
                if ordering:
                    raise OutcomeUnknownError(f"{what}: HTTP 200 with no JSON body") from err
                raise VenueProtocolError(f"{what}: HTTP 200 with no JSON body") from err
        error = error_for(status, body, what=what, retry_after=retry_after, request=request)
        if isinstance(error, RateLimitError):
            self._blocked_until = time.monotonic() + error.retry_after_s
            self._log.warning("rate_limited", status=status, retry_after_s=error.retry_after_s)
        raise error

    def _note_weight(self, header: str | None) -> None:
        if header is None or not header.isdigit():
            return
        self.used_weight_1m = int(header)
        if self.used_weight_1m > 0.8 * _WEIGHT_LIMIT_1M:
            self._log.warning("rate_limit_weight_high", used_weight_1m=self.used_weight_1m)


def _refused_twice(err: ClockSkewError, request: Request) -> Exception:
    """-1021 after a resync: still refused before acting. A submit did not happen (rejected);
    a cancel can be sent again later (unknown); anything else is retried later."""
    text = f"{err} (refused again after a resync: check this machine's clock, e.g. NTP)"
    if request == "submit":
        return OrderRejectedError(text)
    if request == "cancel":
        return OutcomeUnknownError(text)
    return ConnectionLostError(text)
