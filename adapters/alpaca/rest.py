"""AlpacaRest: one HTTP exchange with Alpaca's trading API, with the error map applied.

The keys go in plain headers (Alpaca does not sign requests). Every answer goes through
``errors.classify_http`` here and nowhere else: a success returns the body, a lookup's 404
returns None, anything else raises the typed error of its row.

Rate limits: ``X-Ratelimit-Remaining: 0`` holds every request until ``X-Ratelimit-Reset``,
and a 429 until its ``Retry-After`` (or the reset time, or 3 s). Reads wait such a hold out
when it is shorter than ``max_rate_wait_s`` and retry transient failures (5xx, no answer) a
few times with a short backoff; a submit or cancel never waits or retries on its own: it
raises (``RateLimitError``: nothing was sent; ``OutcomeUnknownError``: look it up).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Mapping
from typing import Any

import aiohttp
import orjson
import structlog

from adapters.alpaca.config import AlpacaSettings
from adapters.alpaca.errors import (
    Operation,
    Outcome,
    classify_http,
    http_error,
    retry_after_s,
)
from tradeloop.errors import ConnectionLostError, OutcomeUnknownError, RateLimitError

__all__ = ["AlpacaRest", "error_message"]

_READ_ATTEMPTS = 3
_READ_BACKOFF_S = 0.2  # doubles per attempt


class AlpacaRest:
    """The trading API's HTTP side of one account (opened by ``open``, released by ``close``)."""

    def __init__(self, settings: AlpacaSettings, clock: Callable[[], float]) -> None:
        self.settings = settings
        self.clock = clock  # wall clock: X-Ratelimit-Reset is a Unix time
        self.rate_limited = 0
        self.retried = 0
        self._session: aiohttp.ClientSession | None = None
        self._hold_until = 0.0
        self._log = structlog.get_logger().bind(component="alpaca_rest")

    @property
    def session(self) -> aiohttp.ClientSession:
        if self._session is None:
            raise ConnectionLostError("AlpacaClient: start() was not called (or close() was)")
        return self._session

    def open(self) -> None:
        timeout = aiohttp.ClientTimeout(total=self.settings.request_timeout_s)
        self._session = aiohttp.ClientSession(headers=self.settings.headers, timeout=timeout)

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def read(
        self, operation: Operation, path: str, params: Mapping[str, str] | None = None
    ) -> bytes | None:
        """A GET: retried while the map says RETRY (and short rate limits are waited out)."""
        for attempt in range(_READ_ATTEMPTS):
            last = attempt + 1 == _READ_ATTEMPTS
            try:
                return await self.send(operation, "GET", path, params=params)
            except RateLimitError as err:
                if last or err.retry_after_s > self.settings.max_rate_wait_s:
                    raise
                await asyncio.sleep(err.retry_after_s)
            except _TransientError as err:
                if last:
                    raise OutcomeUnknownError(
                        f"{err}; gave up after {_READ_ATTEMPTS} tries"
                    ) from err
                self.retried += 1
                self._log.warning("read_retry", path=path, attempt=attempt + 1, reason=str(err))
                await asyncio.sleep(_READ_BACKOFF_S * 2**attempt)
        raise AssertionError("unreachable")

    async def send(
        self,
        operation: Operation,
        method: str,
        path: str,
        *,
        params: Mapping[str, str] | None = None,
        json: Any = None,
    ) -> bytes | None:
        """One exchange; the body of a success, None for a lookup's 404, else the row's error."""
        where = f"{method} {path}"
        wait_s = self._hold_until - self.clock()
        if wait_s > 0:
            if method == "GET" and wait_s <= self.settings.max_rate_wait_s:
                await asyncio.sleep(wait_s)
            else:
                raise RateLimitError(
                    f"{where}: alpaca's rate limit holds for {wait_s:.1f} s more (nothing sent)",
                    wait_s,
                )
        data = None if json is None else orjson.dumps(json)
        headers = None if json is None else {"Content-Type": "application/json"}
        try:
            async with self.session.request(
                method, self.settings.trading_url + path, params=params, data=data, headers=headers
            ) as response:
                raw = await response.read()
                status = response.status
                self._note_limits(response.headers, status)
        except (aiohttp.ClientError, OSError, TimeoutError) as err:
            reason = self.settings.redact(f"{type(err).__name__}: {err}")
            if operation in (Operation.SUBMIT, Operation.CANCEL):
                raise OutcomeUnknownError(
                    f"{where}: no answer ({reason}); it may have taken effect: look it up"
                ) from err
            raise _TransientError(f"{where}: no answer ({reason})") from err
        message = "" if 200 <= status < 300 else error_message(raw)
        outcome = classify_http(operation, status, message)
        if outcome is None:
            return raw
        if outcome is Outcome.NOT_FOUND:
            return None
        if outcome is Outcome.RATE_LIMITED:
            self.rate_limited += 1
            wait_s = max(0.0, self._hold_until - self.clock())
            self._log.warning("rate_limited", method=method, path=path, retry_after_s=wait_s)
        if outcome is Outcome.RETRY:
            raise _TransientError(f"{where}: alpaca answered {status} ({message})")
        raise http_error(operation, where, status, message, wait_s)

    def note_limits(self, headers: Mapping[str, str], status: int) -> None:
        """What a response's rate-limit headers say about when the next request may go."""
        self._note_limits(headers, status)

    def _note_limits(self, headers: Mapping[str, str], status: int) -> None:
        now = self.clock()
        if status == 429:
            self._hold_until = max(self._hold_until, now + retry_after_s(headers, now))
            return
        reset = headers.get("X-Ratelimit-Reset")
        if headers.get("X-Ratelimit-Remaining") == "0" and reset is not None:
            with contextlib.suppress(ValueError):
                self._hold_until = max(self._hold_until, float(reset))


class _TransientError(OutcomeUnknownError):
    """A read that failed in a way worth trying again (5xx, no answer)."""


def error_message(raw: bytes) -> str:
    """Alpaca's ``{"code":..,"message":..}`` error text (or the raw body, shortened)."""
    with contextlib.suppress(orjson.JSONDecodeError, AttributeError, TypeError):
        return str(orjson.loads(raw).get("message", ""))[:300]
    return raw[:300].decode(errors="replace")
