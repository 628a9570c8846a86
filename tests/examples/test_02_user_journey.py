"""examples/02_user_journey.py: features outside the engine, the rule replayed in plain Python."""

from __future__ import annotations

import math
import runpy
from pathlib import Path
from typing import Any

import pytest

from tests.examples.running import EXAMPLES, Run, number, run_script


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Run:
    return run_script("02_user_journey.py", tmp_path_factory.mktemp("user_journey"))


def test_user_journey_runs_as_a_script_writing_only_its_parquet_to_the_workdir(run: Run) -> None:
    run.assert_ok(writes=frozenset({"aapl_daily_2020_2023.parquet"}))
    assert run.seconds < 20
    assert "tradeloop backtest" in run.stdout  # the summary's title


def test_user_journey_fills_are_the_rule_replayed_over_the_data_at_next_opens(
    run: Run, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)  # the script chdirs into its workdir; restored afterwards
    monkeypatch.setenv("TRADELOOP_EXAMPLES_DIR", str(tmp_path))
    script: dict[str, Any] = runpy.run_path(str(EXAMPLES / "02_user_journey.py"))
    df, results = script["df"], script["results"]

    # The strategy's rule, walked bar by bar: an order decided at a close fills at the next
    # open; the unrealised P&L is the close against the entry fill price (no costs here).
    expected = []
    entry: float | None = None  # fill price while long
    pending: str | None = None
    for ts, row in df.iterrows():
        if pending is not None:
            expected.append((ts.date(), pending, row["open"]))
            entry = row["open"] if pending == "buy" else None
            pending = None
        pred, conf = row["ml_pred"], row["confidence"]
        if entry is None and pred > 0.8 and conf > 0.7:
            pending = "buy"
        elif entry is not None:
            pnl = row["close"] / entry - 1.0
            if pred < 0.4 or pnl < -0.05 or pnl > 0.15:
                pending = "sell"
    actual = [
        (f["timestamp"].date(), f["side"], f["price"]) for f in results.fills.iter_rows(named=True)
    ]
    assert len(expected) > 20  # the rule trades often enough to mean something
    assert [(d, s) for d, s, _ in actual] == [(d, s) for d, s, _ in expected]
    assert all(
        math.isclose(a[2], e[2], rel_tol=1e-12) for a, e in zip(actual, expected, strict=True)
    )
    assert number(r"Trades\s+([\d,]+)", run.stdout) == results["n_trades"]
    assert number(r"Final value\s+([\d,.]+)", run.stdout) == pytest.approx(
        results["final_value"], abs=0.01
    )
