"""Instructions per bar of scenario (a) under callgrind: ``python benchmarks/instructions.py``.

This VM's wall clock drifts by up to 2x between minutes (other sessions share its 2 cores), so
the figure that tracks code changes is the instruction count. Each count is one whole process
(``valgrind --tool=callgrind``) replaying the first N bars of (a)'s data with (a)'s strategy;
the difference between two sizes, over the bars between them, is the marginal cost of a bar
(the loop, its orders and fills, and the result built from them), with interpreter start-up,
imports and fixed costs cancelled out. The same difference of two processes, one reading the
(g) panel (500 × 2,520 days) and one reading, validating and tabling it (``HistoricalFeed``'s
``frame()`` and ``BarTable.from_frame``: the fixed cost of every ``Engine.run``), counts the
load; polars runs on one thread there (``POLARS_MAX_THREADS=1``) so the count does not
depend on how its pool spins. (b) and (b') are counted the same way: each strategy over the
first 100 and the first 300 days of the 500-asset panel, the difference over the 100,000 bars
between (``--no-batch`` skips them). ``--base DIR`` counts another tree's ``src`` too (say
a ``git archive`` of an older commit), for a before/after on the same data. Needs valgrind
(skipped with a note if it is missing). Results: benchmarks/out/instructions.json.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import data  # noqa: E402  (benchmarks/ is a directory of scripts)

CHILD = """
import sys
sys.path.insert(0, {here!r})
import polars as pl
import data
from strategies import Threshold
from tradeloop import Engine, HistoricalFeed
frame = pl.read_parquet(data.minute_path(1_000_000)).head({n})
Engine(feed=HistoricalFeed(frame, signal_columns=["ml_pred"]), strategy=Threshold(),
       initial_cash=100_000, progress=False).run()
"""

BATCH_EVENTS = """
import sys
sys.path.insert(0, {here!r})
import polars as pl
import data
from strategies import TopNBatch, TopNBatchEvents
from tradeloop import Engine, HistoricalFeed
frame = pl.read_parquet(data.panel_path(500, 2_520)).head(500 * {days})
Engine(feed=HistoricalFeed(frame, signal_columns=["score"]), strategy={strategy}(),
       initial_cash=100_000, progress=False).run()
"""

LOAD = """
import sys
sys.path.insert(0, {here!r})
import polars as pl
import data
from tradeloop import HistoricalFeed
from tradeloop.data.bars import BarTable
frame = pl.read_parquet(data.panel_path(500, 2_520))
if {load}:
    BarTable.from_frame(HistoricalFeed(frame, signal_columns=["score"]).frame(), consume=True)
"""


def count(n: int, src: Path | None) -> int:
    """Instructions of one process replaying the first ``n`` bars (callgrind's total)."""
    return _callgrind(CHILD.format(here=str(HERE), n=n), src)


def count_batch_events(
    src: Path | None, small: int = 100, large: int = 300, strategy: str = "TopNBatchEvents"
) -> float:
    """Instructions a bar of (b') (``strategy="TopNBatch"``: of (b)): two processes running
    its strategy over the first ``small`` and ``large`` days of the 500-asset panel, the
    difference over the bars between."""
    script = BATCH_EVENTS.replace("{strategy}", strategy)
    counts = [_callgrind(script.format(here=str(HERE), days=d), src) for d in (small, large)]
    return (counts[1] - counts[0]) / (500 * (large - small))


def count_load(src: Path | None) -> int:
    """Instructions of loading, validating and tabling the (g) panel, process minus process."""
    with_load = _callgrind(LOAD.format(here=str(HERE), load=True), src)
    return with_load - _callgrind(LOAD.format(here=str(HERE), load=False), src)


def _callgrind(script: str, src: Path | None) -> int:
    # One thread for polars and for OpenBLAS (its idle threads spin, and callgrind counts
    # the spinning), and one hash seed: set and dict layouts (and so the counts) otherwise
    # change from process to process.
    env = {
        **os.environ,
        "POLARS_MAX_THREADS": "1",
        "OPENBLAS_NUM_THREADS": "1",
        "PYTHONHASHSEED": "0",
    }
    if src is not None:
        env["PYTHONPATH"] = str(src)  # ahead of the editable install's path entry
    # An uncounted run first, so no counted process compiles and caches numba's functions
    # (their cache is per source tree: the first process of a tree compiles them, hundreds
    # of millions of instructions, enough to hide a change of the per-bar cost when only
    # one size of a difference pays it). Python's own bytecode is compiled by every
    # process here (PYTHONDONTWRITEBYTECODE is set): the same for both sizes.
    subprocess.run([sys.executable, "-c", script], capture_output=True, env=env, check=True)
    with tempfile.TemporaryDirectory() as tmp:
        out = subprocess.run(
            [
                "valgrind",
                "--tool=callgrind",
                f"--callgrind-out-file={tmp}/cg.out",
                sys.executable,
                "-c",
                script,
            ],
            capture_output=True,
            text=True,
            env=env,
            check=True,
        )
    found = re.search(r"Collected : (\d+)", out.stderr)
    if found is None:
        raise SystemExit(f"callgrind printed no total:\n{out.stderr[-2000:]}")
    return int(found.group(1))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--small", type=int, default=20_000)
    parser.add_argument("--large", type=int, default=120_000)
    parser.add_argument("--base", type=Path, help="another tree whose src/ to count as well")
    parser.add_argument("--no-load", action="store_true", help="skip the (g) load count")
    parser.add_argument("--no-batch", action="store_true", help="skip the (b) and (b') counts")
    args = parser.parse_args()
    if shutil.which("valgrind") is None:
        print("valgrind is not installed: no instruction counts (apt-get install valgrind)")
        return
    data.minute_path(1_000_000)
    data.panel_path(500, 2_520)
    trees: dict[str, Path | None] = {"this tree": None}
    if args.base is not None:
        trees[f"base {args.base}"] = args.base / "src"
    results = {}
    for name, src in trees.items():
        small, large = count(args.small, src), count(args.large, src)
        per_bar = (large - small) / (args.large - args.small)
        results[name] = {"small": small, "large": large, "per_bar": per_bar}
        print(
            f"{name}: {per_bar:,.0f} instructions per bar of (a) (callgrind; {args.small:,} bars "
            f"{small:,}, {args.large:,} bars {large:,})",
            flush=True,
        )
        if not args.no_batch:
            batch = count_batch_events(src, strategy="TopNBatch")
            results[name]["per_bar_batch"] = batch
            print(f"{name}: {batch:,.0f} instructions per bar of (b) (500 x 100 vs 300 days)")
            batch = count_batch_events(src)
            results[name]["per_bar_batch_events"] = batch
            print(f"{name}: {batch:,.0f} instructions per bar of (b') (500 x 100 vs 300 days)")
        if not args.no_load:
            load = count_load(src)
            results[name]["load_g"] = load
            print(f"{name}: {load:,} instructions to load and validate (g)'s panel", flush=True)
    data.OUT.mkdir(parents=True, exist_ok=True)
    (data.OUT / "instructions.json").write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
