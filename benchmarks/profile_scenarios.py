"""Where the time goes in scenarios (a) and (c): ``python benchmarks/profile_scenarios.py``.

Runs each scenario's ``Engine.run()`` under cProfile (exact call counts, inflated per-call
cost) and, if it is installed, pyinstrument (sampling, little overhead), and writes the
reports to benchmarks/out/profile_<scenario>_{cprofile,pyinstrument}.txt. Prints the top
functions by own time. ``--bars``/``--days`` shrink the data for a faster look.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import pstats
import sys
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import polars as pl  # noqa: E402

import data  # noqa: E402
from strategies import Threshold, TopNBatch, TopNEvent  # noqa: E402
from tradeloop import Engine  # noqa: E402
from tradeloop.data import HistoricalFeed  # noqa: E402


def engine(scenario: str, args: argparse.Namespace) -> Engine:
    if scenario == "a":
        frame = pl.read_parquet(data.minute_path(1_000_000)).head(args.bars)
        return Engine(
            feed=HistoricalFeed(frame, signal_columns=["ml_pred"]),
            strategy=Threshold(),
            initial_cash=100_000,
            progress=False,
        )
    frame = pl.read_parquet(data.panel_path(500, 2_520))
    frame = frame.filter(pl.col("timestamp") <= frame["timestamp"].unique().sort()[args.days - 1])
    strategy: Any = TopNEvent(500) if scenario == "c" else TopNBatch()
    return Engine(
        feed=HistoricalFeed(frame, signal_columns=["score"]),
        strategy=strategy,
        initial_cash=100_000,
        progress=False,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("scenarios", nargs="*", default=["a", "c"], choices=["a", "b", "c"])
    parser.add_argument("--bars", type=int, default=1_000_000, help="(a): first N minute bars")
    parser.add_argument("--days", type=int, default=2_520, help="(b, c): first N days")
    parser.add_argument("--top", type=int, default=25)
    args = parser.parse_args()
    for scenario in args.scenarios:
        profiler = cProfile.Profile()
        run = engine(scenario, args)
        profiler.enable()
        run.run()
        profiler.disable()
        text = io.StringIO()
        stats = pstats.Stats(profiler, stream=text).strip_dirs()
        stats.sort_stats("tottime").print_stats(args.top)
        stats.sort_stats("cumulative").print_stats(args.top)
        path = data.OUT / f"profile_{scenario}_cprofile.txt"
        path.write_text(text.getvalue())
        print(f"== ({scenario}) cProfile, by own time ({path})")
        print(text.getvalue().split("Ordered by: cumulative")[0])
        try:
            from pyinstrument import Profiler
        except ImportError:
            print("(pyinstrument not installed: pip install pyinstrument for a sampling profile)")
            continue
        sampler = Profiler(interval=0.001)
        run = engine(scenario, args)
        sampler.start()
        run.run()
        sampler.stop()
        report = sampler.output_text(unicode=False, color=False, show_all=False)
        path = data.OUT / f"profile_{scenario}_pyinstrument.txt"
        path.write_text(report)
        print(f"== ({scenario}) pyinstrument ({path})")
        print(report)


if __name__ == "__main__":
    main()
