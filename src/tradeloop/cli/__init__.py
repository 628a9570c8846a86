"""The ``tradeloop`` command line. I/O lives here: parse, load, run, print.

One module per command (``backtest``, ``sweep``, ``fetch``, ``replay``, ``service``); each
adds its parser and its handler.

tradeloop backtest --data bars.parquet --strategy my_module:MyStrategy [--context vix.parquet]
tradeloop sweep --data bars.parquet --strategy my_module:MyStrategy --grid entry=0.6,0.7
tradeloop fetch binance BTCUSDT --interval 1m --start 2024-01-01 --out data/
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from tradeloop.cli import backtest, fetch, replay, service, sweep
from tradeloop.errors import TradeloopError

__all__ = ["main"]


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``tradeloop`` command; returns the exit code."""
    parser = _parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    try:
        return int(args.handler(args))
    except TradeloopError as err:
        print(f"tradeloop: error: {type(err).__name__}: {err}", file=sys.stderr)
        return 1


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="tradeloop",
        description="One strategy class for replay backtests, paper trading and live trading.",
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    for command in (backtest, sweep, fetch, replay, service):
        command.add(commands)
    return parser
