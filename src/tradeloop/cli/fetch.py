"""`tradeloop fetch`: download a venue's bar history into parquet a backtest reads directly."""

from __future__ import annotations

import argparse
import asyncio
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from tradeloop.cli.inputs import key_values, utc_time
from tradeloop.errors import ConfigError

__all__ = ["PUBLIC_HISTORY", "add"]

# Where a venue serves history without keys, when the adapter's own default is elsewhere
# (Binance's default rest_url is the testnet, whose klines are not the market's).
# https://developers.binance.com/docs/binance-spot-api-docs/faqs/market_data_only
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

PUBLIC_HISTORY: dict[str, dict[str, Any]] = {
    "binance": {"rest_url": "https://data-api.binance.vision"},
}

_FETCH_HELP = """\
Download bars from a venue into a folder of parquet files, one per asset and window
(OUT/asset_id=BTCUSDT/2024-01-01T00-00.parquet), that a backtest reads directly:
  tradeloop backtest --data OUT --strategy ...      HistoricalFeed("OUT") in Python

Requests are paged by the venue adapter (Binance klines, Alpaca bars), rate limits are waited
out, and every window is written whole as soon as it is in: run the same command again after
an interruption (or with a later --end) and only the missing windows are fetched. Every window
passes the same checks as a backtest's data before it is written. Only closed bars are stored.

Binance history is public (no keys; data-api.binance.vision unless --set rest_url=...).
Alpaca needs APCA_API_KEY_ID and APCA_API_SECRET_KEY in the environment, and its adapter
serves 1-minute bars only.

Examples:
  tradeloop fetch binance BTCUSDT,ETHUSDT --interval 1m --start 2024-01-01 --end 2024-02-01 \\
      --out data/
  tradeloop fetch alpaca AAPL,SPY --start 2024-03-01 --end 2024-03-08 --out stocks/ \\
      --set feed=iex
"""


def add(commands: Any) -> None:
    fetch = commands.add_parser(
        "fetch",
        help="download a venue's bar history into parquet (resumable)",
        description=_FETCH_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    fetch.add_argument("venue", metavar="VENUE", help="a venue adapter: binance, alpaca")
    fetch.add_argument("symbols", metavar="SYMBOLS", help="comma-separated, e.g. BTCUSDT,ETHUSDT")
    fetch.add_argument("--interval", default="1m", help="bar length: 1m (default), 5m, 1h, 1d")
    fetch.add_argument("--start", required=True, metavar="DATE", help="first bar time (UTC)")
    fetch.add_argument("--end", metavar="DATE", help="bars opening before this (default: now)")
    fetch.add_argument("--out", required=True, type=Path, metavar="DIR", help="the folder")
    fetch.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="an adapter setting, as in the config's [venue] table (repeat), e.g. feed=sip",
    )
    fetch.add_argument(
        "--window-days", type=int, metavar="N", help="days per file (default: about 1000 bars)"
    )
    fetch.add_argument("--retries", type=int, default=5, metavar="N", help="per window")
    fetch.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    fetch.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from tradeloop.data.feed import HistoricalFeed
    from tradeloop.stream.fetch import fetch_history

    symbols = [s.strip() for s in args.symbols.split(",") if s.strip()]
    if not symbols:
        raise ConfigError("SYMBOLS is empty. Fix: name at least one, e.g. BTCUSDT")
    start = utc_time(args.start, "--start")
    end = utc_time(args.end, "--end") or datetime.now(UTC)
    assert start is not None  # required by the parser
    settings = {**PUBLIC_HISTORY.get(args.venue, {}), **key_values(args.set, "--set")}
    report = asyncio.run(
        fetch_history(
            args.venue,
            symbols,
            args.out,
            start_ns=_ns(start),
            end_ns=_ns(end),
            interval=args.interval,
            settings=settings,
            window_days=args.window_days,
            retries=args.retries,
            progress=False if args.no_progress else None,
        )
    )
    print(
        f"fetched {report.windows} window(s), {report.bars:,} bars ({report.retries} retries)",
        file=sys.stderr,
    )
    frame = HistoricalFeed(args.out, signal_columns=[]).frame()  # the backtest's own reading
    if frame.height:
        when = "%Y-%m-%d %H:%M"
        first, last = (_utc(frame["ts_ns"].min()), _utc(frame["ts_ns"].max()))  # type: ignore[arg-type]
        print(
            f"{args.out} holds {frame.height:,} bars of {frame['asset_id'].n_unique()} "
            f"asset(s), {first:{when}} → {last:{when}} UTC\n"
            f"next: tradeloop backtest --data {args.out} --strategy my_strategy.py:MyStrategy",
            file=sys.stderr,
        )
    return 0


def _ns(value: datetime) -> int:
    return (value - _EPOCH) // timedelta(microseconds=1) * 1_000


def _utc(ts_ns: int) -> datetime:
    return _EPOCH + timedelta(microseconds=ts_ns // 1_000)
