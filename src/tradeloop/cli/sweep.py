"""`tradeloop sweep`: a parameter sweep (or a walk-forward) from the shell."""

from __future__ import annotations

import argparse
import importlib.util
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from tradeloop.cli.inputs import add_setup_arguments, context_from, setup_costs, signal_list
from tradeloop.errors import ConfigError

__all__ = ["add", "parse_grid"]

_SWEEP_HELP = """\
Backtest one strategy class for every combination of parameter values and print a table:
the parameters, then the metrics of each run (total_return, sharpe, max_drawdown, ...).

Each --grid NAME=V1,V2,... is one constructor argument of the strategy class and the values
to try; the sweep runs every combination (the cartesian product). Values are read as Python
literals (0.6, 20, True, 'text'), anything else as a string. Runs go to a pool of local
processes (one per CPU, or --workers N), or to a Dask cluster with --executor
dask://HOST:PORT (pip install 'tradeloop[cluster]'; the data path must be readable on every
worker). Each worker reads the data once.

With --train and --test it runs a walk-forward instead: on each rolling window it sweeps the
grid over --train timestamps, keeps the combination with the best --metric, trades it over
the next --test timestamps, and stitches those out-of-sample runs into one equity curve (each
test window starts with the previous one's ending equity).

Examples:
  tradeloop sweep --data examples/data/sample.parquet --context examples/data/vix.parquet \\
      --strategy examples/ml_strategy.py:MLStrategy --grid entry=0.6,0.65,0.7 --grid exit=0.4,0.45
  tradeloop sweep ... --executor dask://scheduler:8786 --out results/
  tradeloop sweep ... --train 252 --test 63 --metric sharpe
"""
_SHOWN_METRICS = ("total_return", "sharpe", "max_drawdown", "n_trades")


