"""``tradeloop sweep`` as a real subprocess: help, a sweep and a walk-forward, bad input.

The sweep's rows are checked against the bundled strategy run through Engine in this process.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import polars as pl
import pytest

from tradeloop import Context, Engine
from tradeloop.plugins import load_strategy_class

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = ROOT / "examples" / "data" / "sample.parquet"
VIX = ROOT / "examples" / "data" / "vix.parquet"
STRATEGY = f"{ROOT / 'examples' / 'ml_strategy.py'}:MLStrategy"
COMMON = ("--data", str(SAMPLE), "--context", str(VIX), "--strategy", STRATEGY)


def tradeloop(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "tradeloop", *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_cli_sweep_help_explains_grid_executors_and_walk_forward() -> None:
    out = tradeloop("sweep", "--help")
    assert out.returncode == 0
    for text in ("--grid", "NAME=V1,V2", "--executor", "dask://", "--workers", "--train", "--test"):
        assert text in out.stdout
    assert "Examples:" in out.stdout


def test_cli_sweep_rows_match_in_process_engine_runs(tmp_path: Path) -> None:
    out = tradeloop(
        "sweep", *COMMON, "--grid", "entry=0.6,0.7", "--grid", "exit=0.45",
        "--workers", "2", "--commission", "0.0005", "--json", "--out", str(tmp_path),
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    rows = json.loads(out.stdout)
    assert [(r["entry"], r["exit"]) for r in rows] == [(0.6, 0.45), (0.7, 0.45)]
    strategy_class = load_strategy_class(STRATEGY)
    for row in rows:
        result = Engine(
            feed=SAMPLE,
            strategy=strategy_class(entry=row["entry"], exit=row["exit"]),
            context=Context(pl.read_parquet(VIX)),
            commission=0.0005,
        ).run()
        assert row["final_value"] == result["final_value"]
        assert row["n_trades"] == result["n_trades"] > 0
    assert pl.read_parquet(tmp_path / "sweep.parquet").height == 2


def test_cli_sweep_walk_forward_prints_windows_and_writes_the_equity(tmp_path: Path) -> None:
    out = tradeloop(
        "sweep", *COMMON, "--grid", "entry=0.6,0.7", "--executor", "inline",
        "--train", "200", "--test", "100", "--out", str(tmp_path),
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    assert "out-of-sample total return" in out.stdout
    windows = pl.read_parquet(tmp_path / "windows.parquet")
    # 504 timestamps: tests start at 200, 300, 400 and 500 (the last one has only 4)
    assert windows["window"].to_list() == [0, 1, 2, 3]
    equity = pl.read_parquet(tmp_path / "equity_curve.parquet")
    assert equity.height == 504 - 200


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--grid", "entry"), "must look like NAME=V1,V2"),
        (("--grid", "entry=0.6", "--grid", "entry=0.7"), "names 'entry' twice"),
        (("--grid", "entry=0.6", "--train", "100"), "both --train and --test"),
        (("--grid", "nope=1"), "unexpected keyword argument 'nope'"),
    ],
)
def test_cli_sweep_bad_input_exits_nonzero_with_the_fix(
    args: tuple[str, ...], message: str
) -> None:
    out = tradeloop("sweep", *COMMON, "--executor", "inline", *args)
    assert out.returncode != 0
    assert message in out.stderr
