"""A real run for the report and export tests: the bundled ML strategy on the bundled sample
(5 assets, 504 daily timestamps), with two risk rules so trades exit for several reasons."""

from __future__ import annotations

import sys
from pathlib import Path

import polars as pl
import pytest

from tradeloop import BacktestResult, Context, Engine, RiskManager
from tradeloop.risk import StopLoss, TimeBasedExit

ROOT = Path(__file__).resolve().parents[3]
DATA = ROOT / "examples" / "data"


@pytest.fixture(scope="session")
def sample_result() -> BacktestResult:
    sys.path.insert(0, str(ROOT / "examples"))
    try:
        from ml_strategy import MLStrategy
    finally:
        sys.path.remove(str(ROOT / "examples"))
    risk = RiskManager().add_rule(StopLoss(0.03)).add_rule(TimeBasedExit(max_bars=4))
    return Engine(
        feed=DATA / "sample.parquet",
        strategy=MLStrategy(),
        context=Context(pl.read_parquet(DATA / "vix.parquet")),
        risk=risk,
        commission=0.0005,
        progress=False,
    ).run()
