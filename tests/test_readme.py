"""The README's fetch → backtest → report → sweep walk, run line for line as a user would.

The commands are read from the README (between its ``walk`` markers), so the docs cannot
drift. Only one thing is added: the fetch points at the fake Binance on 127.0.0.1 (``--set
rest_url=``) instead of the real market-data host. The fake's klines run from
2022-12-31 19:43 UTC minute by minute, so the walk's 2023-01-01 → 2023-01-04 is all there.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import shlex
import sys
from pathlib import Path

import polars as pl

from tests.adapters.binance.conftest import API_KEY, API_SECRET
from tests.adapters.binance.fake_binance import FakeBinance
from tradeloop.data.feed import HistoricalFeed

ROOT = Path(__file__).resolve().parents[1]


def walk_commands() -> list[list[str]]:
    readme = (ROOT / "README.md").read_text()
    block = re.search(r"<!-- walk: start.*?```bash\n(.*?)```\n<!-- walk: end -->", readme, re.S)
    assert block is not None, "README.md lost its walk markers"
    lines = block[1].replace("\\\n", " ").strip().splitlines()
    return [shlex.split(line) for line in lines]


async def run(command: list[str], cwd: Path) -> tuple[int, str, str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    process = await asyncio.create_subprocess_exec(
        *command,
        cwd=cwd,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), 300)
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


async def test_readme_walk_fetches_backtests_reports_and_sweeps(tmp_path: Path) -> None:
    commands = walk_commands()
    assert [c[:2] for c in commands] == [
        ["tradeloop", "fetch"],
        ["tradeloop", "backtest"],
        ["tradeloop", "sweep"],
    ]
    (tmp_path / "examples").symlink_to(ROOT / "examples")
    fake = FakeBinance(api_key=API_KEY, api_secret=API_SECRET)
    await fake.start()
    fake.published = 4_600  # through 2023-01-04 00:17
    outputs = []
    try:
        for command in commands:
            argv = [sys.executable, "-m", "tradeloop", *command[1:]]
            if command[1] == "fetch":
                argv += ["--set", f"rest_url=http://127.0.0.1:{fake.port}", "--no-progress"]
            code, out, err = await run(argv, tmp_path)
            assert code == 0, f"{shlex.join(command)}\n{err}"
            outputs.append((out, err))
    finally:
        await fake.close()

    bars = HistoricalFeed(tmp_path / "data" / "binance").frame()
    assert dict(bars.group_by("asset_id").len().iter_rows()) == {"BTCUSDT": 4320, "ETHUSDT": 4320}
    assert (
        "holds 8,640 bars of 2 asset(s), 2023-01-01 00:00 → 2023-01-03 23:59 UTC" in (outputs[0][1])
    )
    assert {r["symbol"] for r in fake.kline_requests} == {"BTCUSDT", "ETHUSDT"}

    summary = outputs[1][0]
    assert "Total return" in summary
    # the fake's closes rise one per minute: each asset is bought once and never falls back
    # below its mean, so two filled orders and two open positions
    assert "Orders: 2 (filled 2)" in summary
    assert "Open positions at end: BTCUSDT" in summary
    report = (tmp_path / "report.html").read_text()
    assert 'id="trades"' in report

    page = (tmp_path / "sweep.html").read_text()
    data = json.loads(re.search(r'id="sweep-data">(.*?)</script>', page, re.S)[1])  # type: ignore[index]
    assert data["params"] == ["lookback", "threshold"]
    assert len(data["rows"]) == 9
    assert all(curve is not None for curve in data["curves"])
    table = pl.DataFrame(data["rows"])
    assert table["lookback"].unique().sort().to_list() == [30, 60, 120]


def setup_walk_commands() -> list[list[str]]:
    readme = (ROOT / "README.md").read_text()
    block = re.search(
        r"<!-- setup-walk: start.*?```bash\n(.*?)```\n<!-- setup-walk: end -->", readme, re.S
    )
    assert block is not None, "README.md lost its setup-walk markers"
    lines = block[1].replace("\\\n", " ").strip().splitlines()
    return [shlex.split(line.removesuffix("&").strip()) for line in lines]


async def _listening_url(process: asyncio.subprocess.Process) -> str:
    assert process.stdout is not None
    while line := await asyncio.wait_for(process.stdout.readline(), 60):
        record = json.loads(line)
        if record.get("event") == "replay_listening":
            return str(record["url"])
    raise AssertionError("serve-replay ended before listening")


async def test_readme_setup_walk_backtest_sweep_paper_report_live_with_one_file(
    tmp_path: Path,
) -> None:
    """The walk of one setup file: backtest, sweep, a replay server and the paper daemon
    (subprocesses), the report from the daemon's journal, and the live config (checked: no
    venue is reachable here). The daemon's fills and equity equal the backtest's; the sweep's
    row of the setup's own parameters equals the backtest."""
    from tradeloop.config import load_config
    from tradeloop.plugins import load_setup

    commands = setup_walk_commands()
    assert [c[:2] for c in commands] == [
        ["tradeloop", "backtest"],
        ["tradeloop", "sweep"],
        ["tradeloop", "serve-replay"],
        ["tradeloop", "paper"],
        ["tradeloop", "report"],
        ["tradeloop", "live"],
    ]
    for name in ("examples", "deploy"):
        (tmp_path / name).symlink_to(ROOT / name)
    backtest, sweep, serve, paper, report, live = (
        [sys.executable, "-m", "tradeloop", *c[1:]] for c in commands
    )
    code, _, err = await run(backtest, tmp_path)
    assert code == 0, err
    code, sweep_out, err = await run(sweep, tmp_path)
    assert code == 0, err

    port = serve.index("--port") + 1
    server = await asyncio.create_subprocess_exec(
        *serve[:port], "0", *serve[port + 1 :], cwd=tmp_path, stdout=asyncio.subprocess.PIPE
    )
    try:
        url = await _listening_url(server)
        os.environ["TRADELOOP_FEED_URL"] = url  # where the README's config says 8765
        os.environ["TRADELOOP_HEALTH_PORT"] = "0"
        try:
            code, _, err = await run(paper, tmp_path)
        finally:
            del os.environ["TRADELOOP_FEED_URL"], os.environ["TRADELOOP_HEALTH_PORT"]
        assert code == 0, err
    finally:
        server.terminate()
        await server.wait()
    code, report_out, err = await run(report, tmp_path)
    assert code == 0, err

    columns = ["timestamp", "asset_id", "side", "qty", "price", "commission", "reason"]
    replayed = pl.read_parquet(tmp_path / "results/backtest/fills.parquet").select(columns)
    traded = pl.read_parquet(tmp_path / "state/result/fills.parquet").select(columns)
    assert replayed.height > 100
    assert traded.equals(replayed)
    equity = [
        pl.read_parquet(tmp_path / f"{d}/equity_curve.parquet").select("timestamp", "equity")
        for d in ("results/backtest", "state/result")
    ]
    assert equity[0].equals(equity[1])
    assert "stop_loss" in set(replayed["reason"].to_list())  # the setup's risk rule acts
    final = json.loads((tmp_path / "results/backtest/result.json").read_text())
    assert f"{final['metrics']['total_return']:.2%}" in report_out  # the report: same run
    assert (tmp_path / "paper-report.html").stat().st_size > 100_000
    row = re.search(r"│ 0\.8\s+┆ 0\.2\s+┆ (-?[\d.]+)", sweep_out)
    assert row is not None, sweep_out
    assert float(row[1]) == round(final["metrics"]["total_return"], len(row[1].split(".")[1]))

    config_path = tmp_path / live[live.index("--config") + 1]
    config = load_config(config_path, env={})
    assert (config.mode, config.venue_name) == ("live", "binance")
    cwd = Path.cwd()
    os.chdir(tmp_path)
    try:
        assert load_setup(config.strategy).name == "MLStrategy"
    finally:
        os.chdir(cwd)
