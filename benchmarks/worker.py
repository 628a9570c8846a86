"""One benchmark scenario in a fresh process: ``python benchmarks/worker.py <scenario> [opts]``.

Prints one JSON object on the last line of stdout. ``run.py`` starts one process per scenario
(and per repeat) so that peak RSS belongs to that scenario alone and import time is cold.

Only the standard library is imported at module level: scenario (d) times ``import tradeloop``
itself, and the others import what they need when they start.
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent


def _status_kb(field: str) -> int | None:
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def peak_rss_mb() -> float:
    """Peak resident set of this process (VmHWM; ru_maxrss where /proc is missing).

    VmHWM belongs to this process's own address space; ru_maxrss can carry over the parent's
    high-water mark across fork + exec on Linux, so it is only the fallback.
    """
    kb = _status_kb("VmHWM")
    if kb is None:
        kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return kb / 1024


def rss_mb() -> float:
    kb = _status_kb("VmRSS")
    return (kb or 0) / 1024


# -- tradeloop scenarios ------------------------------------------------------------------------


def _run_engine(frame: Any, signals: list[str], strategy: Any) -> dict[str, Any]:
    """Build the feed and engine around an in-memory frame, run, and time every phase."""
    from tradeloop import Engine
    from tradeloop.data import HistoricalFeed

    rss_data = rss_mb()
    started = time.perf_counter()
    engine = Engine(
        feed=HistoricalFeed(frame, signal_columns=signals),
        strategy=strategy,
        initial_cash=100_000,
        progress=False,
    )
    result = engine.run()
    wall = time.perf_counter() - started
    load = float(result.config["load_seconds"])
    run = float(result.config["run_seconds"])
    n_bars = int(result.config["n_bars"])
    return {
        "n_bars": n_bars,
        "n_assets": int(result.config["n_assets"]),
        "load_s": load,
        "run_s": run,
        "result_s": wall - load - run,
        "total_s": wall,
        "bars_per_s": n_bars / run,
        "bars_per_s_e2e": n_bars / wall,
        "orders": result.orders.height,
        "rejected": result.orders.filter(result.orders["status"] == "rejected").height,
        "fills": result.fills.height,
        "trades": result.trades.height,
        "final_value": float(result["final_value"]),
        "rss_data_mb": rss_data,
        "peak_rss_mb": peak_rss_mb(),
    }


def scenario_threshold(args: argparse.Namespace) -> dict[str, Any]:
    """(a) one asset of minute bars, per-event threshold strategy."""
    import polars as pl

    import data
    from rules import expected_trades
    from strategies import Threshold

    frame = pl.read_parquet(data.minute_path(args.bars))
    if args.prefix:
        frame = frame.head(args.prefix)
    out = _run_engine(frame, ["ml_pred"], Threshold())
    out["expected_trades"] = expected_trades(frame["ml_pred"].to_numpy())
    return out


def scenario_batch(args: argparse.Namespace) -> dict[str, Any]:
    """(b) top-25 rotation over a daily panel through on_timestamp_batch."""
    import polars as pl

    import data
    from strategies import TopNBatch

    frame = pl.read_parquet(data.panel_path(args.assets, args.days))
    return _run_engine(frame, ["score"], TopNBatch(n=25, every=5))


def scenario_batch_events(args: argparse.Namespace) -> dict[str, Any]:
    """(b') the rotation of (b), building per-asset events from each batch."""
    import polars as pl

    import data
    from strategies import TopNBatchEvents

    frame = pl.read_parquet(data.panel_path(args.assets, args.days))
    return _run_engine(frame, ["score"], TopNBatchEvents(n=25, every=5))


def scenario_small(args: argparse.Namespace) -> dict[str, Any]:
    """(s) a 2,520-bar single-asset run, whole ``Engine.run()`` (feed and validation
    included), timed warm: the median of 20 runs in one process after 3 unmeasured ones."""
    import statistics

    import polars as pl

    import data
    from strategies import Threshold
    from tradeloop import Engine
    from tradeloop.data import HistoricalFeed

    frame = pl.read_parquet(data.minute_path(args.bars)).head(2_520)
    seconds = []
    for i in range(23):
        started = time.perf_counter()
        result = Engine(
            feed=HistoricalFeed(frame, signal_columns=["ml_pred"]),
            strategy=Threshold(),
            initial_cash=100_000,
            progress=False,
        ).run()
        if i >= 3:
            seconds.append(time.perf_counter() - started)
    return {
        "n_bars": int(result.config["n_bars"]),
        "total_s": statistics.median(seconds),
        "best_s": min(seconds),
        "samples": seconds,
        "fills": result.fills.height,
        "final_value": float(result["final_value"]),
        "peak_rss_mb": peak_rss_mb(),
    }


def scenario_event(args: argparse.Namespace) -> dict[str, Any]:
    """(c) the same rotation through per-event callbacks."""
    import polars as pl

    import data
    from strategies import TopNEvent

    frame = pl.read_parquet(data.panel_path(args.assets, args.days))
    return _run_engine(frame, ["score"], TopNEvent(args.assets, n=25, every=5))


def scenario_import(args: argparse.Namespace) -> dict[str, Any]:
    """(d) cold ``import tradeloop`` and one Engine build (feed + strategy + broker)."""
    started = time.perf_counter()
    import tradeloop

    imported = time.perf_counter()
    from datetime import UTC, datetime, timedelta

    import polars as pl

    class Noop(tradeloop.Strategy):
        def on_market_event(self, event: Any, context: Any) -> None:
            pass

    t0 = datetime(2024, 1, 1, tzinfo=UTC)
    frame = pl.DataFrame(
        {
            "timestamp": [t0 + timedelta(minutes=i) for i in range(3)],
            "asset_id": ["X"] * 3,
            "open": [1.0, 1.0, 1.0],
            "high": [1.0, 1.0, 1.0],
            "low": [1.0, 1.0, 1.0],
            "close": [1.0, 1.0, 1.0],
            "volume": [1.0, 1.0, 1.0],
            "ml_pred": [0.5, 0.5, 0.5],
        }
    )
    tradeloop.Engine(
        feed=tradeloop.HistoricalFeed(frame, signal_columns=["ml_pred"]),
        strategy=Noop(),
        initial_cash=100_000,
        progress=False,
    )
    built = time.perf_counter()
    return {
        "import_s": imported - started,
        "build_s": built - imported,
        "total_s": built - started,
        "modules": len(sys.modules),
        "pandas_imported": "pandas" in sys.modules,
        "peak_rss_mb": peak_rss_mb(),
    }


# -- backtrader -------------------------------------------------------------------------------


def scenario_backtrader(args: argparse.Namespace) -> dict[str, Any]:
    """(e) backtrader on (a)'s data (or a prefix of it) with the same threshold rule."""
    import backtrader as bt
    import polars as pl

    import data
    from rules import BUY_ABOVE, BUY_PERCENT, SELL_BELOW, expected_trades

    frame = pl.read_parquet(data.minute_path(args.bars))
    if args.prefix:
        frame = frame.head(args.prefix)
    n_bars = frame.height
    expected = expected_trades(frame["ml_pred"].to_numpy())
    pdf = (
        frame.select("timestamp", "open", "high", "low", "close", "volume", "ml_pred")
        .to_pandas()
        .set_index("timestamp")
    )
    del frame

    class MLData(bt.feeds.PandasData):
        lines = ("ml_pred",)
        params = (("ml_pred", -1), ("openinterest", None))

    class BtThreshold(bt.Strategy):
        def __init__(self) -> None:
            self.started_at = 0.0
            self.closed_trades = 0

        def start(self) -> None:
            self.started_at = time.perf_counter()

        def notify_trade(self, trade: Any) -> None:
            if trade.isclosed:
                self.closed_trades += 1

        def next(self) -> None:
            pred = self.data.ml_pred[0]
            size = self.position.size
            if size == 0:
                if pred > BUY_ABOVE:
                    self.order_target_percent(target=BUY_PERCENT)
            elif size > 0 and pred < SELL_BELOW:
                self.close()

    cerebro = bt.Cerebro(stdstats=False)
    cerebro.adddata(
        MLData(dataname=pdf, timeframe=bt.TimeFrame.Minutes, compression=1),
    )
    cerebro.addstrategy(BtThreshold)
    cerebro.broker.setcash(100_000.0)
    rss_data = rss_mb()
    started = time.perf_counter()
    strategy = cerebro.run()[0]
    finished = time.perf_counter()
    load = strategy.started_at - started
    run = finished - strategy.started_at
    return {
        "n_bars": n_bars,
        "load_s": load,
        "run_s": run,
        "result_s": 0.0,
        "total_s": finished - started,
        "bars_per_s": n_bars / run,
        "bars_per_s_e2e": n_bars / (finished - started),
        "trades": strategy.closed_trades,
        "expected_trades": expected,
        "final_value": float(cerebro.broker.getvalue()),
        "rss_data_mb": rss_data,
        "peak_rss_mb": peak_rss_mb(),
        "backtrader_version": bt.__version__,
    }


SCENARIOS: dict[str, Callable[[argparse.Namespace], dict[str, Any]]] = {
    "a": scenario_threshold,
    "b": scenario_batch,
    "B": scenario_batch_events,
    "c": scenario_event,
    "s": scenario_small,
    "d": scenario_import,
    "e": scenario_backtrader,
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("scenario", choices=sorted(SCENARIOS))
    parser.add_argument("--bars", type=int, default=1_000_000, help="minute bars (a, e)")
    parser.add_argument("--prefix", type=int, default=0, help="use only the first N bars (a, e)")
    parser.add_argument("--assets", type=int, default=500, help="panel assets (b, c)")
    parser.add_argument("--days", type=int, default=2_520, help="panel days (b, c)")
    args = parser.parse_args()
    sys.path.insert(0, str(HERE))
    out = SCENARIOS[args.scenario](args)
    out["scenario"] = args.scenario
    print(json.dumps(out))


if __name__ == "__main__":
    main()
