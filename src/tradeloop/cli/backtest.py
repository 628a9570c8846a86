"""`tradeloop backtest`: replay a strategy over historical bars, print or write the result."""

from __future__ import annotations

import argparse
import importlib.util
import json
import sys
from pathlib import Path
from typing import Any

from tradeloop.cli.inputs import (
    add_setup_arguments,
    context_from,
    key_values,
    setup_costs,
    signal_list,
    utc_time,
    writable_dir,
)
from tradeloop.errors import ConfigError

__all__ = ["add"]

_BACKTEST_HELP = """\
Replay a strategy over historical bars and print a summary (or JSON with --json).

The data is a long-format parquet or CSV file: timestamp, asset_id, open, high, low, close,
volume, and one column per signal (ML prediction). A single-asset file may omit asset_id
(use --asset-id). Timestamps without a time zone are read as UTC.

Examples:
  tradeloop backtest --data examples/data/sample.parquet \\
      --strategy examples/ml_strategy.py:MLStrategy --context examples/data/vix.parquet
  tradeloop backtest --data bars.parquet --strategy mypkg.strategies:TopN --json
  tradeloop backtest --data bars.parquet --strategy mypkg.strategies:TopN --report report.html
  tradeloop backtest --data data/ --strategy my.py:MLStrategy --param entry=0.7 \\
      --start 2024-01-01 --end 2024-06-30
"""


def add(commands: Any) -> None:
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
    add_setup_arguments(backtest)
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
        "--fill-timing",
        choices=("next_open", "close"),
        help="market orders fill at the next bar's open (default) or at the decision bar's close",
    )
    backtest.add_argument(
        "--allow-short", action="store_true", default=None, help="allow short positions"
    )
    backtest.add_argument(
        "--fractional", action="store_true", default=None, help="trade fractional quantities"
    )
    backtest.add_argument("--json", action="store_true", help="print metrics as JSON")
    backtest.add_argument(
        "--out",
        type=Path,
        metavar="DIR",
        help="write equity, fills, orders and trades as parquet into DIR",
    )
    backtest.add_argument(
        "--report",
        type=Path,
        metavar="PATH",
        help="write an HTML report (charts vs buy-and-hold, metrics, config) to PATH: one "
        "file that opens offline; needs plotly (pip install 'tradeloop[report]')",
    )
    backtest.add_argument(
        "--param",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="a strategy constructor argument (repeat), e.g. --param entry=0.7",
    )
    backtest.add_argument("--start", metavar="DATE", help="first bar time to replay (UTC)")
    backtest.add_argument("--end", metavar="DATE", help="last bar time to replay (UTC, inclusive)")
    backtest.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    backtest.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from tradeloop.data.feed import HistoricalFeed
    from tradeloop.engine import Engine
    from tradeloop.plugins import SetupSpec

    if args.report is not None and importlib.util.find_spec("plotly") is None:
        raise ConfigError("--report needs plotly: pip install 'tradeloop[report]'")
    writable_dir(args.out, "--out")  # before the run: a bad path must not lose its result
    writable_dir(args.report.parent if args.report is not None else None, "--report")
    setup = SetupSpec(args.strategy, args.risk, args.features).load()
    signals = signal_list(args.signals)
    feed = HistoricalFeed(
        args.data,
        signal_columns=signals,
        asset_id=args.asset_id,
        start=utc_time(args.start, "--start"),
        end=utc_time(args.end, "--end"),
    )
    params = key_values(args.param, "--param")
    engine = Engine(
        feed=feed,
        strategy=setup.replace(params={**setup.params, **params}) if params else setup,
        context=context_from(args.context),
        fill_timing=args.fill_timing,
        allow_short=args.allow_short,
        fractional=args.fractional,
        progress=False if args.no_progress else None,
        **setup_costs(args),
    )
    result = engine.run()
    if args.json:
        print(json.dumps(result.to_dict(), indent=2, default=str))
    else:
        print(result.summary())
    sys.stdout.flush()  # the summary is out before any file is written
    if args.out is not None:
        result.to_parquet(args.out)
    if args.report is not None:
        print(f"report written to {result.report(args.report)}", file=sys.stderr)
    return 0
