"""The seed examples in examples/seeds/ run as scripts and print what the seeds promise.

Each example runs once per module in a fresh subprocess (this interpreter, ``-W error`` to
match pytest's filterwarnings), with cwd = a temporary directory and TRADELOOP_EXAMPLES_DIR =
a ``work`` directory inside it. Where an example's numbers can be worked out by hand, the
expected value is computed in the test from the example's data, independently of tradeloop.
"""

from __future__ import annotations

import math
import os
import re
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

EXAMPLES_DIR = Path(__file__).resolve().parents[2] / "examples" / "seeds"
EXAMPLES = sorted(EXAMPLES_DIR.glob("*.py"))
EXPECTED = {
    "advanced_patterns",
    "complete_example",
    "multi_asset_context",
    "quick_start",
    "user_journey",
    "vix_filtered_single_asset",
}
# Files each example writes (all into TRADELOOP_EXAMPLES_DIR, never into the repository).
WRITES = {
    "complete_example": {"ml_data.parquet"},
    "quick_start": {"ml_data.parquet"},
    "user_journey": {"aapl_daily_2020_2023.parquet"},
    "vix_filtered_single_asset": {"aapl_daily.parquet", "vix_daily.parquet"},
}
MAX_SECONDS = 20.0


@dataclass(frozen=True)
class Run:
    name: str
    returncode: int
    stdout: str
    stderr: str
    seconds: float
    cwd: Path
    workdir: Path


def _run(path: Path, cwd: Path, workdir: Path | None) -> Run:
    env = {k: v for k, v in os.environ.items() if k != "TRADELOOP_EXAMPLES_DIR"}
    if workdir is not None:
        workdir.mkdir()
        env["TRADELOOP_EXAMPLES_DIR"] = str(workdir)
    started = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-W", "error", str(path)],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    return Run(
        path.stem,
        proc.returncode,
        proc.stdout,
        proc.stderr,
        time.perf_counter() - started,
        cwd,
        workdir if workdir is not None else cwd,
    )


@pytest.fixture(scope="module")
def run_example(tmp_path_factory: pytest.TempPathFactory) -> Callable[[str], Run]:
    """Run an example by name (once per module) and return what it did."""
    runs: dict[str, Run] = {}

    def run(name: str) -> Run:
        if name not in runs:
            cwd = tmp_path_factory.mktemp(name)
            runs[name] = _run(EXAMPLES_DIR / f"{name}.py", cwd, cwd / "work")
        return runs[name]

    return run


def assert_ran(run: Run) -> None:
    """Exit code 0, with stderr shown if not."""
    assert run.returncode == 0, f"{run.name} exited {run.returncode}:\n{run.stderr}"


def number(pattern: str, text: str) -> float:
    """The number captured by ``pattern`` in ``text`` (thousands separators allowed)."""
    found = re.search(pattern, text)
    assert found, f"{pattern!r} not in output:\n{text}"
    value = float(found.group(1).replace(",", ""))
    assert math.isfinite(value)
    return value


def test_seed_examples_directory_holds_every_seed_example() -> None:
    assert {path.stem for path in EXAMPLES} >= EXPECTED


@pytest.mark.parametrize("path", EXAMPLES, ids=[path.stem for path in EXAMPLES])
def test_seed_example_run_as_script_exits_zero_quickly_writing_only_to_workdir(
    path: Path, run_example: Callable[[str], Run]
) -> None:
    run = run_example(path.stem)
    assert sorted(p.name for p in run.cwd.iterdir()) == ["work"]
    assert {p.name for p in run.workdir.iterdir()} == WRITES.get(path.stem, set())
    assert_ran(run)
    assert run.stdout.strip(), f"{path.stem} printed nothing"
    assert run.seconds < MAX_SECONDS


def test_seed_example_without_examples_dir_leaves_cwd_empty(tmp_path: Path) -> None:
    run = _run(EXAMPLES_DIR / "quick_start.py", tmp_path, None)
    assert_ran(run)
    assert list(tmp_path.iterdir()) == []


def test_quick_start_stand_in_bars_return_matches_hand_computation(
    run_example: Callable[[str], Run],
) -> None:
    run = run_example("quick_start")
    assert_ran(run)
    # 100,000 cash, no costs; an order decided on a bar fills at the next bar's open.
    # bar 0  close 100, prediction 0.72 / confidence 0.85: buy 10 % of 100,000 / 100 = 100 sh
    # bar 1  fills at open 101 (cash 89,900); prediction 0.45: nothing
    # bar 2  close 104, 0.89 / 0.92: buy 10 % of (89,900 + 100 x 104) / 104 = 96.4 -> 96 sh
    # bar 3  fills at open 103 (cash 80,012; 196 sh); 0.50: nothing
    # bar 4  prediction 0.25 < 0.3: close the 196 sh
    # bar 5  sells at open 106.5 (cash 100,886); 0.60: nothing
    # bar 6  close 106, 0.75 / 0.95: buy 10 % of 100,886 / 106 = 95.2 -> 95 sh
    # bar 7  fills at open 107 (cash 90,721); ends at close 108
    final = 100_000 - 100 * 101 - 96 * 103 + 196 * 106.5 - 95 * 107 + 95 * 108
    assert final == 100_981.0
    assert number(r"Final value: ([\d,.]+)", run.stdout) == pytest.approx(final, abs=0.005)
    assert number(r"Return: (-?[\d.]+)%", run.stdout) == pytest.approx(
        (final / 100_000 - 1) * 100, abs=0.005
    )
    assert number(r"Fills: (\d+)", run.stdout) == 4


