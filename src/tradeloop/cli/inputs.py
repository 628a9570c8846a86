"""What several commands read from the shell: the setup (strategy, risk, features, costs),
signal lists, context files, times, NAME=VALUE parameters."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

STRATEGY_HELP = (
    "a Strategy class or a tradeloop.Setup (strategy with its params, risk, features, "
    "context and costs), as 'package.module:name' or 'path/file.py:name'"
)

__all__ = [
    "add_setup_arguments",
    "context_from",
    "key_values",
    "setup_costs",
    "signal_list",
    "utc_time",
    "writable_dir",
]


def signal_list(text: str | None) -> list[str] | None:
    """``--signals A,B`` as a list; None (every numeric column) when not given."""
    return [name.strip() for name in text.split(",") if name.strip()] if text else None


def context_from(path: Path | None) -> Any:
    import polars as pl

    from tradeloop.data.context import Context
    from tradeloop.data.feed import unreadable
    from tradeloop.errors import DataError

    if path is None:
        return None
    if not path.exists():
        raise DataError(f"{path}: no such context file")
    try:
        frame = (
            pl.read_parquet(path)
            if path.suffix == ".parquet"
            else pl.read_csv(path, try_parse_dates=True)
        )
    except (pl.exceptions.PolarsError, OSError) as err:
        raise unreadable(path, err) from err
    return Context(frame)


def add_setup_arguments(parser: Any) -> None:
    """``--strategy``, ``--risk``, ``--features`` and the costs: each cost given here is
    used over the setup's (left out: the setup's, else the default)."""
    parser.add_argument("--strategy", required=True, metavar="MODULE:NAME", help=STRATEGY_HELP)
    parser.add_argument(
        "--risk",
        metavar="MODULE:NAME",
        help="a RiskManager (or a function making one), over the setup's; each run gets a "
        "fresh copy",
    )
    parser.add_argument(
        "--features",
        metavar="MODULE:NAME",
        help="a FeatureProvider (or a function making one), over the setup's",
    )
    parser.add_argument(
        "--cash", type=float, metavar="N", help="initial cash (default: the setup's, else 100000)"
    )
    parser.add_argument(
        "--commission",
        type=float,
        metavar="RATE",
        help="commission as a fraction of notional, e.g. 0.001 = 10 bps (default: the "
        "setup's, else 0)",
    )
    parser.add_argument(
        "--slippage",
        type=float,
        metavar="FRACTION",
        help="slippage as a fraction of price, e.g. 0.0005 = 5 bps (default: the setup's, else 0)",
    )


def setup_costs(args: Any) -> dict[str, Any]:
    """The costs given on the command line, named as ``Setup`` names them."""
    given = {"initial_cash": args.cash, "commission": args.commission, "slippage": args.slippage}
    return {k: v for k, v in given.items() if v is not None}


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


def writable_dir(path: Path | None, flag: str) -> None:
    """Create ``path`` (an output folder) now, or say why it cannot be, before any work."""
    import os

    from tradeloop.errors import ConfigError

    if path is None:
        return
    if path.exists() and not path.is_dir():
        raise ConfigError(f"{flag} {path}: a file is in the way of the folder. Fix: another path")
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise ConfigError(
            f"{flag} {path}: cannot create it ({os.strerror(err.errno or 0)})"
        ) from err
    if not os.access(path, os.W_OK):
        raise ConfigError(f"{flag} {path}: not writable by this user. Fix: another path")
