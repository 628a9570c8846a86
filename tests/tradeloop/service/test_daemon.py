"""The paper daemon and the replay server as real subprocesses on 127.0.0.1."""

from __future__ import annotations

import asyncio
import io
import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

import polars as pl
import pytest
import structlog

from tests.tradeloop.service.daemons import (
    DATA,
    ROOT,
    STRATEGY,
    backtest_of_sample,
    daemon,
    json_lines,
    write_config,
)
from tradeloop import Engine
from tradeloop.cli.service import EXIT_REFUSED
from tradeloop.errors import ConnectionLostError


def test_paper_daemon_subprocess_matches_the_backtest(replay_server: str, tmp_path: Path) -> None:
    proc = daemon(write_config(tmp_path, replay_server))
    out, err = proc.communicate(timeout=180)
    assert proc.returncode == 0, err
    stopped = next(json.loads(line) for line in out.splitlines() if '"daemon_stopped"' in line)
    assert stopped["run_id"]
    assert stopped["strategy"] == STRATEGY

    backtest = backtest_of_sample()
    paper = pl.read_parquet(tmp_path / "state" / "fills.parquet")
    columns = ["timestamp", "asset_id", "side", "qty", "price", "commission", "reason"]
    assert paper.select(columns).equals(backtest.fills.select(columns))
    summary = json.loads((tmp_path / "state" / "summary.json").read_text())
    assert summary["final_equity"] == pytest.approx(backtest["final_value"], abs=1e-9)
    assert summary["stopped_early"] is False
    assert summary["bars"] == backtest.config["n_bars"]


@pytest.mark.parametrize("replay_server", [(2_000_000.0,)], indirect=True)
def test_daemon_serves_health_and_stops_cleanly_on_sigterm(
    replay_server: str, tmp_path: Path
) -> None:
    proc = daemon(write_config(tmp_path, replay_server))
    assert proc.stdout is not None
    started = json_lines(proc.stdout, "daemon_started")
    health = started["health"]
    assert urllib.request.urlopen(f"{health}/healthz", timeout=5).status == 200
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:  # ready once bars flow
        try:
            if urllib.request.urlopen(f"{health}/readyz", timeout=5).status == 200:
                break
        except OSError:
            time.sleep(0.05)
    metrics = urllib.request.urlopen(f"{health}/metrics", timeout=5).read().decode()
    assert "tradeloop_bars_total" in metrics
    assert "# TYPE tradeloop_equity gauge" in metrics
    for task in ("bar_feed", "control_watcher", "health_server"):  # every task supervised
        assert f'tradeloop_task_restarts_total{{task="{task}"}} 0' in metrics
    ready = json.loads(urllib.request.urlopen(f"{health}/readyz", timeout=5).read())
    assert ready["ready"] is True
    assert "tasks_lost" not in ready
    proc.send_signal(signal.SIGTERM)
    proc.communicate(timeout=30)
    assert proc.returncode == 0
    summary = json.loads((tmp_path / "state" / "summary.json").read_text())
    assert summary["stopped_early"] is True
    assert 0 < summary["timestamps"] < 504
    assert pl.read_parquet(tmp_path / "state" / "fills.parquet").height == summary["fills"]
    leftovers = [p.name for p in (tmp_path / "state").iterdir() if p.name.endswith(".tmp")]
    assert leftovers == []


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ({"broker__comission": "0.001"}, "unknown key broker.comission"),
        ({"run__mode": '"live"'}, 'live mode needs [venue] name = "binance"'),
        ({"run__mode": '"live"', "venue__name": '"binance"'}, "use 'tradeloop live'"),
        ({"venue__on_mismatch": '"ignore"'}, 'venue.on_mismatch must be "halt" or "reduce_only"'),
        ({"risk__max_daily_loss": "1.5"}, "a fraction of the day's starting equity"),
        ({"broker__initial_cash": '"lots"'}, "should be an integer or a number"),
        ({"feed__url": '"http://x"'}, "must start with ws://"),
    ],
)
def test_bad_config_exits_nonzero_with_a_clear_error_and_writes_nothing(
    tmp_path: Path, override: dict[str, str], message: str
) -> None:
    proc = daemon(write_config(tmp_path, "ws://127.0.0.1:9", **override))
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == EXIT_REFUSED
    assert message in err
    assert not (tmp_path / "state").exists()


