"""examples/12_paper_vs_backtest.py: its table against the data and an in-process backtest."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import polars as pl
import pytest

from tests.examples.running import DATA, EXAMPLES, run_script
from tradeloop import Context, Engine


def test_paper_vs_backtest_prints_matching_columns_that_agree_with_the_data(
    tmp_path: Path,
) -> None:
    run = run_script("12_paper_vs_backtest.py", tmp_path)
    run.assert_ok()
    assert "fills identical, one for one: yes" in run.stdout
    table = dict(
        (label.strip(), (left, right))
        for label, left, right in re.findall(
            r"^  (\w[\w ]*?)\s{2,}(\S.*?)\s{3,}(\S.*)$", run.stdout, re.MULTILINE
        )
    )
    for label in ("bars", "timestamps", "fills", "final value", "cash", "positions"):
        left, right = table[label]
        assert left == right, label  # backtest and paper agree on every row

    sys.path.insert(0, str(EXAMPLES))
    try:
        from ml_strategy import MLStrategy
    finally:
        sys.path.remove(str(EXAMPLES))
    bars = pl.read_parquet(DATA / "sample.parquet")
    backtest = Engine(
        feed=bars,
        strategy=MLStrategy(),
        context=Context(pl.read_parquet(DATA / "vix.parquet")),
        commission=0.0005,
    ).run()
    assert table["bars"][0] == f"{bars.height:,}"
    assert table["timestamps"][0] == f"{bars['timestamp'].n_unique():,}"
    assert table["fills"][0] == f"{backtest.fills.height:,}"
    assert float(table["final value"][0].replace(",", "")) == pytest.approx(
        backtest["final_value"], abs=0.005
    )
