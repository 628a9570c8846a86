"""examples/13_paper_trading.py: the daemon, run from deploy/paper.toml, trades the backtest."""

from __future__ import annotations

import json
import re
import tomllib
from pathlib import Path

import polars as pl
import pytest

from tests.examples.running import DATA, ROOT, number, run_script
from tradeloop import Context, Engine


def test_paper_trading_daemon_from_the_deploy_config_matches_a_backtest(tmp_path: Path) -> None:
    run = run_script("13_paper_trading.py", tmp_path)
    run.assert_ok(writes=frozenset({"bars.parquet", "replay.log", "paper.log", "state"}))
    out = run.stdout
    assert "fills identical: yes" in out
    healthy = re.search(r"GET /healthz +200 (\{.*\})", out)
    assert healthy, out
    assert json.loads(healthy[1])["status"] == "ok"
    ready = re.search(r"GET /readyz +200 (\{.*\})", out)
    assert ready, out
    assert json.loads(ready[1])["ready"] is True
    assert "daemon exited 0 when the stream ended" in out

    # The daemon ran the config file's strategy against the replay it was pointed at.
    logs = [json.loads(line) for line in (run.workdir / "paper.log").read_text().splitlines()]
    started = next(r for r in logs if r["event"] == "daemon_started")
    config = tomllib.loads((ROOT / "deploy" / "paper.toml").read_text())
    assert started["strategy"] == config["run"]["strategy"]
    replay = re.search(r"replay server +(ws://\S+)", out)
    assert replay, out
    assert started["feed"] == replay[1]

    # An independent backtest of the same 60 days: the setup the file names, its cash.
    from tradeloop.plugins import load_setup

    setup = load_setup(str(ROOT / config["run"]["strategy"].split(":")[0]) + ":setup")
    bars = pl.read_parquet(DATA / "sample.parquet")
    days = bars["timestamp"].unique().sort().head(60)
    bars = bars.filter(pl.col("timestamp").is_in(days.implode()))
    assert pl.read_parquet(run.workdir / "bars.parquet").equals(bars)
    backtest = Engine(
        feed=bars,
        strategy=setup,
        context=Context(pl.read_parquet(DATA / "vix.parquet")),
        initial_cash=config["broker"]["initial_cash"],
    ).run()
    assert backtest.config["commission"] == "PercentCommission(rate=0.0005)"  # the setup's
    columns = ["timestamp", "asset_id", "side", "qty", "price", "commission", "reason"]
    paper = pl.read_parquet(run.workdir / "state" / "fills.parquet")
    assert paper.select(columns).equals(backtest.fills.select(columns))
    assert backtest.fills.height > 20  # sixty days are enough to trade
    summary = json.loads((run.workdir / "state" / "summary.json").read_text())
    assert summary["stopped_early"] is False
    assert summary["bars"] == bars.height == 300
    assert summary["final_equity"] == pytest.approx(backtest["final_value"], abs=1e-6)
    assert number(r"final equity +([\d,.]+)", out) == pytest.approx(
        backtest["final_value"], abs=0.005
    )
