"""The ``tradeloop`` command line. I/O lives here: parse, load, run, print.

tradeloop backtest --data bars.parquet --strategy my_module:MyStrategy [--context vix.parquet]
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from tradeloop.errors import ConfigError, TradeloopError

__all__ = ["load_strategy_class", "main"]

_BACKTEST_HELP = """\
Replay a strategy over historical bars and print a summary (or JSON with --json).

The data is a long-format parquet or CSV file: timestamp, asset_id, open, high, low, close,
volume, and one column per signal (ML prediction). A single-asset file may omit asset_id
(use --asset-id). Timestamps without a time zone are read as UTC.

Examples:
  tradeloop backtest --data examples/data/sample.parquet \\
      --strategy examples/ml_strategy.py:MLStrategy --context examples/data/vix.parquet
  tradeloop backtest --data bars.parquet --strategy mypkg.strategies:TopN --json
"""


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
    backtest = commands.add_parser(
        "backtest",
        help="replay a strategy over historical data",
        description=_BACKTEST_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    backtest.add_argument(
        "--data",
        required=True,
        type=Path,
        metavar="PATH",
        help="bars with signals: .parquet or .csv, long format",
    )
    backtest.add_argument(
        "--strategy",
        required=True,
        metavar="MODULE:CLASS",
        help="strategy class, as 'package.module:Class' or 'path/file.py:Class'",
    )
    backtest.add_argument(
        "--context",
        type=Path,
        metavar="PATH",
        help="market-wide series (.parquet/.csv): timestamp + one column each",
    )
    backtest.add_argument(
        "--signals", metavar="A,B", help="signal columns (default: every numeric non-bar column)"
    )
    backtest.add_argument("--asset-id", metavar="ID", help="asset id for a single-asset file")
    backtest.add_argument(
        "--cash", type=float, default=100_000.0, metavar="N", help="initial cash (default: 100000)"
    )
    backtest.add_argument(
        "--commission",
        type=float,
        default=0.0,
        metavar="RATE",
        help="commission as a fraction of notional, e.g. 0.001 = 10 bps",
    )
    backtest.add_argument(
        "--slippage",
        type=float,
        default=0.0,
        metavar="FRACTION",
        help="slippage as a fraction of price, e.g. 0.0005 = 5 bps",
    )
    backtest.add_argument(
        "--fill-timing",
        choices=("next_open", "close"),
        default="next_open",
        help="market orders fill at the next bar's open (default) or at the decision bar's close",
    )
    backtest.add_argument("--allow-short", action="store_true", help="allow short positions")
    backtest.add_argument("--fractional", action="store_true", help="trade fractional quantities")
    backtest.add_argument("--json", action="store_true", help="print metrics as JSON")
    backtest.add_argument(
        "--out",
        type=Path,
        metavar="DIR",
        help="write equity, fills, orders and trades as parquet into DIR",
    )
    backtest.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    backtest.set_defaults(handler=_backtest)
    return parser


def _backtest(args: argparse.Namespace) -> int:
    from tradeloop.data.feed import HistoricalFeed
    from tradeloop.engine import Engine

    strategy_class = load_strategy_class(args.strategy)
    signals = [s.strip() for s in args.signals.split(",") if s.strip()] if args.signals else None
    feed = HistoricalFeed(args.data, signal_columns=signals, asset_id=args.asset_id)
    context = _context(args.context)
    engine = Engine(
        feed=feed,
        strategy=strategy_class(),
        context=context,
        initial_cash=args.cash,
        commission=args.commission,
        slippage=args.slippage,
        fill_timing=args.fill_timing,
        allow_short=args.allow_short,
        fractional=args.fractional,
        progress=False if args.no_progress else None,
    )
    result = engine.run()
    if args.out is not None:
        result.to_parquet(args.out)
    if args.json:
        print(json.dumps(result.to_dict(), indent=2, default=str))
    else:
        print(result.summary())
    return 0


def _context(path: Path | None) -> Any:
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


def load_strategy_class(spec: str) -> type[Any]:
    """Import ``'pkg.module:Class'`` or ``'path/to/file.py:Class'`` and return the class."""
    module_name, sep, class_name = spec.rpartition(":")
    if not sep or not module_name or not class_name:
        raise ConfigError(
            f"--strategy {spec!r} must look like 'package.module:Class' or 'file.py:Class'"
        )
    if module_name.endswith(".py"):
        path = Path(module_name)
        if not path.exists():
            raise ConfigError(f"--strategy: no file {path} (cwd is {Path.cwd()})")
        module_spec = importlib.util.spec_from_file_location(path.stem, path)
        if module_spec is None or module_spec.loader is None:
            raise ConfigError(f"--strategy: cannot import {path}")
        module = importlib.util.module_from_spec(module_spec)
        sys.modules[path.stem] = module
        module_spec.loader.exec_module(module)
    else:
        sys.path.insert(0, str(Path.cwd()))
        try:
            module = importlib.import_module(module_name)
        except ImportError as err:
            raise ConfigError(f"--strategy: cannot import {module_name!r}: {err}") from err
    try:
        strategy_class: type[Any] = getattr(module, class_name)
    except AttributeError:
        raise ConfigError(f"--strategy: {module_name!r} has no class {class_name!r}") from None
    return strategy_class
