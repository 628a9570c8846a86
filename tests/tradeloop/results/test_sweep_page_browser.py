"""The sweep report in headless Chromium: the heatmap the page computes equals the table's own
aggregation (mean, max, fixed) done here in polars, the top rows and their equity curves are
the runs', a heatmap click draws that cell's runs, and the walk-forward section shows every
window's out-of-sample numbers and the stitched curve. Screenshots land in artifacts/."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from selenium import webdriver

from tests.examples.running import load_example
from tests.tradeloop.research.factories import BARS, VIX
from tests.tradeloop.results.test_report_browser import browser, values
from tradeloop import sweep, walk_forward
from tradeloop.results.sweep_page import write_sweep_report

ROOT = Path(__file__).resolve().parents[3]
GRID = {"entry": [0.6, 0.65, 0.7], "exit": [0.4, 0.45], "max_vix": [18.0, 30.0]}
__all__ = ["browser"]  # the fixture, shared with the report's browser test


@pytest.fixture(scope="module")
def ml_strategy() -> type:
    strategy: type = load_example("ml_strategy.py").MLStrategy
    return strategy


@pytest.fixture(scope="module")
def table(ml_strategy: type) -> pl.DataFrame:
    return sweep(
        ml_strategy, GRID, BARS, context=VIX, executor="inline", progress=False, keep_equity=True
    )


def heatmap(driver: webdriver.Chrome) -> dict[str, Any]:
    trace = driver.execute_script("return document.getElementById('heatmap').data[0]")
    return {"x": trace["x"], "y": trace["y"], "z": trace["z"]}


def flat(grid: list[list[Any]]) -> list[Any]:
    return [cell for row in grid for cell in row]


def choose(driver: webdriver.Chrome, select: str, value: str) -> None:
    driver.execute_script(
        "const el = document.querySelector(arguments[0]); el.value = arguments[1];"
        "el.dispatchEvent(new Event('change'));",
        select,
        value,
    )


def expected_grid(frame: pl.DataFrame, metric: str, how: str) -> list[list[float | None]]:
    """Rows = exit values, columns = entry values, each cell aggregated over the rest."""
    agg = {"mean": pl.col(metric).mean(), "max": pl.col(metric).max()}[how]
    cells = frame.filter(pl.col(metric).is_not_nan()).group_by("exit", "entry").agg(agg)
    lookup = {(e, x): v for e, x, v in cells.iter_rows()}
    return [[lookup.get((y, x)) for x in GRID["entry"]] for y in GRID["exit"]]


def test_sweep_page_heatmap_top_rows_and_curves_are_the_runs(
    table: pl.DataFrame, browser: webdriver.Chrome, tmp_path: Path
) -> None:
    page = write_sweep_report(table, tmp_path / "sweep.html", list(GRID))
    browser.get(page.as_uri())
    shown = heatmap(browser)
    assert shown["x"] == ["0.6", "0.65", "0.7"]
    assert shown["y"] == ["0.4", "0.45"]
    assert flat(shown["z"]) == pytest.approx(flat(expected_grid(table, "sharpe", "mean")))

    choose(browser, "#agg", "max")
    assert flat(heatmap(browser)["z"]) == pytest.approx(flat(expected_grid(table, "sharpe", "max")))

    choose(browser, "#metric", "total_return")
    choose(browser, "#agg", "fixed")
    choose(browser, "#fixed select[data-param='max_vix']", "30")  # JSON of 30.0
    fixed = table.filter(pl.col("max_vix") == 30.0)
    assert flat(heatmap(browser)["z"]) == pytest.approx(
        flat(expected_grid(fixed, "total_return", "mean"))
    )

    # x/y can be any two parameters: max_vix across, entry down, exit averaged
    choose(browser, "#agg", "mean")
    choose(browser, "#x", "max_vix")
    choose(browser, "#y", "entry")
    by_vix = table.group_by("entry", "max_vix").agg(pl.col("total_return").mean())
    lookup = {(e, v): r for e, v, r in by_vix.iter_rows()}
    want = [[lookup[(e, v)] for v in GRID["max_vix"]] for e in GRID["entry"]]
    assert flat(heatmap(browser)["z"]) == pytest.approx(flat(want))

    # the top rows are the best runs by the metric, and the first one's curve is drawn
    ranked = table.with_row_index("row").sort(["total_return", "row"], descending=[True, False])
    rows = browser.execute_script(
        "return [...document.querySelectorAll('#top tr[data-row]')].map(tr => +tr.dataset.row)"
    )
    assert rows == ranked["row"].head(10).to_list()
    curve = browser.execute_script("return document.getElementById('curves').data")
    first = table["equity_curve"][rows[0]].to_list()
    assert values(curve[0]["y"]) == [point["equity"] for point in first]

    browser.find_elements("css selector", "#top tr[data-row]")[3].click()
    curve = browser.execute_script("return document.getElementById('curves').data")
    fourth = table["equity_curve"][rows[3]].to_list()
    assert values(curve[0]["y"]) == [point["equity"] for point in fourth]

    # a heatmap click draws every run of that cell (entry 0.65 across max_vix 18: 2 exits)
    browser.execute_script(
        "document.getElementById('heatmap').emit('plotly_click', {points: [{pointIndex: [1, 0]}]})"
    )
    picked = browser.execute_script("return window.tradeloopSelected")
    members = table.with_row_index("row").filter(
        (pl.col("entry") == 0.65) & (pl.col("max_vix") == 18.0)
    )
    assert sorted(picked) == members["row"].to_list()
    assert len(browser.execute_script("return document.getElementById('curves').data")) == 2

    assert browser.execute_script("return performance.getEntriesByType('resource').length") == 0
    assert [e for e in browser.get_log("browser") if e["level"] == "SEVERE"] == []
    (ROOT / "artifacts").mkdir(exist_ok=True)
    assert browser.save_screenshot(str(ROOT / "artifacts" / "sweep.png"))


def test_sweep_page_walk_forward_section_shows_each_window_out_of_sample(
    ml_strategy: type, browser: webdriver.Chrome, tmp_path: Path
) -> None:
    grid = {"entry": [0.6, 0.7], "exit": [0.4, 0.45]}
    result = walk_forward(
        ml_strategy, grid, BARS, train=60, test=30, context=VIX, executor="inline", progress=False
    )
    page = write_sweep_report(
        result.train, tmp_path / "wf.html", [*grid, "window"], walk_forward=result
    )
    browser.get(page.as_uri())
    stitched = browser.execute_script("return document.getElementById('wf_equity').data")
    equity = [v for trace in stitched for v in values(trace["y"])]
    assert equity == result.equity_curve["equity"].to_list()
    assert [t["name"] for t in stitched] == [f"window {w}" for w in result.windows["window"]]
    (bars,) = browser.execute_script("return document.getElementById('wf_returns').data")
    assert values(bars["y"]) == pytest.approx(result.windows["test_return"].to_list())
    cells = browser.execute_script(
        "return [...document.querySelectorAll('#wf_windows tr')].map(tr => tr.children.length)"
    )
    assert len(cells) == 1 + result.windows.height
    header = browser.execute_script(
        "return [...document.querySelectorAll('#wf_windows th')].map(th => th.textContent)"
    )
    assert {"test_sharpe", "test_max_drawdown", "test_n_trades", "test_return"} <= set(header)
    # the train sweeps' heatmap, with the window as one more parameter to fix or average
    data = json.loads(browser.execute_script("return document.getElementById('sweep-data').text"))
    assert data["params"] == ["entry", "exit", "window"]
    assert len(data["rows"]) == result.train.height
    hidden = browser.execute_script("return document.getElementById('curves-panel').style.display")
    assert hidden == "none"  # train runs keep no curves: no empty chart
    assert [e for e in browser.get_log("browser") if e["level"] == "SEVERE"] == []
    assert browser.save_screenshot(str(ROOT / "artifacts" / "walk_forward.png"))
