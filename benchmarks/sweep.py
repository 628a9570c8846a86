"""Sweep benchmark (``make bench``): 64 and 1,000 combinations over 500 assets × 2,520 days.

The strategy is the declarative ``SignalStrategy`` of (g) in BENCHMARKS.md (compiled numba
kernel): enter when ``score`` > ``entry``, exit when ``score`` < ``exit`` or at a
``stop`` loss, 4 % of equity per position; the grid is 4 entries × 4 exits × 4 stops.

Each configuration times one whole ``tradeloop.sweep(...)`` call, wall clock: in this
process (``inline``), on a local process pool of 1 and 2 workers (process start-up and each
worker's one read of the parquet file included), and on a Dask ``LocalCluster`` of 1 and 2
worker processes (the cluster is started before the clock: a cluster outlives sweeps; the
scatter and each worker's read are included). Repetitions are interleaved across the
configurations, so a slow minute of this VM hits them all alike; the table shows the median
and the best. Every configuration must return the identical table. Then, once each: the
1,000-combination grid on the local pool of 2 workers, and vectorbt's
``Portfolio.from_signals`` on the 64-combination grid with parameter broadcasting (every
combination's 500 columns side by side, one group with shared cash per combination, the
stop as ``sl_stop``; its numba kernels compiled on a two-combination call first), for a
ratio. Targets (issue 14): 64 combinations inline floor 10 s / goal 4 s, on 2 workers
floor 6 s / goal 2.5 s; 1,000 combinations on 2 workers floor 90 s / goal 30 s.
``--quick``: a small panel and 8 combinations, one repetition (a smoke test). Results:
benchmarks/out/sweep.json.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import polars as pl  # noqa: E402

import data  # noqa: E402  (benchmarks/ is a directory of scripts)
from tradeloop import PercentSizer, Rule, SignalStrategy, sweep  # noqa: E402

GRID = {
    "entry": [1.0, 1.25, 1.5, 1.75],
    "exit": [-0.5, -0.25, 0.0, 0.25],
    "stop": [0.05, 0.10, 0.15, 0.20],
}
QUICK_GRID = {"entry": [1.25, 1.5], "exit": [-0.25, 0.0], "stop": [0.05, 0.10]}
BIG_GRID = {
    "entry": [1.0 + 0.1 * i for i in range(10)],
    "exit": [-0.5 + 0.1 * i for i in range(10)],
    "stop": [0.03 + 0.02 * i for i in range(10)],
}
TARGETS = {"inline": (10.0, 4.0), "pool 2": (6.0, 2.5), "1,000 on pool 2": (90.0, 30.0)}
SPEEDUP_OVER = {"pool 2": "pool 1", "dask 2": "dask 1"}


def panel_strategy(entry: float, exit: float, stop: float) -> SignalStrategy:
    """The swept strategy (module level, so worker processes can import it)."""
    return SignalStrategy(
        entry_rules=[Rule.signal_above("score", entry), Rule.not_in_position()],
        exit_rules=[Rule.signal_below("score", exit), Rule.stop_loss(stop)],
        position_sizer=PercentSizer(0.04),
    )


def _time_sweep(grid: dict[str, list[float]], path: Path, **options: Any) -> tuple[float, Any]:
    started = time.perf_counter()
    table = sweep(panel_strategy, grid, path, progress=False, **options)
    return time.perf_counter() - started, table


def _vectorbt(path: Path, grid: dict[str, list[float]]) -> dict[str, Any]:
    """vectorbt on the same grid in one broadcast call (see the module docstring)."""
    from itertools import product

    import numpy as np
    import vectorbt as vbt

    frame = pl.read_parquet(path)
    wide = {
        c: frame.pivot(on="asset_id", index="timestamp", values=c).drop("timestamp").to_numpy()
        for c in ("open", "close", "score")
    }
    # decided at a close, filled at the next open: the signal shifted one bar, priced at the open
    score = np.full_like(wide["score"], np.nan)
    score[1:] = wide["score"][:-1]
    combos = list(product(grid["entry"], grid["exit"], grid["stop"]))

    def run(chosen: list[tuple[float, float, float]]) -> Any:
        n, assets = len(chosen), score.shape[1]
        entries = np.concatenate([score > e for e, _, _ in chosen], axis=1)
        exits = np.concatenate([score < x for _, x, _ in chosen], axis=1)
        stops = np.repeat([s for _, _, s in chosen], assets)[None, :]
        portfolio = vbt.Portfolio.from_signals(
            np.tile(wide["close"], (1, n)),
            entries,
            exits,
            price=np.tile(wide["open"], (1, n)),
            size=0.04,
            size_type="percent",
            sl_stop=stops,
            init_cash=100_000.0,
            cash_sharing=True,
            group_by=np.repeat(np.arange(n), assets),
            freq="1D",
        )
        return portfolio.sharpe_ratio()

    started = time.perf_counter()
    run(combos[:2])  # compiles vectorbt's numba kernels (several groups, as below)
    compile_s = time.perf_counter() - started
    started = time.perf_counter()
    sharpe = run(combos)
    seconds = time.perf_counter() - started
    return {
        "seconds": seconds,
        "compile_s": compile_s,
        "n_runs": len(combos),
        "groups": len(sharpe),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--assets", type=int, default=500)
    parser.add_argument("--days", type=int, default=2_520)
    parser.add_argument("--no-dask", action="store_true", help="local pool only")
    parser.add_argument("--no-vectorbt", action="store_true", help="skip the vectorbt ratio")
    args = parser.parse_args()
    grid = GRID
    big = BIG_GRID
    if args.quick:
        args.assets, args.days, args.repeat, grid = 50, 252, 1, QUICK_GRID
        big = {"entry": BIG_GRID["entry"][:5], "exit": BIG_GRID["exit"][:4], "stop": [0.05]}
    path = data.panel_path(args.assets, args.days)
    n_runs = len(grid["entry"]) * len(grid["exit"]) * len(grid["stop"])
    one = {name: values[:1] for name, values in grid.items()}
    _time_sweep(one, path, executor="inline")  # compile the kernel into the on-disk cache

    clusters: dict[str, Any] = {}
    if not args.no_dask:
        os.environ.setdefault("DASK_LOGGING__DISTRIBUTED", "warning")  # workers inherit it
        from distributed import Client, LocalCluster

        for n in (1, 2):
            cluster = LocalCluster(
                n_workers=n,
                threads_per_worker=1,
                processes=True,
                host="127.0.0.1",
                dashboard_address=None,
                # scheduler HTTP endpoints (health, metrics) on a free loopback port, not :8787
                scheduler_kwargs={"dashboard_address": "127.0.0.1:0"},
            )
            clusters[f"dask {n}"] = (cluster, Client(cluster, set_as_default=False))
    configs: dict[str, dict[str, Any]] = {
        "inline": {"executor": "inline"},
        "pool 1": {"max_workers": 1},
        "pool 2": {"max_workers": 2},
        **{name: {"executor": client} for name, (_, client) in clusters.items()},
    }
    times: dict[str, list[float]] = {name: [] for name in configs}
    tables: dict[str, Any] = {}
    try:
        for _ in range(args.repeat):
            for name, options in configs.items():
                seconds, tables[name] = _time_sweep(grid, path, **options)
                times[name].append(seconds)
                print(f"  {name:7s} {seconds:7.1f} s", flush=True)
    finally:
        for cluster, client in clusters.values():
            client.close()
            cluster.close()
    n_big = len(big["entry"]) * len(big["exit"]) * len(big["stop"])
    big_s, _ = _time_sweep(big, path, max_workers=2)
    print(f"  {n_big} combinations on pool 2: {big_s:.1f} s", flush=True)
    vbt = None if args.no_vectorbt else _vectorbt(path, grid)
    reference = tables["inline"]
    for name, table in tables.items():
        assert table.equals(reference), f"{name} returned a different table than inline"

    bars = args.assets * args.days
    print(
        f"\n{n_runs} runs × {bars:,} bars ({args.assets} assets × {args.days} days), "
        f"{os.cpu_count()} CPUs, median of {args.repeat} (best)"
    )
    print(f"{'executor':9s} {'median s':>9s} {'best s':>8s} {'runs/s':>7s} {'speed-up':>9s}")
    results: dict[str, Any] = {"n_runs": n_runs, "n_bars": bars, "repeat": args.repeat}
    for name, samples in times.items():
        median = statistics.median(samples)
        base = statistics.median(times[SPEEDUP_OVER[name]]) if name in SPEEDUP_OVER else None
        speedup = f"{base / median:8.2f}x" if base is not None else ""
        print(f"{name:9s} {median:9.1f} {min(samples):8.1f} {n_runs / median:7.2f} {speedup:>9s}")
        results[name] = {"median_s": median, "best_s": min(samples), "samples_s": samples}
        if base is not None:
            results[name]["speedup_vs_1"] = base / median
    results[f"{n_big} on pool 2"] = {"seconds": big_s, "runs_per_s": n_big / big_s}
    print(
        f"{n_big} combinations, local pool of 2 workers: {big_s:.1f} s ({n_big / big_s:.1f} runs/s)"
    )
    for name, (floor, goal) in TARGETS.items():
        key = name if name in results else f"{n_big} on pool 2"
        if args.quick or key not in results:
            continue
        got = results[key].get("median_s", results[key].get("seconds"))
        verdict = (
            f"floor {'PASS' if got <= floor else 'MISS'}, goal {'PASS' if got <= goal else 'MISS'}"
        )
        results[key]["verdict"] = verdict
        print(f"  {name}: {got:.1f} s vs floor {floor:g} s / goal {goal:g} s: {verdict}")
    if vbt is not None:
        results["vectorbt"] = vbt
        inline = results["inline"]["median_s"]
        print(
            f"vectorbt 1.2.0 from_signals, {vbt['n_runs']} combinations broadcast in one call: "
            f"{vbt['seconds']:.1f} s (after {vbt['compile_s']:.1f} s compiling); tradeloop inline "
            f"{inline:.1f} s = {vbt['seconds'] / inline:.2f}x vectorbt's speed"
        )
    scored = reference.filter(pl.col("sharpe").is_not_nan())
    best = scored.sort("sharpe", descending=True).row(0, named=True)
    print(
        f"best combination by sharpe: entry {best['entry']}, exit {best['exit']}, "
        f"stop {best['stop']}: sharpe {best['sharpe']:.2f}, {best['n_trades']:.0f} trades"
    )
    data.OUT.mkdir(parents=True, exist_ok=True)
    (data.OUT / "sweep.json").write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