def test_live_mode_refuses_without_confirmation(tmp_path: Path) -> None:
    config = write_config(tmp_path, "ws://127.0.0.1:9", run__mode='"live"', venue__name='"binance"')
    done = subprocess.run(
        [sys.executable, "-m", "tradeloop", "live", "--config", str(config)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == EXIT_REFUSED
    assert "--confirm-live" in done.stderr


def _journal_progress(path: Path) -> tuple[int, int]:
    import sqlite3

    with sqlite3.connect(path) as db:
        last = db.execute("SELECT value FROM meta WHERE key = 'last_ts_ns'").fetchone()
        fills = db.execute("SELECT COUNT(*) FROM fills").fetchone()[0]
    return (int(last[0]) if last else 0), fills


@pytest.mark.parametrize("replay_server", [(1.2e7,)], indirect=True)
def test_sigkill_mid_run_then_restart_ends_exactly_like_the_backtest(
    replay_server: str, tmp_path: Path
) -> None:
    config = write_config(tmp_path, replay_server)
    journal = tmp_path / "state" / "journal.sqlite"
    progress = [(0, 0)]
    for delay in (1.2, 1.8, 1.5):  # three crashes at different points of the run
        proc = daemon(config)
        assert proc.stdout is not None
        json_lines(proc.stdout, "daemon_started")
        time.sleep(delay)
        proc.kill()  # SIGKILL: no cleanup, no final write
        proc.communicate(timeout=30)
        assert proc.returncode == -signal.SIGKILL
        progress.append(_journal_progress(journal))
    assert progress[1][0] > 0, "the first crash came before any timestamp was committed"
    assert progress[-1][0] > progress[1][0], "the restarts did not make progress"
    assert not (tmp_path / "state" / "summary.json").exists()

    final = daemon(config)
    out, err = final.communicate(timeout=180)
    assert final.returncode == 0, err
    assert '"event": "state_restored"' in out

    backtest = backtest_of_sample()
    columns = ["timestamp", "asset_id", "side", "qty", "price", "commission", "reason"]
    paper = pl.read_parquet(tmp_path / "state" / "fills.parquet")
    assert paper.select(columns).equals(backtest.fills.select(columns))
    summary = json.loads((tmp_path / "state" / "summary.json").read_text())
    assert summary["final_equity"] == pytest.approx(backtest["final_value"], abs=1e-9)
    import sqlite3

    with sqlite3.connect(journal) as db:
        total, distinct = db.execute(
            "SELECT COUNT(*), COUNT(DISTINCT client_order_id) FROM orders"
        ).fetchone()
    assert total == distinct == backtest.orders.height  # every order once, none twice


# a venue-like server: 504 daily bars in about 6 s, whoever is connected or not
@pytest.mark.parametrize("replay_server", [(86_400 / 0.012, "--live-clock")], indirect=True)
def test_restart_on_a_live_clock_backfills_what_it_missed(
    replay_server: str, tmp_path: Path
) -> None:
    config = write_config(tmp_path, replay_server)
    proc = daemon(config)
    assert proc.stdout is not None
    json_lines(proc.stdout, "daemon_started")
    time.sleep(1.5)
    proc.kill()
    proc.communicate(timeout=30)
    committed, _ = _journal_progress(tmp_path / "state" / "journal.sqlite")
    assert committed > 0
    time.sleep(1.0)  # the venue keeps publishing while the daemon is down

    final = daemon(config)
    out, err = final.communicate(timeout=180)
    assert final.returncode == 0, err
    backfilled = next(json.loads(x) for x in out.splitlines() if '"feed_backfilled"' in x)
    assert backfilled["start_ns"] == committed  # from the journal's last timestamp on
    backtest = backtest_of_sample()
    columns = ["timestamp", "asset_id", "side", "qty", "price", "commission", "reason"]
    paper = pl.read_parquet(tmp_path / "state" / "fills.parquet")
    assert paper.select(columns).equals(backtest.fills.select(columns))
    summary = json.loads((tmp_path / "state" / "summary.json").read_text())
    assert summary["feed_backfilled"] > 0  # what was published while down came from /history
    assert summary["final_equity"] == pytest.approx(backtest["final_value"], abs=1e-9)


def _metric(health: str, line_start: str) -> float:
    text = urllib.request.urlopen(f"{health}/metrics", timeout=5).read().decode()
    return float(next(x for x in text.splitlines() if x.startswith(line_start)).split()[-1])


@pytest.mark.parametrize("replay_server", [(86_400 / 0.02,)], indirect=True)
@pytest.mark.parametrize("how", ["cli", "sigusr1"])
def test_kill_switch_halts_trading_and_survives_a_restart(
    replay_server: str, tmp_path: Path, how: str
) -> None:
    config = write_config(tmp_path, replay_server)
    proc = daemon(config)
    assert proc.stdout is not None
    health = json_lines(proc.stdout, "daemon_started")["health"]
    time.sleep(2.0)  # trade a while (the strategy places orders most days)
    if how == "cli":
        done = subprocess.run(
            [
                sys.executable,
                "-m",
                "tradeloop",
                "kill",
                "--config",
                str(config),
                "--reason",
                "drift",
            ],
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        )
        assert f"halted (drift) applied by the daemon (pid {proc.pid})" in done.stdout
    else:
        proc.send_signal(signal.SIGUSR1)
    changed = json_lines(proc.stdout, "gate_mode_changed", timeout_s=10)
    assert changed["mode"] == "halted"
    assert _metric(health, 'tradeloop_gate_mode{mode="halted"}') == 1
    time.sleep(1.5)  # the strategy keeps deciding; the gate refuses
    proc.send_signal(signal.SIGTERM)
    proc.communicate(timeout=30)
    assert proc.returncode == 0

    summary = json.loads((tmp_path / "state" / "summary.json").read_text())
    assert summary["gate_mode"] == "halted"
    assert summary["gate_reason"] == ("drift" if how == "cli" else "SIGUSR1")
    orders = pl.read_parquet(tmp_path / "state" / "orders.parquet")
    refused = orders.filter(pl.col("message").str.starts_with("gate halted"))
    assert refused.height == summary["gate_rejections"]["halted"] > 0
    # the kill cancelled what was working, so nothing filled from the first refusal on
    first_refusal = refused["submitted_at"].min()
    fills = pl.read_parquet(tmp_path / "state" / "fills.parquet")
    assert fills.height > 0
    assert fills.filter(pl.col("timestamp") >= first_refusal).height == 0
    assert (
        orders.filter(pl.col("submitted_at") >= first_refusal)["message"]
        .str.starts_with("gate halted")
        .all()
    )
    assert orders.filter(pl.col("status").is_in(["accepted", "partially_filled"])).height == 0

    # a restart stays halted: the mode is in the journal and in control.json
    again = daemon(config)
    assert again.stdout is not None
    health = json_lines(again.stdout, "daemon_started")["health"]
    assert _metric(health, 'tradeloop_gate_mode{mode="halted"}') == 1
    again.send_signal(signal.SIGTERM)
    again.communicate(timeout=30)
    assert json.loads((tmp_path / "state" / "summary.json").read_text())["gate_mode"] == "halted"


def test_live_mode_names_an_unknown_venue(tmp_path: Path) -> None:
    config = write_config(tmp_path, "ws://127.0.0.1:9", run__mode='"live"', venue__name='"ftx"')
    done = subprocess.run(
        [sys.executable, "-m", "tradeloop", "live", "--config", str(config), "--confirm-live"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == EXIT_REFUSED
    assert "venue = 'ftx': no such adapter (installed: alpaca, binance)" in done.stderr


def test_daemon_feature_provider_from_config_skips_a_hung_timestamp(
    replay_server: str, tmp_path: Path
) -> None:
    (tmp_path / "feats.py").write_text(
        "import asyncio\n"
        "from tradeloop import CallableFeatureProvider\n"
        "async def fetch(asset_id, when):\n"
        "    if (when.year, when.month, when.day) == (2022, 3, 14):\n"
        "        await asyncio.sleep(30)  # the model server hangs on one bar\n"
        "    return {'extra': 1.0}\n"
        "def provider():\n"
        "    return CallableFeatureProvider(fetch, timeout_s=0.2)\n"
    )
    config = write_config(
        tmp_path, replay_server, run__features=f'"{tmp_path / "feats.py"}:provider"'
    )
    proc = daemon(config)
    out, err = proc.communicate(timeout=180)
    assert proc.returncode == 0, err
    skipped = next(json.loads(x) for x in out.splitlines() if '"features_skipped"' in x)
    assert skipped["ts"].startswith("2022-03-14")
    assert "took longer than 0.2 s" in skipped["error"]
    summary = json.loads((tmp_path / "state" / "summary.json").read_text())
    assert summary["feature_skips"] == 1
    assert summary["timestamps"] == 504


def test_live_mode_without_venue_keys_exits_with_the_missing_variable(tmp_path: Path) -> None:
    config = write_config(
        tmp_path,
        "ws://127.0.0.1:9",
        run__mode='"live"',
        venue__name='"binance"',
        venue__symbols='["BTCUSDT"]',
        venue__rest_url='"http://127.0.0.1:9"',
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("BINANCE_")}
    done = subprocess.run(
        [sys.executable, "-m", "tradeloop", "live", "--config", str(config), "--confirm-live"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env=env,
    )
    assert done.returncode == EXIT_REFUSED
    assert "BINANCE_API_KEY" in done.stderr
    assert "Traceback" not in done.stderr


async def test_daemon_skips_a_bad_bar_counts_it_by_rule_and_trades_the_rest(
    tmp_path: Path,
) -> None:
    """A feed that sends one impossible bar (close above high) among good ones: the daemon
    logs `bar_refused` with the rule, counts it in summary.json, and its fills equal a
    backtest of the good bars alone (the same rules refuse that bar in a backtest)."""
    import asyncio

    from websockets.asyncio.server import ServerConnection, serve

    from tradeloop.clock import utc_ns
    from tradeloop.events import BarMessage, EndMessage
    from tradeloop.stream.codec import encode

    bars = pl.read_parquet(DATA / "sample.parquet").sort("timestamp", "asset_id").head(200)
    rows = bars.to_dicts()
    bad = dict(rows[57], close=rows[57]["high"] * 1.5)
    frames = [
        encode(
            BarMessage(
                r["asset_id"],
                utc_ns(r["timestamp"]),
                r["open"],
                r["high"],
                r["low"],
                r["close"],
                r["volume"],
                {"ml_pred": r["ml_pred"], "confidence": r["confidence"]},
            )
        )
        for r in [*rows[:57], bad, *rows[58:]]
    ]

    async def handler(connection: ServerConnection) -> None:
        for frame in frames:
            await connection.send(frame)
        await connection.send(encode(EndMessage()))

    async with serve(handler, "127.0.0.1", 0) as server:
        url = f"ws://127.0.0.1:{server.sockets[0].getsockname()[1]}"
        proc = daemon(write_config(tmp_path, url))
        out, err = await asyncio.to_thread(proc.communicate, timeout=120)
    assert proc.returncode == 0, err
    refused = [json.loads(line) for line in out.splitlines() if '"bar_refused"' in line]
    assert [(e["rule"], e["asset"]) for e in refused] == [("outside_range", bad["asset_id"])]
    summary = json.loads((tmp_path / "state" / "summary.json").read_text())
    assert summary["invalid_bars"] == {"outside_range": 1}

    good = pl.DataFrame([*rows[:57], *rows[58:]], schema=bars.schema)
    backtest = Engine(
        feed=good, strategy=_ml_strategy(), initial_cash=100_000.0, commission=0.0005
    ).run()
    columns = ["timestamp", "asset_id", "side", "qty", "price", "commission", "reason"]
    paper = pl.read_parquet(tmp_path / "state" / "fills.parquet").select(columns)
    assert paper.equals(backtest.fills.select(columns))
    assert paper.height > 0


def _ml_strategy() -> Any:
    sys.path.insert(0, str(ROOT / "examples"))
    try:
        from ml_strategy import MLStrategy
    finally:
        sys.path.remove(str(ROOT / "examples"))
    return MLStrategy()


def test_asyncio_errors_become_one_redacted_json_event() -> None:
    """A task's unretrieved exception goes through the daemon's log (redacted), not to stderr
    raw: the URL's password and token never reach a line. The logger is the daemon's chain
    (redaction, then JSON) on a private buffer: the global logging setup is left alone."""
    from tradeloop.logs import redact_secrets
    from tradeloop.service.daemon import _asyncio_error

    out = io.StringIO()
    log = structlog.wrap_logger(
        structlog.PrintLogger(file=out),
        processors=[redact_secrets, structlog.processors.JSONRenderer()],
    )
    error = ConnectionLostError("ws://u:hunter2pass@127.0.0.1:9/s?token=tok3n-value: refused")
    loop = asyncio.new_event_loop()
    try:
        _asyncio_error(log, loop, {"message": "never retrieved", "exception": error})
    finally:
        loop.close()
    (line,) = out.getvalue().splitlines()
    event = json.loads(line)
    assert (event["event"], event["message"]) == ("asyncio_error", "never retrieved")
    assert "ws://***@127.0.0.1:9/s?token=***" in event["error"]
    assert "hunter2pass" not in line
    assert "tok3n-value" not in line
