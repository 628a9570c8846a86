"""The tradeloop command as a real subprocess: help, a run, JSON output, bad input."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import polars as pl
import pytest

from tests.conftest import bars
from tradeloop.results.report import CHARTS

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = ROOT / "examples" / "data" / "sample.parquet"
VIX = ROOT / "examples" / "data" / "vix.parquet"
STRATEGY = f"{ROOT / 'examples' / 'ml_strategy.py'}:MLStrategy"


def tradeloop(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "tradeloop", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=120,
        check=False,
    )


def test_cli_help_explains_backtest_options() -> None:
    out = tradeloop("backtest", "--help")
    assert out.returncode == 0
    for flag in (
        "--data",
        "--strategy",
        "--context",
        "--signals",
        "--cash",
        "--commission",
        "--fill-timing",
        "--json",
        "--report",
    ):
        assert flag in out.stdout
    assert "Examples:" in out.stdout


def test_cli_json_matches_in_process_engine_and_report_is_written(tmp_path: Path) -> None:
    out = tradeloop(
        "backtest",
        "--data",
        str(SAMPLE),
        "--strategy",
        STRATEGY,
        "--context",
        str(VIX),
        "--commission",
        "0.0005",
        "--json",
        "--out",
        str(tmp_path / "run"),
        "--report",
        str(tmp_path / "report.html"),
    )
    assert out.returncode == 0, out.stderr
    metrics = json.loads(out.stdout)["metrics"]  # the report's notice stays off stdout
    page = (tmp_path / "report.html").read_text(encoding="utf-8")
    assert all(f'id="{chart}"' in page for chart in CHARTS)
    assert str(tmp_path / "report.html") in out.stderr

    sys.path.insert(0, str(ROOT / "examples"))
    try:
        from ml_strategy import MLStrategy
    finally:
        sys.path.remove(str(ROOT / "examples"))
    from tradeloop import Context, Engine

    result = Engine(
        feed=SAMPLE, strategy=MLStrategy(), context=Context(pl.read_parquet(VIX)), commission=0.0005
    ).run()
    assert metrics["final_value"] == pytest.approx(result["final_value"], abs=1e-6)
    assert metrics["n_trades"] == result["n_trades"] > 0
    written = pl.read_parquet(tmp_path / "run" / "fills.parquet")
    assert written.height == result.fills.height


def test_cli_summary_is_readable() -> None:
    out = tradeloop(
        "backtest",
        "--data",
        str(SAMPLE),
        "--strategy",
        STRATEGY,
        "--context",
        str(VIX),
        "--no-progress",
    )
    assert out.returncode == 0, out.stderr
    for label in ("Total return", "Sharpe", "Max drawdown"):
        assert label in out.stdout


def test_cli_bad_data_exits_nonzero_with_the_row_and_fix(tmp_path: Path) -> None:
    bad = bars([(0, "A", 10, 11, 9, 10), (1, "A", 10, 9, 11, 10)])  # high < low on row 1
    path = tmp_path / "bad.parquet"
    bad.write_parquet(path)
    out = tradeloop("backtest", "--data", str(path), "--strategy", STRATEGY)
    assert out.returncode == 1
    for part in ("DataError", "row 1", "high < low"):
        assert part in out.stderr
    assert "Traceback" not in out.stderr


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("nonexistent_module_xyz:S", "cannot import"),
        ("missing.py:S", "no file"),
        ("no_colon", "must look like"),
    ],
)
def test_cli_bad_strategy_spec_exits_nonzero(spec: str, message: str) -> None:
    out = tradeloop("backtest", "--data", str(SAMPLE), "--strategy", spec)
    assert out.returncode == 1
    assert message in out.stderr


def test_cli_unknown_signal_exits_nonzero() -> None:
    out = tradeloop(
        "backtest", "--data", str(SAMPLE), "--strategy", STRATEGY, "--signals", "ml_pred,nope"
    )
    assert out.returncode == 1
    assert "'nope' not found" in out.stderr
