"""Readers for the fields of Binance's JSON: each names the payload and field it rejects.

Binance sends prices and quantities as decimal strings, ids and times as integers (ms); a
reader returns the value or raises ``VenueProtocolError`` saying where and what. Pure.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal, InvalidOperation
from typing import Any

from tradeloop.errors import VenueProtocolError

__all__ = ["clip", "decimal", "integer", "number", "text"]


def number(raw: Mapping[str, Any], name: str, where: str) -> float:
    """A finite decimal string field as a float."""
    return float(decimal(raw, name, where))


def decimal(raw: Mapping[str, Any], name: str, where: str) -> Decimal:
    """A finite decimal string field, exactly."""
    value = raw.get(name)
    if not isinstance(value, str):
        raise VenueProtocolError(f"{where}: {name} is {value!r}, not a decimal string")
    try:
        parsed = Decimal(value)
    except InvalidOperation:
        raise VenueProtocolError(f"{where}: {name} is {value!r}, not a decimal") from None
    if not parsed.is_finite():
        raise VenueProtocolError(f"{where}: {name} is {value!r}, not finite")
    return parsed


def integer(raw: Mapping[str, Any], name: str, where: str) -> int:
    value = raw.get(name)
    if type(value) is not int:
        raise VenueProtocolError(f"{where}: {name} is {value!r}, not an integer")
    return value


def text(raw: Any, name: str, where: str) -> str:
    """A non-empty string field."""
    value = raw.get(name) if isinstance(raw, dict) else None
    if not isinstance(value, str) or not value:
        raise VenueProtocolError(f"{where}: {name} is {value!r}, not a string")
    return value


def clip(value: Any, n: int = 120) -> str:
    """A short printable view of a payload, for error messages."""
    shown = value.decode(errors="replace") if isinstance(value, bytes) else repr(value)
    return shown if len(shown) <= n else shown[:n] + "…"
