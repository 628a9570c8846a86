"""`tradeloop report`: a paper or live daemon's result, built from its journal, on demand."""

from __future__ import annotations

import argparse
import importlib.util
import json
import sys
from pathlib import Path
from typing import Any

from tradeloop.errors import ConfigError

__all__ = ["add"]

_HELP = """\
Build the BacktestResult of a paper or live daemon from its state_dir (the journal the daemon
writes every bar): the same metrics, frames and HTML report as 'tradeloop backtest'. It reads
the journal read-only, so it works while the daemon runs, and after it stopped.

Examples:
  tradeloop report --state-dir /data --out report.html
  tradeloop report --state-dir state --json
"""


def add(commands: Any) -> None:
    report = commands.add_parser(
        "report",
        help="a paper/live daemon's result (metrics, HTML report) from its journal",
        description=_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    report.add_argument(
        "--state-dir", required=True, type=Path, metavar="DIR", help="the daemon's state_dir"
    )
    report.add_argument(
        "--out", type=Path, metavar="PATH", help="write the HTML report here (needs plotly)"
    )
    report.add_argument(
        "--parquet", type=Path, metavar="DIR", help="write the result's frames as parquet here"
    )
    report.add_argument("--json", action="store_true", help="print the metrics as JSON")
    report.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from tradeloop.service.results import result_from_journal

    if args.out is not None and importlib.util.find_spec("plotly") is None:
        raise ConfigError("--out needs plotly: pip install 'tradeloop[report]'")
    result = result_from_journal(args.state_dir)
    if args.parquet is not None:
        result.to_parquet(args.parquet)
    if args.out is not None:
        print(f"report written to {result.report(args.out)}", file=sys.stderr)
    if args.json:
        print(json.dumps(result.to_dict(), indent=2, default=str))
    else:
        print(result.summary())
    return 0
