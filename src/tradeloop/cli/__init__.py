"""The ``tradeloop`` command line. I/O lives here: parse, load, run, print.

One module per command (``init``, ``backtest``, ``sweep``, ``fetch``, ``replay``,
``service``, ``report``); each adds its parser and its handler.

tradeloop backtest --data bars.parquet --strategy my_module:MyStrategy [--context vix.parquet]
tradeloop sweep --data bars.parquet --strategy my_module:MyStrategy --grid entry=0.6,0.7
tradeloop fetch binance BTCUSDT --interval 1m --start 2024-01-01 --out data/
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from tradeloop.cli import backtest, fetch, init, replay, report, service, sweep
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
        code = int(args.handler(args))
        sys.stdout.flush()  # inside the try: a closed pipe shows up here for short output
        return code
    except TradeloopError as err:
        from tradeloop.logs import redact

        print(f"tradeloop: error: {type(err).__name__}: {redact(str(err))}", file=sys.stderr)
        exit_code_of = getattr(args, "exit_code_of", None)  # a command's own codes
        return 1 if exit_code_of is None else int(exit_code_of(err))
    except BrokenPipeError:
        # the reader went away (``tradeloop ... --json | head``): stop quietly, and point
        # stdout at /dev/null so the interpreter's final flush does not raise again
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 141  # 128 + SIGPIPE, what a shell reports for a killed writer


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="tradeloop",
        description="One strategy class for replay backtests, paper trading and live trading.",
    )
    parser.add_argument("--version", action="version", version=f"tradeloop {_version()}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    for command in (init, backtest, sweep, fetch, replay, service, report):
        command.add(commands)
    return parser


def _version() -> str:
    """The installed distribution's version (the package's own when run from a checkout)."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("tradeloop")
    except PackageNotFoundError:
        from tradeloop import __version__

        return __version__
