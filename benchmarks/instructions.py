"""Instructions per bar of scenario (a) under callgrind: ``python benchmarks/instructions.py``.

This VM's wall clock drifts by up to 2x between minutes (other sessions share its 2 cores), so
the figure that tracks code changes is the instruction count. Each count is one whole process
(``valgrind --tool=callgrind``) replaying the first N bars of (a)'s data with (a)'s strategy;
the difference between two sizes, over the bars between them, is the marginal cost of a bar
(the loop, its orders and fills, and the result built from them), with interpreter start-up,
imports and fixed costs cancelled out. ``--base DIR`` counts another tree's ``src`` too (say
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


def count(n: int, src: Path | None) -> int:
    """Instructions of one process replaying the first ``n`` bars (callgrind's total)."""
    env = dict(os.environ)
    if src is not None:
        env["PYTHONPATH"] = str(src)  # ahead of the editable install's path entry
    with tempfile.TemporaryDirectory() as tmp:
        out = subprocess.run(
            [
                "valgrind",
                "--tool=callgrind",
                f"--callgrind-out-file={tmp}/cg.out",
                sys.executable,
                "-c",
                CHILD.format(here=str(HERE), n=n),
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
    args = parser.parse_args()
    if shutil.which("valgrind") is None:
        print("valgrind is not installed: no instruction counts (apt-get install valgrind)")
        return
    data.minute_path(1_000_000)
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
    data.OUT.mkdir(parents=True, exist_ok=True)
    (data.OUT / "instructions.json").write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