def test_complete_example_seed_data_final_value_matches_hand_computation(
    run_example: Callable[[str], Run],
) -> None:
    run = run_example("complete_example")
    assert_ran(run)
    # The seed's data: open = close = 100 + 0.1 i, prediction 0.6 + 0.04 (i mod 10),
    # confidence 0.7 + 0.05 (i mod 5), VIX 15 + (i mod 20); fills at the next bar's open.
    # i = 2    first entry: prediction 0.68 > 0.65, confidence 0.80 > 0.75, VIX 17 < 30:
    #          size_by_confidence 0.20 x 0.80 = 16 % of 100,000 at 100.2 -> 159 sh, filled at
    #          i = 3's open 100.3.
    # i = 154  first close with a 15 % gain (115.4 / 100.3 - 1 = 15.05 %): sold at i = 155's
    #          open 115.5. Cash 100,000 + 159 x (115.5 - 100.3) = 102,416.80.
    # i = 155..159 have VIX 30..34 (no entry), i = 160, 161 predictions 0.60, 0.64;
    # i = 162  prediction 0.68, confidence 0.80: 16 % of 102,416.80 at 116.2 -> 141 sh,
    #          filled at i = 163's open 116.3. Never +15 % (133.7) or -5 % again; last close
    #          (i = 251) is 125.1.
    cash = 100_000 + 159 * (115.5 - 100.3)
    final = cash + 141 * (125.1 - 116.3)
    assert final == pytest.approx(103_657.60)
    assert number(r"Final Value: \$([\d,.]+)", run.stdout) == pytest.approx(final, abs=0.005)
    assert number(r"Return: (-?[\d.]+)%", run.stdout) == pytest.approx(
        (final / 100_000 - 1) * 100, abs=0.005
    )


def test_vix_filtered_single_asset_spike_exits_then_reenters_as_computed_by_hand(
    run_example: Callable[[str], Run],
) -> None:
    run = run_example("vix_filtered_single_asset")
    assert_ran(run)
    # Stand-in bars (business days from 2024-01-02), VIX joined as a signal, no costs:
    # 01-02  VIX 18, pred 0.85, flat: buy 95 % of 100,000 at 100 -> 950 sh
    # 01-03  fills at open 101 (cash 4,050); pred 0.60: hold
    # 01-04  VIX 22, pred 0.90 but already long: hold
    # 01-05  VIX 35 > 30: close; 01-08 sells at open 99 (cash 98,100); VIX 33: no entry
    # 01-09  VIX 25, pred 0.85: buy 95 % of 98,100 at 100 -> 931 sh
    # 01-10  fills at open 102 (cash 3,138); VIX missing that day, ffill keeps 25; pred 0.70
    # 01-11  pred 0.30 < 0.4: close; 01-12 sells at open 104.5 (cash 100,427.50)
    # 01-12  VIX 18, pred 0.82: buy 95 % of 100,427.50 at 104 -> 917 sh
    # 01-15  fills at open 105 (cash 4,142.50); ends at close 106
    fills = [line for line in run.stdout.splitlines() if line.startswith("fill ")]
    assert fills == [
        "fill 2024-01-03 buy 950 @ 101.00",
        "fill 2024-01-08 sell 950 @ 99.00",
        "fill 2024-01-10 buy 931 @ 102.00",
        "fill 2024-01-12 sell 931 @ 104.50",
        "fill 2024-01-15 buy 917 @ 105.00",
    ]
    final = 100_000 - 950 * 101 + 950 * 99 - 931 * 102 + 931 * 104.5 - 917 * 105 + 917 * 106
    assert final == 101_344.5
    assert number(r"Final value: ([\d,.]+)", run.stdout) == pytest.approx(final, abs=0.005)


def test_multi_asset_context_vix_spike_blocks_buys_and_only_reduces(
    run_example: Callable[[str], Run],
) -> None:
    run = run_example("multi_asset_context")
    assert_ran(run)
    assert "Context series: VIX, SPY_trend, breadth" in run.stdout
    number(r"Return: (-?[\d.]+)%", run.stdout)
    buys = re.search(r"buy orders: (\d+), on VIX > 30 days: (\d+)", run.stdout)
    sells = re.search(r"sell orders: (\d+), on VIX > 30 days: (\d+)", run.stdout)
    assert buys, run.stdout
    assert sells, run.stdout
    # The strategy buys when flat on a strong prediction, and on VIX > 30 days only halves.
    assert int(buys[1]) > 0
    assert int(buys[2]) == 0
    assert int(sells[1]) == int(sells[2]) > 0


def test_advanced_patterns_each_strategy_trades_with_finite_return(
    run_example: Callable[[str], Run],
) -> None:
    run = run_example("advanced_patterns")
    assert_ran(run)
    lines = re.findall(
        r"^(\w+): Return: (-?[\d.]+)%, fills: (\d+), round trips: (\d+)$",
        run.stdout,
        re.MULTILINE,
    )
    assert [name for name, *_ in lines] == [
        "KellyStrategy",
        "EnsembleStrategy",
        "RegimeStrategy",
        "StopLossStrategy",
    ]
    for name, ret, fills, trips in lines:
        assert math.isfinite(float(ret)), name
        assert int(fills) > 0, name
        assert int(trips) > 0, name  # each one also exited (VIX, stop/target or resizing)


def test_user_journey_seed_strategy_prints_summary_with_trades(
    run_example: Callable[[str], Run],
) -> None:
    run = run_example("user_journey")
    assert_ran(run)
    assert "tradeloop backtest" in run.stdout
    number(r"Final value\s+([\d,.]+)", run.stdout)
    assert number(r"Trades\s+([\d,]+)", run.stdout) > 0
