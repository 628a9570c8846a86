"""The ``tradeloop`` command line. I/O lives here: parse, load, run, print.

tradeloop backtest --data bars.parquet --strategy my_module:MyStrategy [--context vix.parquet]
tradeloop sweep --data bars.parquet --strategy my_module:MyStrategy --grid entry=0.6,0.7
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from tradeloop.errors import ConfigError, TradeloopError

__all__ = ["main"]

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
"""

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
    backtest.add_argument(
        "--report",
        type=Path,
        metavar="PATH",
        help="write an HTML report (charts vs buy-and-hold, metrics, config) to PATH: one "
        "file that opens offline; needs plotly (pip install 'tradeloop[report]')",
    )
    backtest.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    backtest.set_defaults(handler=_backtest)
    _add_sweep(commands)

    replay = commands.add_parser(
        "serve-replay",
        help="stream historical bars over a local WebSocket, as a live feed would",
        description=(
            "Serve DATA (the same files 'backtest' reads) as a live bar stream on "
            "ws://HOST:PORT: every client gets the replay from the start, context values "
            "first at each timestamp, then the bars. With --live-clock it behaves like a "
            "venue instead: one replay runs from the first connection on, clients get only "
            "what is published while they are connected, and fetch what they missed from "
            "GET http://HOST:PORT/history?start_ns=A&end_ns=B.\n\n"
            "Example: tradeloop serve-replay examples/data/sample.parquet "
            "--context examples/data/vix.parquet --port 8765 --speed 60"
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    replay.add_argument("data", type=Path, help="bars with signals (.parquet/.csv)")
    replay.add_argument("--context", type=Path, metavar="PATH", help="market-wide series file")
    replay.add_argument("--signals", metavar="A,B", help="signal columns (default: all numeric)")
    replay.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    replay.add_argument("--port", type=int, default=8765, help="port (0 picks a free one)")
    replay.add_argument(
        "--speed",
        type=float,
        default=0.0,
        help="N x real time between bars (0, the default: as fast as possible)",
    )
    replay.add_argument(
        "--live-clock", action="store_true", help="one shared clock, like a venue (see above)"
    )
    replay.add_argument(
        "--batch", action="store_true", help="one 'bars' message per timestamp, not per bar"
    )
    replay.add_argument(
        "--binary",
        action="store_true",
        help="send each timestamp's bars as one binary columnar frame (implies --batch)",
    )
    replay.set_defaults(handler=_serve_replay)

    for name, text in (
        ("paper", "run the paper-trading daemon from a TOML config"),
        ("live", "run against a live venue (needs --confirm-live)"),
    ):
        daemon = commands.add_parser(
            name,
            help=text,
            description=f"{text[0].upper()}{text[1:]}. The config format is documented in "
            "tradeloop/config.py, deploy/paper.toml and deploy/live-binance.toml; "
            "TRADELOOP_<SECTION>_<KEY> environment variables override it, and venue keys come "
            "only from the environment. Every order passes the [risk] gate; 'tradeloop kill' "
            "halts it. Live mode reconciles with the venue before the strategy starts. Logs are "
            "JSON lines on stdout; /healthz, /readyz and /metrics are served on the [health] "
            "port. SIGTERM finishes the bar in hand, writes the state and exits 0.",
        )
        daemon.add_argument("--config", required=True, type=Path, metavar="PATH")
        daemon.add_argument(
            "--confirm-live", action="store_true", help='required when run.mode is "live"'
        )
        daemon.set_defaults(handler=_daemon, daemon=name)

    kill = commands.add_parser(
        "kill",
        help="halt a paper/live daemon's trading (or set reduce-only, or resume)",
        description=(
            "The kill switch. Writes the mode into the daemon's state_dir/control.json; the "
            "running daemon applies it within half a second, and a restarted one at start.\n\n"
            "  halted       cancel every working order and refuse every new one (default)\n"
            "  reduce-only  cancel working orders that add exposure; only reducing orders pass\n"
            "  resume       back to normal trading (overrides a daily-loss stop for the day)\n\n"
            "Protective exits of a RiskManager still close positions in every mode. "
            "SIGUSR1 to the daemon is the same as 'tradeloop kill'.\n\n"
            "Example: tradeloop kill --config deploy/paper.toml --reason 'model drift'"
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    kill.add_argument("--config", required=True, type=Path, metavar="PATH")
    mode = kill.add_mutually_exclusive_group()
    mode.add_argument("--reduce-only", action="store_true", help="reduce-only instead of halt")
    mode.add_argument("--resume", action="store_true", help="clear the kill: trade normally")
    kill.add_argument("--reason", default="tradeloop kill", help="recorded in logs and state")
    kill.set_defaults(handler=_kill)
    return parser


def _add_sweep(commands: Any) -> None:
    sweep = commands.add_parser(
        "sweep",
        help="backtest every combination of strategy parameters (or walk forward)",
        description=_SWEEP_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sweep.add_argument("--data", required=True, type=Path, metavar="PATH", help="bars (.parquet)")
    sweep.add_argument(
        "--strategy",
        required=True,
        metavar="MODULE:CLASS",
        help="strategy class whose constructor takes the grid's names as keyword arguments",
    )
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
    sweep.add_argument("--cash", type=float, default=100_000.0, metavar="N", help="initial cash")
    sweep.add_argument("--commission", type=float, default=0.0, metavar="RATE")
    sweep.add_argument("--slippage", type=float, default=0.0, metavar="FRACTION")
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
    sweep.add_argument("--json", action="store_true", help="print the table as JSON rows")
    sweep.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    sweep.set_defaults(handler=_sweep)


def _sweep(args: argparse.Namespace) -> int:
    import polars as pl

    from tradeloop.data.feed import HistoricalFeed
    from tradeloop.plugins import StrategySpec
    from tradeloop.research import sweep, walk_forward

    if (args.train is None) != (args.test is None):
        raise ConfigError("a walk-forward needs both --train and --test")
    signals = _signal_list(args.signals)
    options: dict[str, Any] = {
        "context": _context(args.context),
        "executor": args.executor,
        "max_workers": args.workers,
        "progress": False if args.no_progress else None,
        "initial_cash": args.cash,
        "commission": args.commission,
        "slippage": args.slippage,
    }
    factory = StrategySpec.resolved(args.strategy)
    grid = _grid(args.grid)
    feed = HistoricalFeed(args.data.resolve(), signal_columns=signals)
    if args.train is None:
        table = sweep(factory, grid, feed, **options)
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
    if args.out is not None:
        args.out.mkdir(parents=True, exist_ok=True)
        for name, frame in frames.items():
            frame.write_parquet(args.out / f"{name}.parquet")
    if args.json:
        print(json.dumps(table.to_dicts(), indent=2, default=str))
        return 0
    with pl.Config(tbl_rows=-1, tbl_cols=-1, tbl_hide_dataframe_shape=True, tbl_width_chars=120):
        print(shown)
    if args.train is not None:
        print(f"out-of-sample total return: {result.total_return:.2%}")
    return 0


def _grid(specs: Sequence[str]) -> dict[str, list[Any]]:
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


def _backtest(args: argparse.Namespace) -> int:
    from tradeloop.data.feed import HistoricalFeed
    from tradeloop.engine import Engine
    from tradeloop.plugins import load_strategy_class

    if args.report is not None and importlib.util.find_spec("plotly") is None:
        raise ConfigError("--report needs plotly: pip install 'tradeloop[report]'")
    strategy_class = load_strategy_class(args.strategy)
    signals = _signal_list(args.signals)
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
    if args.report is not None:
        print(f"report written to {result.report(args.report)}", file=sys.stderr)
    if args.json:
        print(json.dumps(result.to_dict(), indent=2, default=str))
    else:
        print(result.summary())
    return 0


def _signal_list(text: str | None) -> list[str] | None:
    """``--signals A,B`` as a list; None (every numeric column) when not given."""
    return [name.strip() for name in text.split(",") if name.strip()] if text else None


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


def _serve_replay(args: argparse.Namespace) -> int:
    import asyncio

    import structlog

    from tradeloop.logs import configure_logging
    from tradeloop.stream.server import ReplayServer

    configure_logging()
    signals = _signal_list(args.signals)
    server = ReplayServer(
        args.data,
        context=_context(args.context),
        signal_columns=signals,
        speed=args.speed,
        host=args.host,
        port=args.port,
        shared_clock=args.live_clock,
        batched=args.batch,
        binary=args.binary,
    )

    async def serve() -> None:
        import signal

        await server.start()
        structlog.get_logger().info(
            "replay_listening", url=server.url, bars=server.table.n_rows, speed=args.speed
        )
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, stop.set)
        await stop.wait()
        await server.close()

    asyncio.run(serve())
    return 0


def _daemon(args: argparse.Namespace) -> int:
    import asyncio

    from tradeloop.config import load_config
    from tradeloop.logs import configure_logging
    from tradeloop.service.daemon import run_daemon

    configure_logging()
    config = load_config(args.config)
    if args.daemon == "paper" and config.mode != "paper":
        raise ConfigError(f"{args.config}: run.mode is {config.mode!r}; use 'tradeloop live'")
    if args.daemon == "live" and config.mode != "live":
        raise ConfigError(f"{args.config}: run.mode is {config.mode!r}; use 'tradeloop paper'")
    return asyncio.run(run_daemon(config, confirm_live=args.confirm_live))


def _kill(args: argparse.Namespace) -> int:
    from tradeloop.config import load_config
    from tradeloop.service.control import write_control

    config = load_config(args.config)
    mode = "normal" if args.resume else "reduce_only" if args.reduce_only else "halted"
    path = write_control(config.state_dir, mode, args.reason)
    print(f"tradeloop: {mode} ({args.reason}) written to {path}; applied within 0.5 s")
    return 0
