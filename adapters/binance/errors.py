"""Binance's error answers → what they mean for us: the ONE error map of the adapter.

Every documented HTTP status, error code and WebSocket API error frame the adapter can meet is a
row of ``RULES`` (the same table, with the doc citations, is in ``adapters/binance/README.md``;
a test keeps the two equal). A row gives a *category*; ``error_for`` turns it into the typed
error for the kind of request that got it:

- ``retry``: nothing happened, try again later (``ConnectionLostError``);
- ``unknown``: the request may have taken effect. A submit or cancel raises
  ``OutcomeUnknownError`` (look the order up by client id, never resend); a read is retried;
- ``rejected``: the venue refused it and nothing exists (``OrderRejectedError``; a read that is
  refused is our bug: ``VenueProtocolError``);
- ``not_found``: a lookup of an order Binance does not have (``UnknownOrderError``);
- ``duplicate``: the client order id is in use: the order EXISTS, look it up
  (``DuplicateOrderError``);
- ``clock_skew``: -1021, refused before acting: resync the clock, resend once;
- ``rate_limited``: wait ``retry_after_s`` (``RateLimitError``); nothing was executed;
- ``fatal_config``: keys, permissions or symbols that cannot work: ``ConfigError`` with a Fix.

Pure: no I/O.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Literal

import orjson

from adapters.binance.fields import clip
from tradeloop.errors import (
    AdapterError,
    ConfigError,
    ConnectionLostError,
    DuplicateOrderError,
    OrderRejectedError,
    OutcomeUnknownError,
    RateLimitError,
    TradeloopError,
    VenueProtocolError,
)

__all__ = [
    "RULES",
    "Category",
    "ClockSkewError",
    "ErrorRule",
    "FilterFailureError",
    "Request",
    "UnknownOrderError",
    "classify",
    "error_for",
    "ws_error_for",
]

Request = Literal["submit", "cancel", "lookup", "read", "subscribe"]

_ERRORS = "https://developers.binance.com/docs/binance-spot-api-docs/errors"
_HTTP = "https://developers.binance.com/docs/binance-spot-api-docs/rest-api/http-return-codes"
_LIMITS = "https://developers.binance.com/docs/binance-spot-api-docs/rest-api/limits"
_WS_LIMITS = "https://developers.binance.com/docs/binance-spot-api-docs/websocket-api/rate-limits"


class Category(StrEnum):
    RETRY = "retry"
    UNKNOWN = "unknown"
    REJECTED = "rejected"
    NOT_FOUND = "not_found"
    DUPLICATE = "duplicate"
    CLOCK_SKEW = "clock_skew"
    RATE_LIMITED = "rate_limited"
    FATAL_CONFIG = "fatal_config"


class ClockSkewError(AdapterError):
    """-1021: our timestamp fell outside ``recvWindow``; the request was not accepted."""


class UnknownOrderError(AdapterError):
    """-2013: Binance has no such order (for this symbol and client order id)."""


class FilterFailureError(OrderRejectedError):
    """-1013 "Filter failure: ...": refused by a symbol filter (the rules may have changed)."""


@dataclass(frozen=True, slots=True)
class ErrorRule:
    """One row of the map: what matches (status, code, message) and what it means."""

    key: str  # the row's name in the README table
    category: Category
    doc: str
    status: int | None = None  # HTTP status; None: any
    code: int | None = None  # Binance error code; None: any (or none)
    message: str | None = None  # the exact ``msg`` (codes whose messages differ in meaning)
    wait_s: float = 0.0  # rate_limited: the hold when no Retry-After is given
    fix: str = ""  # fatal_config: what the operator does


_KEYS_FIX = (
    "check BINANCE_API_KEY / BINANCE_API_SECRET belong together and to this venue (testnet "
    "keys work only on the testnet), that the key may trade spot ('Enable Spot & Margin "
    "Trading') and that this machine's IP is on the key's whitelist"
)
_ACCOUNT_FIX = "the account or key may not trade: enable trading for it, or contact Binance"

_CANNOT_TRADE = (
    "This action is disabled on this account.",
    "This account may not place or cancel orders.",
    "Rest API trading is not enabled.",
    "WebSocket API trading is not enabled.",
    "This symbol is not permitted for this account.",
    "This symbol is restricted for this account.",
)


def _cannot_trade(code: int) -> tuple[ErrorRule, ...]:
    doc = f"{_ERRORS}#other-errors"
    return tuple(
        ErrorRule(f"{code} {msg}", Category.FATAL_CONFIG, doc, code=code, message=msg,
                  fix=_ACCOUNT_FIX)
        for msg in _CANNOT_TRADE
    )  # fmt: skip


# Order matters: the first row that matches wins: 429/418 first (whatever the code: -1003,
# -1015), message rows before their code's catch-all, code rows before the other HTTP rows.
# fmt: off
RULES: tuple[ErrorRule, ...] = (
    ErrorRule("HTTP 429", Category.RATE_LIMITED, _LIMITS, status=429, wait_s=60.0),
    ErrorRule("HTTP 418", Category.RATE_LIMITED, _LIMITS, status=418, wait_s=120.0),
    ErrorRule("-2010 Duplicate order sent.", Category.DUPLICATE, f"{_ERRORS}#other-errors",
              code=-2010, message="Duplicate order sent."),
    ErrorRule("-2010 Account has insufficient balance for requested action.", Category.REJECTED,
              f"{_ERRORS}#other-errors", code=-2010,
              message="Account has insufficient balance for requested action."),
    ErrorRule("-2010 Market is closed.", Category.REJECTED, f"{_ERRORS}#other-errors",
              code=-2010, message="Market is closed."),
    *_cannot_trade(-2010),
    ErrorRule("-2010", Category.REJECTED, f"{_ERRORS}#-2010-new_order_rejected", code=-2010),
    ErrorRule("-2011 Unknown order sent.", Category.REJECTED, f"{_ERRORS}#other-errors",
              code=-2011, message="Unknown order sent."),
    *_cannot_trade(-2011),
    ErrorRule("-2011", Category.REJECTED, f"{_ERRORS}#-2011-cancel_rejected", code=-2011),
    ErrorRule("-2013", Category.NOT_FOUND, f"{_ERRORS}#-2013-no_such_order", code=-2013),
    ErrorRule("-2026", Category.NOT_FOUND, f"{_ERRORS}#-2026-order_archived", code=-2026),
    ErrorRule("-2014", Category.FATAL_CONFIG, f"{_ERRORS}#-2014-bad_api_key_fmt", code=-2014,
              fix=_KEYS_FIX),
    ErrorRule("-2015", Category.FATAL_CONFIG, f"{_ERRORS}#-2015-rejected_mbx_key", code=-2015,
              fix=_KEYS_FIX),
    ErrorRule("-1022", Category.FATAL_CONFIG, f"{_ERRORS}#-1022-invalid_signature", code=-1022,
              fix="BINANCE_API_SECRET is not the secret of BINANCE_API_KEY (HMAC keys only)"),
    ErrorRule("-1002", Category.FATAL_CONFIG, f"{_ERRORS}#-1002-unauthorized", code=-1002,
              fix=_KEYS_FIX),
    ErrorRule("-1121", Category.FATAL_CONFIG, f"{_ERRORS}#-1121-bad_symbol", code=-1121,
              fix="a symbol in [venue] symbols is not traded at this venue; remove or rename it"),
    ErrorRule("-1021", Category.CLOCK_SKEW, f"{_ERRORS}#-1021-invalid_timestamp", code=-1021),
    ErrorRule("-1003", Category.RATE_LIMITED, f"{_ERRORS}#-1003-too_many_requests", code=-1003,
              wait_s=60.0),
    ErrorRule("-1015", Category.RATE_LIMITED, f"{_ERRORS}#-1015-too_many_orders", code=-1015,
              wait_s=10.0),
    ErrorRule("-1000", Category.UNKNOWN, f"{_ERRORS}#-1000-unknown", code=-1000),
    ErrorRule("-1001", Category.UNKNOWN, f"{_ERRORS}#-1001-disconnected", code=-1001),
    ErrorRule("-1006", Category.UNKNOWN, f"{_ERRORS}#-1006-unexpected_resp", code=-1006),
    ErrorRule("-1007", Category.UNKNOWN, f"{_ERRORS}#-1007-timeout", code=-1007),
    ErrorRule("-1008", Category.UNKNOWN, f"{_ERRORS}#-1008-server_busy", code=-1008),
    ErrorRule("-1016", Category.UNKNOWN, f"{_ERRORS}#-1016-service_shutting_down", code=-1016),
    ErrorRule("-1013", Category.REJECTED, f"{_ERRORS}#filter-failures", code=-1013),
    ErrorRule("-1111", Category.REJECTED, f"{_ERRORS}#-1111-bad_precision", code=-1111),
    ErrorRule("HTTP 403", Category.RATE_LIMITED, _HTTP, status=403, wait_s=60.0),
    ErrorRule("HTTP 409", Category.UNKNOWN, _HTTP, status=409),
    ErrorRule("HTTP 5XX", Category.UNKNOWN, _HTTP, status=500),
    ErrorRule("HTTP 4XX", Category.REJECTED, _HTTP, status=400),
    ErrorRule("HTTP other", Category.UNKNOWN, _HTTP),
)
# fmt: on


def classify(status: int, code: int | None, message: str) -> ErrorRule:
    """The first row that matches: a code row (and its message, if it names one), else the
    row of the HTTP status (``HTTP 4XX`` / ``HTTP 5XX`` for the rest of each family)."""
    for rule in RULES:
        if rule.code is not None:
            if rule.code == code and rule.message in (None, message):
                return rule
        elif _status_matches(rule.status, status):
            return rule
    raise AssertionError("unreachable: the last row matches every status")  # pragma: no cover


def _status_matches(rule_status: int | None, status: int) -> bool:
    if rule_status is None:
        return True
    if rule_status == 500:
        return status >= 500
    if rule_status == 400:
        return 400 <= status < 500
    return rule_status == status


def error_for(
    status: int, body: str | bytes, *, what: str, retry_after: str | None, request: Request
) -> TradeloopError:
    """An error answer (HTTP status + body) → the exception it means for this request."""
    code, msg = _code_and_message(body)
    rule = classify(status, code, msg)
    binance_code = f", Binance {code}" if code is not None else ""
    detail = f"{what}: HTTP {status}{binance_code}: {msg}"
    return _error(rule, detail, request, _seconds(retry_after, rule.wait_s))


def ws_error_for(response: Any, *, what: str, request: Request) -> TradeloopError:
    """A WebSocket API error response ``{"status", "error": {code, msg, data}}`` → its error.

    ``error.data.retryAfter`` (a 418/429 frame) is the epoch ms the ban ends, measured against
    ``data.serverTime`` when the frame carries it.
    """
    status = response.get("status") if isinstance(response, dict) else None
    error = response.get("error") if isinstance(response, dict) else None
    if type(status) is not int or not isinstance(error, dict):
        return VenueProtocolError(f"{what}: not a WebSocket API error frame: {clip(response)}")
    data = error.get("data")
    data = data if isinstance(data, dict) else {}
    retry_after = None
    until_ms, now_ms = data.get("retryAfter"), data.get("serverTime")
    if type(until_ms) is int and type(now_ms) is int:
        retry_after = str(max(0.0, (until_ms - now_ms) / 1000))
    body = orjson.dumps(error)
    return error_for(status, body, what=what, retry_after=retry_after, request=request)


def _error(rule: ErrorRule, detail: str, request: Request, wait_s: float) -> TradeloopError:
    category = rule.category
    ordering = request in ("submit", "cancel")
    if category is Category.RATE_LIMITED:
        why = "IP banned for hammering after 429s" if rule.status == 418 else "rate limit hit"
        return RateLimitError(f"{detail} ({why}; retry after {wait_s:g} s)", retry_after_s=wait_s)
    if category is Category.FATAL_CONFIG:
        return ConfigError(f"{detail.rstrip('.')}. Fix: {rule.fix}")
    if category is Category.CLOCK_SKEW:
        return ClockSkewError(f"{detail} (clock skew: resync with GET /api/v3/time)")
    if category is Category.DUPLICATE:
        if request == "submit":
            return DuplicateOrderError(
                f"{detail} (the client order id is in use: the order exists; look it up)"
            )
        return OrderRejectedError(detail)
    if category is Category.NOT_FOUND:
        return UnknownOrderError(detail) if request == "lookup" else OrderRejectedError(detail)
    if category is Category.UNKNOWN:
        if ordering:
            return OutcomeUnknownError(f"{detail} (execution status unknown: look the order up)")
        return ConnectionLostError(f"{detail} (Binance could not answer; try again)")
    if category is Category.RETRY:
        return ConnectionLostError(detail)
    if ordering:
        if rule.key == "-1013":
            return FilterFailureError(detail)
        if rule.key == "-2011 Unknown order sent.":
            detail += " (no open order with that id: never placed, or already done; look it up)"
        return OrderRejectedError(detail)
    return VenueProtocolError(f"{detail} (refused: a request this adapter should not send)")


def _code_and_message(body: str | bytes) -> tuple[int | None, str]:
    try:
        raw = orjson.loads(body)
    except orjson.JSONDecodeError:
        return None, clip(body)
    if isinstance(raw, dict) and type(raw.get("code")) is int:
        return int(raw["code"]), str(raw.get("msg", ""))
    return None, clip(raw)


def _seconds(header: str | None, default_s: float) -> float:
    try:
        value = float(header) if header is not None else default_s
    except ValueError:
        return default_s
    return value if math.isfinite(value) and value >= 0 else default_s