def add(commands: Any) -> None:
    sweep = commands.add_parser(
        "sweep",
        help="backtest every combination of strategy parameters (or walk forward)",
        description=_SWEEP_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sweep.add_argument("--data", required=True, type=Path, metavar="PATH", help="bars (.parquet)")
    add_setup_arguments(sweep)
    sweep.add_argument(
        "--grid",
        action="append",
        required=True,
        metavar="NAME=V1,V2",
        help="a parameter and the values to try (repeat for more parameters)",
    )
    sweep.add_argument("--context", type=Path, metavar="PATH", help="market-wide series file")
    sweep.add_argument("--signals", metavar="A,B", help="signal columns (default: all numeric)")
    sweep.add_argument(
        "--executor",
        default="local",
        metavar="WHERE",
        help="'local' (default: a process pool), 'inline' (this process) or dask://HOST:PORT",
    )
    sweep.add_argument("--workers", type=int, metavar="N", help="local processes (default: CPUs)")
    sweep.add_argument("--train", type=int, metavar="N", help="walk-forward: train timestamps")
    sweep.add_argument("--test", type=int, metavar="N", help="walk-forward: test timestamps")
    sweep.add_argument("--step", type=int, metavar="N", help="walk-forward: step (default: --test)")
    sweep.add_argument(
        "--metric", default="sharpe", help="walk-forward: metric to pick by (default: sharpe)"
    )
    sweep.add_argument(
        "--minimize", action="store_true", help="walk-forward: lower --metric is better"
    )
    sweep.add_argument(
        "--out",
        type=Path,
        metavar="DIR",
        help="write sweep.parquet (or windows, equity_curve and train .parquet) into DIR",
    )
    sweep.add_argument(
        "--report",
        type=Path,
        metavar="PATH",
        help="write the sweep page to PATH: a heatmap of any metric over any two parameters, "
        "the top runs and their equity curves (with --train/--test: the out-of-sample windows "
        "and stitched curve too); needs plotly (pip install 'tradeloop[report]')",
    )
    sweep.add_argument("--json", action="store_true", help="print the table as JSON rows")
    sweep.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    sweep.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    import polars as pl

    from tradeloop.data.feed import HistoricalFeed
    from tradeloop.plugins import SetupSpec
    from tradeloop.research import sweep, walk_forward

    if (args.train is None) != (args.test is None):
        raise ConfigError("a walk-forward needs both --train and --test")
    signals = signal_list(args.signals)
    options: dict[str, Any] = {
        "context": context_from(args.context),
        "executor": args.executor,
        "max_workers": args.workers,
        "progress": False if args.no_progress else None,
    }
    factory = SetupSpec.resolved(
        args.strategy, risk=args.risk, features=args.features, **setup_costs(args)
    )
    grid = parse_grid(args.grid)
    feed = HistoricalFeed(args.data.resolve(), signal_columns=signals)
    if args.report is not None and importlib.util.find_spec("plotly") is None:
        raise ConfigError("--report needs plotly: pip install 'tradeloop[report]'")
    result: Any = None  # the walk-forward's, when it is one
    if args.train is None:
        table = sweep(factory, grid, feed, keep_equity=args.report is not None, **options)
        frames = {"sweep": table}
        shown = table.select(*grid, *[m for m in _SHOWN_METRICS if m in table.columns])
    else:
        result = walk_forward(
            factory,
            grid,
            feed,
            train=args.train,
            test=args.test,
            step=args.step,
            metric=args.metric,
            maximize=not args.minimize,
            **options,
        )
        table = result.windows
        frames = {
            "windows": table,
            "equity_curve": result.equity_curve,
            "train": result.train,
        }
        when = "%Y-%m-%d %H:%M"
        shown = table.select(
            "window",
            pl.col("test_start").dt.strftime(when),
            pl.col("test_end").dt.strftime(when),
            *grid,
            f"train_{args.metric}",
            "test_return",
            "end_equity",
        )
    if args.report is not None:
        _write_report(args, table, grid, result)
    if args.out is not None:
        args.out.mkdir(parents=True, exist_ok=True)
        for name, frame in frames.items():
            frame.write_parquet(args.out / f"{name}.parquet")
    if args.json:
        print(
            json.dumps(table.drop("equity_curve", strict=False).to_dicts(), indent=2, default=str)
        )
        return 0
    with pl.Config(tbl_rows=-1, tbl_cols=-1, tbl_hide_dataframe_shape=True, tbl_width_chars=120):
        print(shown)
    if args.train is not None:
        print(f"out-of-sample total return: {result.total_return:.2%}")
    return 0


def parse_grid(specs: Sequence[str]) -> dict[str, list[Any]]:
    """``["entry=0.6,0.7", "exit=0.4"]`` → ``{"entry": [0.6, 0.7], "exit": [0.4]}``."""
    import ast

    grid: dict[str, list[Any]] = {}
    for spec in specs:
        name, sep, values = spec.partition("=")
        name = name.strip()
        if not sep or not name or not values.strip():
            raise ConfigError(f"--grid {spec!r} must look like NAME=V1,V2 (e.g. entry=0.6,0.7)")
        if name in grid:
            raise ConfigError(f"--grid names {name!r} twice; give its values once: {name}=A,B")
        grid[name] = []
        for text in (v.strip() for v in values.split(",")):
            try:
                grid[name].append(ast.literal_eval(text))
            except (ValueError, SyntaxError):
                grid[name].append(text)
    return grid


def _write_report(args: argparse.Namespace, table: Any, grid: dict[str, Any], result: Any) -> None:
    from tradeloop.results.sweep_page import write_sweep_report

    name = args.strategy.rpartition(":")[2]
    if result is None:
        path = write_sweep_report(table, args.report, list(grid), title=f"{name} sweep")
    else:  # the train sweeps, per window, and the out-of-sample section
        path = write_sweep_report(
            result.train,
            args.report,
            [*grid, "window"],
            metric=args.metric,
            walk_forward=result,
            title=f"{name} walk-forward",
        )
    print(f"sweep report written to {path}", file=sys.stderr)
