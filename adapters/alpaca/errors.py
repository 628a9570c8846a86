"""Alpaca's error map: every documented HTTP answer, data-stream error code and trade-stream
error frame → one of five outcomes, and the typed error that outcome raises. Pure: no I/O.

The outcomes (``Outcome``) are what the client does about an answer:

- ``RETRY``: transient; a read is tried again, a stream reconnects (``ConnectionLostError``);
- ``UNKNOWN``: a request that may have taken effect (``OutcomeUnknownError``: look it up);
- ``REJECTED``: the venue refused it, nothing exists (``OrderRejectedError``);
- ``RATE_LIMITED``: wait ``retry_after_s`` (``RateLimitError``), nothing was executed;
- ``FATAL_CONFIG``: keys, plan or account settings that no retry fixes (a ``ConfigError``).

Two answers are neither: ``NOT_FOUND`` (a lookup by client id: ``None``, "not seen yet", which
the core resolves with backoff) and ``EXISTS`` (422 "client_order_id must be unique": the
order exists, look it up). The table with the doc page of each row is in ``README.md``; this
module is the one place the client reads it from.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping

from tradeloop.errors import (
    AdapterError,
    ConfigError,
    ConnectionLostError,
    DuplicateOrderError,
    OrderRejectedError,
    OutcomeUnknownError,
    RateLimitError,
    VenueProtocolError,
)

__all__ = [
    "AUTH_HINT",
    "AlpacaAuthError",
    "AuthTimeoutError",
    "ClientIdExistsError",
    "ConnectionLimitError",
    "Operation",
    "Outcome",
    "SubscriptionLimitError",
    "classify_http",
    "http_error",
    "retry_after_s",
    "stream_error",
    "trade_stream_error",
]

DEFAULT_RETRY_S = 3.0  # what alpaca-py waits after a 429 that names no time


class ConnectionLimitError(ConnectionLostError):
    """406: another connection to this feed is open on the account; back off for long."""


class AuthTimeoutError(ConnectionLostError):
    """404: the socket was not authenticated in time (the venue closes it)."""


class ClientIdExistsError(DuplicateOrderError):
    """422 "client_order_id must be unique": the order exists; look it up, never resend (the
    core's ``DuplicateOrderError``: ``LiveBroker`` looks it up until it appears)."""


class AlpacaAuthError(ConfigError):
    """402 (or an unauthorized trading stream, REST 401/403 on a read): the keys do not work."""


class SubscriptionLimitError(ConfigError):
    """405/408/409: the plan or the account does not allow this feed or this many symbols."""


AUTH_HINT = (
    "Fix: check APCA_API_KEY_ID / APCA_API_SECRET_KEY (paper and live accounts have separate "
    "keys; the paper keys go with https://paper-api.alpaca.markets)"
)


class Outcome(enum.Enum):
    RETRY = "retry"
    UNKNOWN = "unknown"
    REJECTED = "rejected"
    RATE_LIMITED = "rate-limited"
    FATAL_CONFIG = "fatal-config"
    NOT_FOUND = "not found"
    EXISTS = "exists: look it up"


class Operation(enum.Enum):
    """What was asked: the same status means different things for each."""

    SUBMIT = "submit"  # POST /v2/orders
    CANCEL = "cancel"  # DELETE /v2/orders/{id}
    LOOKUP = "lookup"  # GET /v2/orders:by_client_order_id, GET /v2/orders/{id}
    ASSET = "asset"  # GET /v2/assets/{symbol}
    READ = "read"  # account, positions, orders, activities, bars


def classify_http(operation: Operation, status: int, message: str) -> Outcome | None:
    """The outcome of one HTTP answer (None: success)."""
    if 200 <= status < 300:
        return None
    if status == 429:
        return Outcome.RATE_LIMITED
    if status == 401:
        return Outcome.FATAL_CONFIG
    if status >= 500 or status == 408:
        return Outcome.UNKNOWN if operation is Operation.SUBMIT else Outcome.RETRY
    if operation is Operation.SUBMIT:
        if status == 422 and "client_order_id" in message and "unique" in message:
            return Outcome.EXISTS
        return Outcome.REJECTED  # 400 bad request, 403 buying power, 404, 422 invalid
    if operation is Operation.CANCEL:
        return Outcome.REJECTED  # 404 no such order, 422 no longer cancelable
    if status == 404 and operation in (Operation.LOOKUP, Operation.ASSET):
        return Outcome.NOT_FOUND
    if status == 403:
        return Outcome.FATAL_CONFIG  # the keys lack the permission (or the account is blocked)
    return Outcome.FATAL_CONFIG if operation is Operation.ASSET else Outcome.RETRY


def retry_after_s(headers: Mapping[str, str], now_s: float) -> float:
    """How long a 429 asks us to wait: ``Retry-After`` (seconds), else ``X-Ratelimit-Reset``
    (a Unix time), else alpaca-py's 3 s."""
    retry = _number(headers.get("Retry-After"))
    if retry is not None and retry >= 0:
        return retry
    reset = _number(headers.get("X-Ratelimit-Reset"))
    if reset is not None and reset > now_s:
        return reset - now_s
    return DEFAULT_RETRY_S


def http_error(
    operation: Operation, where: str, status: int, message: str, wait_s: float = 0.0
) -> AdapterError | ConfigError:
    """The typed error for an answer ``classify_http`` did not call a success."""
    outcome = classify_http(operation, status, message)
    said = f"{where}: alpaca answered {status} ({message})"
    if outcome is Outcome.RATE_LIMITED:
        return RateLimitError(f"{said}; nothing was executed, wait {wait_s:.1f} s", wait_s)
    if outcome is Outcome.FATAL_CONFIG:
        if status == 404:  # an asset the venue does not list
            return ConfigError(f"{said}. Fix: remove the symbol from [venue] symbols")
        return AlpacaAuthError(f"{said}. {AUTH_HINT}, and that trading_url matches them")
    if outcome is Outcome.UNKNOWN:
        return OutcomeUnknownError(
            f"{said}; the order may exist: look it up by client order id, do not send it again"
        )
    if outcome is Outcome.EXISTS:
        return ClientIdExistsError(
            f"{said}: an order with this client id exists (it was placed before); it may not "
            "be visible yet: look it up by client order id, do not send it again"
        )
    if outcome is Outcome.REJECTED:
        return OrderRejectedError(f"{where}: alpaca refused it ({status}: {message})")
    return OutcomeUnknownError(f"{said}; no usable answer, ask again")


# -- the market data stream ---------------------------------------------------------------------


def stream_error(code: int, msg: str) -> AdapterError | ConfigError:
    """The error for a data stream ``{"T":"error"}`` message (fatal ones are ConfigErrors)."""
    where = f"alpaca data stream error {code} ({msg})"
    if code == 406:
        return ConnectionLimitError(
            f"{where}: another connection to this feed is open on the account (one per feed "
            "on most plans); backing off before reconnecting. Fix: stop the other client"
        )
    if code == 402:
        return AlpacaAuthError(f"{where}. {AUTH_HINT}")
    if code == 404:
        return AuthTimeoutError(f"{where}: authentication took too long; reconnecting")
    if code == 405:
        return SubscriptionLimitError(f"{where}. Fix: fewer symbols, or a plan that allows more")
    if code == 408:
        return SubscriptionLimitError(
            f"{where}: the account does not have the v2 stream enabled (permanent). Fix: enable "
            "market data v2 for the account in the Alpaca dashboard"
        )
    if code == 409:
        return SubscriptionLimitError(
            f'{where}: the plan does not include this feed. Fix: use feed = "iex"'
        )
    if code in (400, 401, 403, 410):
        # 400 invalid syntax, 401 a message before auth, 403 auth twice, 410 bad subscribe
        return VenueProtocolError(
            f"{where}: the adapter sent something out of order or malformed (a bug in the "
            "adapter). Fix: report it with this message"
        )
    return ConnectionLostError(f"{where}: reconnecting")  # 407 slow client, 500 internal, …


# -- the trade_updates stream -------------------------------------------------------------------


def trade_stream_error(data: object) -> ConnectionLostError:
    """``{"action":"error","data":{"error_message":..}}``: sent before the venue closes the
    connection; reconnect, re-authenticate, re-listen and catch up over REST."""
    text = data.get("error_message", data) if isinstance(data, dict) else data
    return ConnectionLostError(
        f'alpaca trade_updates sent {{"action":"error"}} ({text}) and closes the connection; '
        "reconnecting, then the missed fills come from the FILL activities"
    )


def _number(text: str | None) -> float | None:
    try:
        return None if text is None else float(text)
    except ValueError:
        return None
