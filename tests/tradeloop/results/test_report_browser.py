"""The HTML report in a real browser: headless Chromium (Debian's, installed by `make browser`)
opens it from disk with every host name unresolvable, draws every chart with the run's data,
loads nothing else, and leaves a screenshot in artifacts/report.png for a person to look at."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pytest
from selenium import webdriver
from selenium.webdriver.chrome.service import Service

from tradeloop import BacktestResult
from tradeloop.results.report import CHARTS

ROOT = Path(__file__).resolve().parents[3]
CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
SCREENSHOT = ROOT / "artifacts" / "report.png"

# Each chart's traces as the page holds them, and what its SVG drew.
CHART_STATE = """
return [...document.querySelectorAll('.js-plotly-plot')].map(gd => ({
  id: gd.id,
  data: JSON.stringify(gd.data),
  svgs: gd.querySelectorAll('svg.main-svg').length,
  lines: [...gd.querySelectorAll('path.js-line')].filter(p => p.getAttribute('d')).length,
  bars: gd.querySelectorAll('g.trace.bars g.point').length,
  heatmaps: gd.querySelectorAll('g.hm image').length,
}));
"""


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[webdriver.Chrome]:
    if not (CHROMIUM.exists() and CHROMEDRIVER.exists()):
        pytest.fail("headless Chromium is missing: `make browser` installs chromium and its driver")
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in (
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--host-resolver-rules=MAP * ~NOTFOUND",  # a page that tried the network would fail
        f"--user-data-dir={tmp_path_factory.mktemp('chromium-profile')}",
        "--window-size=1400,1000",
    ):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    # An explicit driver path: selenium then never runs its manager, which would download one.
    driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)
    driver.set_page_load_timeout(60)
    try:
        yield driver
    finally:
        driver.quit()


def values(array: Any) -> list[Any]:
    if isinstance(array, dict) and "bdata" in array:  # plotly's base64 typed array
        return np.frombuffer(base64.b64decode(array["bdata"]), dtype=array["dtype"]).tolist()
    return list(array)


def rendered(browser: webdriver.Chrome, expected: int, timeout_s: float = 30.0) -> dict[str, Any]:
    """The page's charts once plotly has drawn all ``expected`` of them (a loaded machine
    can take a moment after the load event)."""
    import time

    deadline = time.monotonic() + timeout_s
    while True:
        charts = {chart["id"]: chart for chart in browser.execute_script(CHART_STATE)}
        if len(charts) >= expected or time.monotonic() > deadline:
            return charts
        time.sleep(0.1)


def test_report_renders_every_chart_with_the_runs_data_offline(
    sample_result: BacktestResult, browser: webdriver.Chrome, tmp_path: Path
) -> None:
    page = sample_result.report(tmp_path / "report.html")
    browser.get(page.as_uri())
    charts = rendered(browser, len(CHARTS))
    assert list(charts) == list(CHARTS)
    assert charts["trades"]["lines"] >= 1
    data = {key: json.loads(chart["data"]) for key, chart in charts.items()}
    for key, chart in charts.items():
        assert chart["svgs"] > 0, key

    check_trades_chart(sample_result, data["trades"], browser)

    n_timestamps = sample_result.equity_curve.height
    for key in ("equity", "drawdown", "exposure"):
        assert len(data[key]) == 2, key
        for trace in data[key]:
            assert len(values(trace["x"])) == len(values(trace["y"])) == n_timestamps, key
        assert charts[key]["lines"] >= 2, key
    assert values(data["equity"][0]["y"]) == sample_result.equity_curve["equity"].to_list()

    (heatmap,) = data["monthly_returns"]
    years = sample_result.daily_returns["date"].dt.year().unique().sort().to_list()
    assert heatmap["y"] == [str(y) for y in years]
    assert [len(row) for row in heatmap["z"]] == [12] * len(years)
    assert charts["monthly_returns"]["heatmaps"] == 1

    (sharpe,) = data["rolling_sharpe"]
    assert len(values(sharpe["y"])) == sample_result.daily_returns.height - 126 + 1
    assert charts["rolling_sharpe"]["lines"] >= 1

    n_trades = sample_result.trades.height
    assert sum(len(values(trace["x"])) for trace in data["trade_pnl"]) == n_trades > 0
    assert charts["trade_pnl"]["bars"] > 0
    (exits,) = data["exits"]
    assert sum(values(exits["x"])) == n_trades
    assert set(exits["y"]) == set(sample_result.trades["exit_reason"].to_list())
    assert charts["exits"]["bars"] == len(exits["y"])

    # Nothing but the file itself was loaded, and the page logged no error.
    assert browser.execute_script("return performance.getEntriesByType('resource').length") == 0
    severe = [entry for entry in browser.get_log("browser") if entry["level"] == "SEVERE"]
    assert severe == []

    height = browser.execute_script(
        "return document.documentElement.scrollHeight + window.outerHeight - window.innerHeight"
    )
    browser.set_window_size(1400, height)  # the whole page in one screenshot
    SCREENSHOT.parent.mkdir(exist_ok=True)
    assert browser.save_screenshot(str(SCREENSHOT))


def check_trades_chart(
    result: BacktestResult, traces: list[dict[str, Any]], browser: webdriver.Chrome
) -> None:
    """Per asset: the close line is the run's closes, entries and exits (by reason) are its
    trades; the dropdown lists every traded asset and shows one asset's traces at a time."""
    trades = result.trades.with_columns(pl.col("exit_reason").fill_null("(none)"))
    reasons = sorted(trades["exit_reason"].unique().to_list())
    per_asset = 2 + len(reasons)
    by_count = trades.group_by("asset_id").len().sort(["len", "asset_id"], descending=[True, False])
    assets = by_count["asset_id"].to_list()
    assert len(traces) == per_asset * len(assets)
    for k, asset in enumerate(assets):
        close, entries, *exits = traces[k * per_asset : (k + 1) * per_asset]
        mine = trades.filter(pl.col("asset_id") == asset)
        prices = result.prices.filter(pl.col("asset_id") == asset)
        assert close["name"] == f"{asset} close"
        assert values(close["y"]) == prices["close"].to_list()
        assert values(entries["y"]) == mine["entry_price"].to_list()
        for reason, trace in zip(reasons, exits, strict=True):
            assert trace["name"] == f"exit: {reason}"
            assert (
                values(trace["y"])
                == mine.filter(pl.col("exit_reason") == reason)["exit_price"].to_list()
            )
        shown = all(t.get("visible", True) is True for t in (close, entries, *exits))
        assert shown == (k == 0), asset
    labels = browser.execute_script(
        "return document.getElementById('trades').layout.updatemenus[0].buttons.map(b => b.label)"
    )
    assert labels == [f"{a} ({n} trades)" for a, n in by_count.iter_rows()]
    # picking the second asset in the dropdown shows its traces and hides the first's
    browser.execute_script(
        "const gd = document.getElementById('trades');"
        "const args = gd.layout.updatemenus[0].buttons[1].args;"
        "Plotly.update(gd, args[0]);"
    )
    visible = browser.execute_script(
        "return document.getElementById('trades').data.map(t => t.visible)"
    )
    assert visible == [k // per_asset == 1 for k in range(len(visible))]
    browser.execute_script(
        "const gd = document.getElementById('trades');"
        "Plotly.update(gd, gd.layout.updatemenus[0].buttons[0].args[0]);"
    )
