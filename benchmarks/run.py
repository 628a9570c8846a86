"""tradeloop benchmarks: ``python benchmarks/run.py [--quick]`` (``make bench`` runs it in full).

Scenarios, each in its own fresh process (see ``worker.py``) so peak RSS and import time are
that scenario's alone:

  (a) 1 asset × 1,000,000 minute bars, per-event threshold strategy   floor 300k, goal 1M bars/s;
                                                                       RSS floor 350, goal 250 MB
  (b) 500 assets × 2,520 days, top-25 rotation via on_timestamp_batch floor 2M, goal 4M bars/s;
                                                                       RSS floor 330, goal 250 MB
  (B) (b') the same rotation building per-asset events from the batch floor 1M, goal 2M bars/s
  (c) the same rotation via per-event callbacks                       floor 400k, goal 1M bars/s
  (s) a 2,520-bar single-asset run, whole Engine.run(), warm          floor 20 ms, goal 5 ms
  (d) cold ``import tradeloop`` + one Engine build                    target ≤ 0.5 s
  (e) backtrader on (a)'s data with the same rule, and the tradeloop/backtrader speed ratio

Targets (issue 14): "floor" is the least a row must reach, "goal" what it aims at; a row says
PASS/MISS for each.

"bars/s" is bars ÷ the engine's ``run_seconds`` (the replay loop: every callback, order and
fill); "e2e bars/s" is bars ÷ the whole ``Engine.run()`` (validation and load + replay +
building the result frames). Targets are checked against the median of ``--repeat`` runs
(default 5; the speed of a small VM drifts between runs, so the best run is shown too).
``--quick`` runs every scenario at 1/20 size, once, as a smoke test; its figures are
indicative only. Results are also written to benchmarks/out/results.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import data  # noqa: E402  (benchmarks/ is a directory of scripts, not a package)

WORKER = HERE / "worker.py"


@dataclass(frozen=True)
class Sizes:
    bars: int
    assets: int
    days: int
    bt_bars: int


FULL = Sizes(bars=1_000_000, assets=500, days=2_520, bt_bars=1_000_000)
QUICK = Sizes(bars=50_000, assets=500, days=126, bt_bars=50_000)


def worker(scenario: str, *options: str) -> dict[str, Any]:
    """Run one scenario in a fresh interpreter; its result is the last line of stdout."""
    command = [sys.executable, str(WORKER), scenario, *options]
    started = time.perf_counter()
    proc = subprocess.run(command, capture_output=True, text=True, check=False, cwd=HERE.parent)
    elapsed = time.perf_counter() - started
    if proc.returncode != 0:
        sys.stderr.write(proc.stdout + proc.stderr)
        raise SystemExit(f"scenario {scenario} failed (exit {proc.returncode}): {command}")
    out: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    out["process_s"] = elapsed
    return out


def repeated(n: int, scenario: str, *options: str, key: str = "run_s") -> dict[str, Any]:
    """Run ``n`` times; keep the median run (by ``key``) and every sample."""
    runs = []
    for i in range(n):
        print(f"  {scenario} run {i + 1}/{n} ...", file=sys.stderr, flush=True)
        runs.append(worker(scenario, *options))
    runs.sort(key=lambda r: r[key])
    median = dict(runs[(len(runs) - 1) // 2])
    median["samples"] = [r[key] for r in runs]
    median["peak_rss_mb_max"] = max(r["peak_rss_mb"] for r in runs)
    if "n_bars" in median:
        median["bars_per_s_best"] = median["n_bars"] / runs[0][key]
    return median


def machine() -> dict[str, Any]:
    import numpy
    import polars

    model = "unknown"
    try:
        lscpu = subprocess.run(["lscpu"], capture_output=True, text=True, check=False).stdout
        for line in lscpu.splitlines():
            if line.startswith("Model name:"):
                model = line.split(":", 1)[1].strip()
    except OSError:
        pass
    mem_gib = float("nan")
    try:
        with open("/proc/meminfo", encoding="ascii") as meminfo:
            for line in meminfo:
                if line.startswith("MemTotal:"):
                    mem_gib = int(line.split()[1]) / 1024**2
    except OSError:
        pass
    try:
        from importlib.metadata import version

        backtrader = version("backtrader")
    except Exception:
        backtrader = "not installed"
    try:
        head = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            check=False,
            cwd=HERE.parent,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--", "src"],
            capture_output=True,
            text=True,
            check=False,
            cwd=HERE.parent,
        ).stdout.strip()
        commit = f"{head}{' + uncommitted src changes' if dirty else ''}" if head else "unknown"
    except OSError:
        commit = "unknown"
    return {
        "commit": commit,
        "cpu": model,
        "cores": os.cpu_count(),
        "mem_gib": round(mem_gib, 1),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "polars": polars.__version__,
        "numpy": numpy.__version__,
        "backtrader": backtrader,
    }


def loadavg() -> str:
    try:
        with open("/proc/loadavg", encoding="ascii") as f:
            return " ".join(f.read().split()[:3])
    except OSError:
        return "unknown"


def status(ok: bool | None) -> str:
    return "n/a" if ok is None else ("PASS" if ok else "MISS")


def main() -> None:
    parser = argparse.ArgumentParser(description="tradeloop benchmarks")
    parser.add_argument("--quick", action="store_true", help="1/20 sizes, one run each")
    parser.add_argument("--repeat", type=int, help="runs per tradeloop scenario (default 5)")
    parser.add_argument(
        "--only", default="abBcsde", help="scenarios to run, e.g. --only ab (default abBcsde)"
    )
    parser.add_argument(
        "--bt-bars",
        type=int,
        help="bars for backtrader (a prefix of (a)'s data; default: all of them)",
    )
    parser.add_argument("--json", type=Path, default=data.OUT / "results.json")
    args = parser.parse_args()
    sizes = QUICK if args.quick else FULL
    repeat = args.repeat or (1 if args.quick else 5)
    bt_bars = min(args.bt_bars or sizes.bt_bars, sizes.bars)
    only = set(args.only)

    info = machine()
    print(
        f"tradeloop benchmarks ({'quick, 1/20 size' if args.quick else 'full'}); "
        f"{info['cpu']}, {info['cores']} cores, {info['mem_gib']} GiB, Python {info['python']}, "
        f"polars {info['polars']}, numpy {info['numpy']}, backtrader {info['backtrader']}; "
        f"tradeloop at {info['commit']}",
        flush=True,
    )
    load_before = loadavg()
    t = time.perf_counter()
    if only & {"a", "e"}:
        data.minute_path(sizes.bars)
    if only & {"b", "B", "c"}:
        data.panel_path(sizes.assets, sizes.days)
    print(f"data ready in {time.perf_counter() - t:.1f} s ({data.OUT})", file=sys.stderr)

    minute = ["--bars", str(sizes.bars)]
    panel = ["--assets", str(sizes.assets), "--days", str(sizes.days)]
    results: dict[str, Any] = {}
    if "a" in only:
        results["a"] = repeated(repeat, "a", *minute)
    if "b" in only:
        results["b"] = repeated(repeat, "b", *panel)
    if "B" in only:
        results["B"] = repeated(repeat, "B", *panel)
    if "c" in only:
        results["c"] = repeated(repeat, "c", *panel)
    if "s" in only:
        results["s"] = repeated(max(repeat, 3), "s", *minute, key="total_s")
    if "d" in only:
        results["d"] = repeated(max(repeat, 5), "d", key="total_s")
    if "e" in only:
        prefix = ["--prefix", str(bt_bars)] if bt_bars < sizes.bars else []
        results["e"] = worker("e", *minute, *prefix)
        if prefix:  # tradeloop on the very same prefix, for the like-for-like ratio and trades
            results["e_tradeloop"] = repeated(repeat, "a", *minute, *prefix)
        elif "a" in results:
            results["e_tradeloop"] = results["a"]
        else:
            results["e_tradeloop"] = repeated(repeat, "a", *minute)

    info["loadavg_before"], info["loadavg_after"] = load_before, loadavg()
    report(results, sizes, args.quick, info)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    payload = {
        "quick": args.quick,
        "repeat": repeat,
        "sizes": sizes.__dict__ | {"bt_bars": bt_bars},
        "machine": info,
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "results": results,
    }
    args.json.write_text(json.dumps(payload, indent=2) + "\n")
    print(f"\nwrote {args.json}")


def report(results: dict[str, Any], sizes: Sizes, quick: bool, info: dict[str, Any]) -> None:
    rows: list[tuple[str, ...]] = []
    header = (
        "scenario",
        "bars",
        "load s",
        "run s",
        "result s",
        "bars/s",
        "best bars/s",
        "e2e bars/s",
        "peak RSS MB",
        "target",
        "",
    )
    labels = {
        "a": f"(a) 1 asset x {sizes.bars:,} min, per-event",
        "b": f"(b) {sizes.assets} x {sizes.days:,} days, batch top-25",
        "B": f"(b') {sizes.assets} x {sizes.days:,} days, batch as events",
        "c": f"(c) {sizes.assets} x {sizes.days:,} days, per-event top-25",
    }
    # (floor, goal) bars/s, and (floor, goal) peak RSS MB where the issue sets one
    speed = {
        "a": (300_000, 1_000_000),
        "b": (2_000_000, 4_000_000),
        "B": (1_000_000, 2_000_000),
        "c": (400_000, 1_000_000),
    }
    memory = {"a": (350, 250), "b": (330, 250)}
    for key in ("a", "b", "B", "c"):
        if key not in results:
            continue
        r = results[key]
        floor, goal = speed[key]
        fast = r["bars_per_s"]
        checks = [f"speed floor {status(fast >= floor)}, goal {status(fast >= goal)}"]
        target = f"≥ {floor:,} (goal {goal:,}) bars/s"
        if key in memory:
            rss_floor, rss_goal = memory[key]
            peak = r["peak_rss_mb_max"]
            target += f"; ≤ {rss_floor} (goal {rss_goal}) MB"
            checks.append(f"RSS floor {status(peak <= rss_floor)}, goal {status(peak <= rss_goal)}")
        r["target"] = target
        r["meets_target"] = r["bars_per_s"] >= floor
        r["verdict"] = "; ".join(checks)
        rows.append(
            (
                labels[key],
                f"{r['n_bars']:,}",
                f"{r['load_s']:.2f}",
                f"{r['run_s']:.2f}",
                f"{r['result_s']:.2f}",
                f"{r['bars_per_s']:,.0f}",
                f"{r['bars_per_s_best']:,.0f}",
                f"{r['bars_per_s_e2e']:,.0f}",
                f"{r['peak_rss_mb_max']:.0f}",
                target,
                r["verdict"],
            )
        )
    if "s" in results:
        r = results["s"]
        ms = r["total_s"] * 1000
        r["target"] = "≤ 20 ms (goal 5 ms)"
        r["meets_target"] = ms <= 20
        r["verdict"] = f"floor {status(ms <= 20)}, goal {status(ms <= 5)}"
        rows.append(
            (
                "(s) 2,520 bars, 1 asset, whole Engine.run",
                f"{r['n_bars']:,}",
                "-",
                f"{r['total_s']:.4f}",
                "-",
                "-",
                "-",
                f"{r['n_bars'] / r['total_s']:,.0f}",
                f"{r['peak_rss_mb']:.0f}",
                r["target"],
                r["verdict"],
            )
        )
    if "d" in results:
        r = results["d"]
        r["target"] = "≤ 0.5 s"
        r["meets_target"] = r["total_s"] <= 0.5
        rows.append(
            (
                "(d) import tradeloop + Engine build",
                "-",
                f"{r['import_s']:.3f}",
                f"{r['build_s']:.3f}",
                "-",
                "-",
                "-",
                "-",
                f"{r['peak_rss_mb']:.0f}",
                f"≤ 0.5 s (got {r['total_s']:.3f} s)",
                status(r["meets_target"]),
            )
        )
    if "e" in results:
        r = results["e"]
        prefix = "" if r["n_bars"] == sizes.bars else " (prefix)"
        rows.append(
            (
                f"(e) backtrader, (a) data{prefix}",
                f"{r['n_bars']:,}",
                f"{r['load_s']:.2f}",
                f"{r['run_s']:.2f}",
                "-",
                f"{r['bars_per_s']:,.0f}",
                "-",
                f"{r['bars_per_s_e2e']:,.0f}",
                f"{r['peak_rss_mb']:.0f}",
                "(reference)",
                "",
            )
        )
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    right = {1, 2, 3, 4, 5, 6, 7, 8}

    def line(row: tuple[str, ...]) -> str:
        cells = [
            cell.rjust(widths[i]) if i in right else cell.ljust(widths[i])
            for i, cell in enumerate(row)
        ]
        return "  ".join(cells).rstrip()

    print()
    print(line(header))
    print("  ".join("-" * w for w in widths))
    for row in rows:
        print(line(row))
    print(
        "\nbars/s = bars / run_seconds (replay loop), median of the runs (targets are checked "
        "on it); best = fastest run;\ne2e = bars / whole Engine.run() (load + replay + "
        "result), median run. (d): load s = import, run s = Engine build, median of 5."
    )
    if quick:
        print("quick mode: 1/20 sizes, one run each; compare with targets only on a full run")

    notes = []
    for key in ("a", "b", "B", "c"):
        if key in results:
            r = results[key]
            spread = ", ".join(f"{s:.2f}" for s in r["samples"])
            notes.append(
                f"({key}) run_s samples [{spread}]; orders {r['orders']:,} "
                f"(rejected {r['rejected']}), fills {r['fills']:,}, round trips {r['trades']:,}, "
                f"final value {r['final_value']:,.2f}; RSS with data loaded, before the engine: "
                f"{r['rss_data_mb']:.0f} MB"
            )
    if "a" in results:
        r = results["a"]
        agree = "agrees" if r["trades"] == r["expected_trades"] else "DISAGREES"
        notes.append(
            f"(a) round trips {r['trades']:,} vs {r['expected_trades']:,} from replaying the rule "
            f"by hand: {agree}"
        )
    if "b" in results and "c" in results:
        b, c = results["b"], results["c"]
        same = b["orders"] == c["orders"] and abs(b["final_value"] - c["final_value"]) < 1e-6
        notes.append(
            f"(b) vs (c): {'identical' if same else 'DIFFERENT'} orders and final value "
            f"(per-event is {b['bars_per_s'] / c['bars_per_s']:.1f}x slower than batch)"
        )
    if "s" in results:
        r = results["s"]
        spread = ", ".join(f"{x * 1000:.1f}" for x in r["samples"])
        notes.append(
            f"(s) medians of 20 warm runs per process [{spread}] ms; best {r['best_s'] * 1000:.1f} "
            f"ms; {r['fills']} fills, final value {r['final_value']:,.2f}"
        )
    if "b" in results and "B" in results:
        b, bb = results["b"], results["B"]
        same = b["orders"] == bb["orders"] and abs(b["final_value"] - bb["final_value"]) < 1e-6
        notes.append(f"(b) vs (b'): {'identical' if same else 'DIFFERENT'} orders and final value")
    if "d" in results:
        r = results["d"]
        spread = ", ".join(f"{s:.3f}" for s in r["samples"])
        notes.append(
            f"(d) import+build samples [{spread}] s; whole process incl. interpreter start "
            f"{r['process_s']:.2f} s; {r['modules']} modules loaded, pandas imported: "
            f"{r['pandas_imported']}"
        )
    if "e" in results:
        bt, tl = results["e"], results["e_tradeloop"]
        ratio_run = tl["bars_per_s"] / bt["bars_per_s"]
        ratio_e2e = tl["bars_per_s_e2e"] / bt["bars_per_s_e2e"]
        bt["ratio_run"] = ratio_run
        bt["ratio_e2e"] = ratio_e2e
        scope = (
            "all bars"
            if bt["n_bars"] == sizes.bars
            else f"a {bt['n_bars']:,}-bar prefix of the {sizes.bars:,} bars (backtrader too slow "
            "for all of them), both engines on the same prefix"
        )
        trades_agree = bt["trades"] == tl["trades"]
        close = abs(bt["final_value"] - tl["final_value"]) <= 1e-6 * abs(tl["final_value"])
        bt["trades_agree"] = trades_agree
        notes += [
            f"(e) backtrader {info['backtrader']} on {scope}: {bt['bars_per_s_e2e']:,.0f} bars/s "
            f"end to end ({bt['load_s']:.1f} s PandasData preload + {bt['run_s']:.1f} s "
            f"strategy loop = {bt['bars_per_s']:,.0f} bars/s)",
            f"(e) tradeloop / backtrader: {ratio_e2e:.1f}x end to end, {ratio_run:.1f}x "
            "replay loop only",
            f"(e) round trips: backtrader {bt['trades']:,}, tradeloop {tl['trades']:,}, rule "
            f"{bt['expected_trades']:,} -> {'agree' if trades_agree else 'DISAGREE'}; final "
            f"value backtrader {bt['final_value']:,.2f} vs tradeloop {tl['final_value']:,.2f} "
            f"({'same' if close else 'different'})",
        ]
    notes.append(
        f"load average (1/5/15 min) before {info['loadavg_before']}, after "
        f"{info['loadavg_after']} on {info['cores']} cores: other work on the machine "
        "inflates run times"
    )
    print()
    for note in notes:
        print(note)


if __name__ == "__main__":
    main()
