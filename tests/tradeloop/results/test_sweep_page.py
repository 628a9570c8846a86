"""The sweep page's data: each row's curve is its own run's equity, NaN becomes null, bad names
are refused; ``tradeloop sweep --report`` writes the page (the browser test reads it)."""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import polars as pl
import pytest

from tests.tradeloop.research.factories import BARS, GRID, VIX, Threshold
from tests.tradeloop.test_cli_sweep import COMMON, tradeloop
from tradeloop import Context, Engine, sweep
from tradeloop.errors import ConfigError
from tradeloop.results.sweep_page import CURVE_POINTS, sweep_data, write_sweep_report


@pytest.fixture(scope="module")
def table() -> pl.DataFrame:
    return sweep(Threshold, GRID, BARS, context=VIX, executor="inline", progress=False,
                 keep_equity=True)  # fmt: skip


def test_sweep_keep_equity_rows_carry_their_own_runs_curve(table: pl.DataFrame) -> None:
    row = table.row(3, named=True)
    run = Engine(feed=BARS, strategy=Threshold(row["entry"], row["exit"]), context=Context(VIX))
    curve = run.run().equity_curve
    assert [p["equity"] for p in row["equity_curve"]] == curve["equity"].to_list()
    assert [p["timestamp"] for p in row["equity_curve"]] == curve["timestamp"].to_list()
    resorted = table.sort("sharpe")  # the curve travels with its row
    again = resorted.filter((pl.col("entry") == row["entry"]) & (pl.col("exit") == row["exit"]))
    assert again["equity_curve"].to_list() == [row["equity_curve"]]


def test_sweep_data_embeds_rows_curves_and_nulls_for_nan(table: pl.DataFrame) -> None:
    with_nan = table.with_columns(profit_factor=pl.lit(math.nan))
    data = sweep_data(with_nan, list(GRID), "sharpe")
    assert data["params"] == ["entry", "exit"]
    assert "equity_curve" not in data["metrics"]
    assert {row["profit_factor"] for row in data["rows"]} == {None}
    assert [row["entry"] for row in data["rows"]] == table["entry"].to_list()
    times, equity = data["curves"][0]
    assert len(times) == len(equity) == min(CURVE_POINTS, BARS["timestamp"].n_unique())
    assert equity[-1] == table["equity_curve"][0][-1]["equity"]
    json.dumps(data, allow_nan=False)  # the page's JSON is strict


def test_sweep_data_refuses_unknown_parameters_and_metrics(table: pl.DataFrame) -> None:
    with pytest.raises(ConfigError, match="not in the table"):
        sweep_data(table, ["entry", "size"], "sharpe")
    with pytest.raises(ConfigError, match="no metric 'sharp'"):
        sweep_data(table, list(GRID), "sharp")


def test_sweep_report_without_curves_still_writes_a_page(tmp_path: Path) -> None:
    table = sweep(Threshold, GRID, BARS, context=VIX, executor="inline", progress=False)
    page = write_sweep_report(table, tmp_path / "s.html", list(GRID)).read_text()
    data = json.loads(re.search(r'id="sweep-data">(.*?)</script>', page, re.S)[1])  # type: ignore[index]
    assert data["curves"] == [None] * table.height


def test_cli_sweep_report_writes_the_page_with_every_run(tmp_path: Path) -> None:
    out = tradeloop(
        "sweep", *COMMON, "--grid", "entry=0.6,0.7", "--grid", "exit=0.4,0.45",
        "--executor", "inline", "--report", str(tmp_path / "sweep.html"), "--json",
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    assert "equity_curve" not in out.stdout  # --json stays the metrics table
    page = (tmp_path / "sweep.html").read_text()
    data = json.loads(re.search(r'id="sweep-data">(.*?)</script>', page, re.S)[1])  # type: ignore[index]
    rows = json.loads(out.stdout)
    assert [(r["entry"], r["exit"]) for r in data["rows"]] == [
        (r["entry"], r["exit"]) for r in rows
    ]
    assert all(curve is not None for curve in data["curves"])
    assert str(tmp_path / "sweep.html") in out.stderr
