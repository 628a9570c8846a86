"""What several commands read from the shell: signal lists, context files, times, KEY=VALUE."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

__all__ = ["context_from", "key_values", "signal_list", "strategy_from", "utc_time"]


def signal_list(text: str | None) -> list[str] | None:
    """``--signals A,B`` as a list; None (every numeric column) when not given."""
    return [name.strip() for name in text.split(",") if name.strip()] if text else None


def context_from(path: Path | None) -> Any:
    import polars as pl

    from tradeloop.data.context import Context
    from tradeloop.errors import DataError

    if path is None:
        return None
    if not path.exists():
        raise DataError(f"{path}: no such context file")
    frame = (
        pl.read_parquet(path)
        if path.suffix == ".parquet"
        else pl.read_csv(path, try_parse_dates=True)
    )
    return Context(frame)


def utc_time(text: str | None, flag: str) -> datetime | None:
    """``--start 2024-01-01`` (or an ISO date-time) as an aware UTC datetime; naive means UTC."""
    from tradeloop.errors import ConfigError

    if text is None:
        return None
    try:
        value = datetime.fromisoformat(text.strip())
    except ValueError:
        raise ConfigError(
            f"{flag} {text!r} is not a date. Fix: give an ISO date or time, e.g. 2024-01-31 "
            "or 2024-01-31T14:30 (UTC unless it names an offset)"
        ) from None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def key_values(specs: list[str], flag: str) -> dict[str, Any]:
    """``["entry=0.7", "name=fast"]`` → ``{"entry": 0.7, "name": "fast"}``: Python literals
    (numbers, True, None, quoted text), anything else as a string."""
    import ast

    from tradeloop.errors import ConfigError

    out: dict[str, Any] = {}
    for spec in specs:
        key, sep, text = spec.partition("=")
        key = key.strip()
        if not sep or not key.isidentifier():
            raise ConfigError(f"{flag} {spec!r} must look like NAME=VALUE, e.g. {flag} entry=0.7")
        if key in out:
            raise ConfigError(f"{flag} names {key!r} twice; give it once")
        try:
            out[key] = ast.literal_eval(text.strip())
        except (ValueError, SyntaxError):
            out[key] = text.strip()
    return out


def strategy_from(factory: Any, params: dict[str, Any]) -> Any:
    """``factory(**params)``; a name it does not take is a ConfigError listing what it takes."""
    import inspect

    from tradeloop.errors import ConfigError

    try:
        inspect.signature(factory).bind(**params)
    except TypeError as err:
        try:
            takes = ", ".join(inspect.signature(factory).parameters) or "nothing"
        except (TypeError, ValueError):
            takes = "unknown"
        raise ConfigError(
            f"--param: {getattr(factory, '__name__', factory)} does not take {sorted(params)} "
            f"({err}); it takes: {takes}"
        ) from None
    return factory(**params)
