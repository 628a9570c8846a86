"""Operator commands and health that tell the truth: the daemon as a real subprocess.

``tradeloop kill`` reports a kill as applied only when the daemon's own acknowledgement
says so, and says when no daemon answers; the control watcher survives any content; health
answers while a strategy holds the daemon's loop (the strategy here blocks until the test
lets it go, so nothing depends on timing) and readiness names a dead feed; a strategy that
raises ends the run with a structured event, its state written and exit code 70.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from datetime import UTC
from pathlib import Path
from typing import Any

import polars as pl
import pytest

from tests.tradeloop.service.daemons import daemon, json_lines, write_config
from tradeloop.service.failure import EXIT_STRATEGY

HELD = """
import time
from pathlib import Path
from tradeloop import Strategy

class Held(Strategy):
    '''Buys one share of the first asset every bar; at bar ``hold_at`` it buys, then holds
    the daemon's loop until the file ``release`` exists (``release`` + ".held" says so).'''

    def __init__(self, hold_at=5, release="", fail_at=0):
        super().__init__()
        self.hold_at, self.release, self.fail_at, self.n = hold_at, release, fail_at, 0

    def on_timestamp_batch(self, batch, context):
        self.n += 1
        self.buy(batch.asset_ids[0], 1)
        if self.n == self.hold_at:
            Path(self.release + ".held").touch()
            while not Path(self.release).exists():
                time.sleep(0.01)

    def on_fill(self, fill):
        if self.fail_at and self.n >= self.fail_at:
            raise ZeroDivisionError("the model divided by zero")
"""


def _kill(*args: str, env: dict[str, str] | None = None, cwd: Path | None = None) -> Any:
    return subprocess.run(
        [sys.executable, "-m", "tradeloop", "kill", *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env=env,
        cwd=cwd,
    )


def _get(url: str) -> tuple[int, dict[str, Any]]:
    try:
        with urllib.request.urlopen(url, timeout=30) as answer:
            return answer.status, json.loads(answer.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read())


def _wait_for(path: Path) -> None:
    deadline = time.monotonic() + 60
    while not path.exists():
        assert time.monotonic() < deadline, f"{path} never appeared"
        time.sleep(0.02)


def _held_config(tmp_path: Path, url: str, **params: Any) -> Path:
    (tmp_path / "held.py").write_text(HELD)
    table = ", ".join(f"{k} = {json.dumps(v)}" for k, v in params.items())
    return write_config(
        tmp_path,
        url,
        run__strategy=f'"{tmp_path / "held.py"}:Held"',
        run__params=f"{{ {table} }}",
    )


def test_kill_without_a_daemon_says_no_daemon_answered(tmp_path: Path) -> None:
    config = write_config(tmp_path, "ws://127.0.0.1:9")
    done = _kill("--config", str(config), "--reason", "drift")
    assert done.returncode == 3
    state = tmp_path / "state"
    assert f"no daemon runs on {state} (nobody holds its lock" in done.stdout
    assert f"run.state_dir of {config}" in done.stdout
    assert json.loads((state / "control.json").read_text())["mode"] == "halted"
    assert "applied" not in done.stdout


@pytest.mark.parametrize("replay_server", [(86_400 / 0.02,)], indirect=True)  # ~10 s
def test_kill_finds_the_state_dir_the_daemon_was_given_by_its_environment(
    replay_server: str, tmp_path: Path
) -> None:
    config = _held_config(tmp_path, replay_server, hold_at=3, release=str(tmp_path / "go"))
    elsewhere = tmp_path / "var" / "state"  # as a systemd unit's Environment= would set it
    env = {**os.environ, "TRADELOOP_RUN_STATE_DIR": str(elsewhere)}
    proc = daemon(config, env=env)
    _wait_for(tmp_path / "go.held")  # running, and holding its loop: it cannot answer yet
    shell = tmp_path / "shell"
    shell.mkdir()
    without = _kill("--config", str(config), "--wait", "1", cwd=shell)  # an operator's shell
    assert without.returncode == 3
    assert f"no daemon runs on {tmp_path / 'state'}" in without.stdout
    assert "pass it with --state-dir" in without.stdout
    busy = _kill("--state-dir", str(elsewhere), "--wait", "0.5")
    assert busy.returncode == 3
    assert f"the daemon (pid {proc.pid}) on {elsewhere} has not answered" in busy.stdout
    (tmp_path / "go").touch()  # the strategy lets go: the kill applies before any send
    same_env = _kill("--config", str(config), "--reason", "found it", env=env)
    assert same_env.returncode == 0, same_env.stdout
    assert f"halted (found it) applied by the daemon (pid {proc.pid}) on {elsewhere}" in (
        same_env.stdout
    )
    proc.send_signal(signal.SIGTERM)
    proc.communicate(timeout=60)
    orders = pl.read_parquet(elsewhere / "orders.parquet")
    fills = pl.read_parquet(elsewhere / "fills.parquet")
    # the order decided while the loop was held (bar 3) was cancelled by the kill, unsent:
    # two orders filled (bars 1 and 2), none after
    assert fills.height == 2
    third = orders.sort("order_id").row(2, named=True)
    assert (third["status"], third["message"]) == (
        "cancelled",
        "cancelled: halted (tradeloop kill)",  # the kill that was waiting (--state-dir)
    )


@pytest.mark.parametrize("replay_server", [(86_400 / 0.05,)], indirect=True)  # ~25 s
def test_control_watcher_survives_any_content_and_logs_it(
    replay_server: str, tmp_path: Path
) -> None:
    config = _held_config(tmp_path, replay_server, hold_at=10_000, release=str(tmp_path / "go"))
    proc = daemon(config)
    json_lines(proc.stdout, "daemon_started")  # type: ignore[arg-type]
    control = tmp_path / "state" / "control.json"
    control.write_bytes(b"\xff\xfe not utf-8 \x00")
    bad = json_lines(proc.stdout, "control_file_invalid")  # type: ignore[arg-type]
    assert "UnicodeDecodeError" in bad["error"]
    assert bad["mode_in_force"] == "normal"
    control.unlink()
    control.mkdir()
    bad = json_lines(proc.stdout, "control_file_invalid")  # type: ignore[arg-type]
    assert "IsADirectoryError" in bad["error"]
    control.rmdir()
    control.write_text('{"mode": "stop it"}')
    bad = json_lines(proc.stdout, "control_file_invalid")  # type: ignore[arg-type]
    assert "'stop it' is not a valid GateMode" in bad["error"]
    done = _kill("--config", str(config), "--reduce-only", "--reason", "still listening")
    assert done.returncode == 0, done.stdout
    assert "reduce_only (still listening) applied by the daemon" in done.stdout
    changed = json_lines(proc.stdout, "gate_mode_changed")  # type: ignore[arg-type]
    assert changed["mode"] == "reduce_only"
    proc.send_signal(signal.SIGTERM)
    proc.communicate(timeout=60)
    assert proc.returncode == 0


def test_health_answers_while_a_strategy_holds_the_loop(replay_server: str, tmp_path: Path) -> None:
    config = _held_config(tmp_path, replay_server, hold_at=4, release=str(tmp_path / "go"))
    proc = daemon(config)
    health = json_lines(proc.stdout, "daemon_started")["health"]  # type: ignore[arg-type]
    _wait_for(tmp_path / "go.held")
    status, body = _get(f"{health}/healthz")  # served from its own thread: it answers
    assert (status, body["status"]) == (200, "ok")
    metrics = urllib.request.urlopen(f"{health}/metrics", timeout=30).read().decode()
    assert "tradeloop_event_loop_busy_seconds" in metrics
    assert "tradeloop_timestamps_total 3" in metrics  # the three bars before the held one
    (tmp_path / "go").touch()
    proc.send_signal(signal.SIGTERM)
    proc.communicate(timeout=60)
    assert proc.returncode == 0


def test_readiness_names_a_dead_feed(tmp_path: Path) -> None:
    config = write_config(tmp_path, "ws://127.0.0.1:9", feed__stale_after_s="0.5")
    proc = daemon(config)  # port 9 refuses: the supervisor retries, the feed stays silent
    health = json_lines(proc.stdout, "daemon_started")["health"]  # type: ignore[arg-type]
    json_lines(proc.stdout, "feed_reconnecting")  # type: ignore[arg-type]
    deadline = time.monotonic() + 60
    while True:
        status, body = _get(f"{health}/readyz")
        if any(r.startswith("feed silent") for r in body.get("reasons", ())):
            break
        assert time.monotonic() < deadline, body
        time.sleep(0.1)
    assert status == 503
    assert "no bar handled yet" in body["reasons"]
    assert _get(f"{health}/healthz")[0] == 200  # alive: only the feed is dead
    proc.send_signal(signal.SIGTERM)
    proc.communicate(timeout=60)


SLOW = """
import time
from tradeloop import Strategy

class Slow(Strategy):
    # slower than its feed: pause_s of work per timestamp (a model that takes its time)

    def __init__(self, pause_s=0.02):
        super().__init__()
        self.pause_s = pause_s

    def on_timestamp_batch(self, batch, context):
        time.sleep(self.pause_s)
"""


def _metric(health: str, name: str) -> float:
    text = urllib.request.urlopen(f"{health}/metrics", timeout=30).read().decode()
    (line,) = [ln for ln in text.splitlines() if ln.startswith(name + " ")]
    return float(line.split()[1])


def _well_formed(metrics: str) -> None:
    """Prometheus text format: one TYPE line per metric name, no series twice."""
    types = [ln.split()[2] for ln in metrics.splitlines() if ln.startswith("# TYPE ")]
    assert len(types) == len(set(types)), sorted(t for t in types if types.count(t) > 1)
    series = [ln.rsplit(" ", 1)[0] for ln in metrics.splitlines() if not ln.startswith("#")]
    assert len(series) == len(set(series)), sorted(s for s in series if series.count(s) > 1)


def test_readiness_names_lag_behind_the_feed_when_the_strategy_is_slower_than_its_bars(
    replay_server: str, tmp_path: Path
) -> None:
    """The replay server sends the sample's 504 daily bars as fast as it can; the strategy
    takes 20 ms a bar, so the feed (read ahead by the pump) runs days ahead of what the
    strategy has handled. With ``max_lag_s`` = 10 days, /readyz turns 503 naming the lag,
    /metrics exports it, and /healthz stays 200 (the loop is not held, only behind)."""
    (tmp_path / "slow.py").write_text(SLOW)
    ten_days = 10 * 86_400
    config = write_config(
        tmp_path,
        replay_server,
        run__strategy=f'"{tmp_path / "slow.py"}:Slow"',
        health__max_lag_s=str(ten_days),
    )
    proc = daemon(config)
    health = json_lines(proc.stdout, "daemon_started")["health"]  # type: ignore[arg-type]
    deadline = time.monotonic() + 60
    while True:
        status, body = _get(f"{health}/readyz")
        lagging = [r for r in body.get("reasons", ()) if "behind the feed" in r]
        if lagging:
            break
        assert time.monotonic() < deadline, body
        assert proc.poll() is None, body
        time.sleep(0.05)
    assert status == 503
    assert lagging[0].endswith(f"(max_lag_s {ten_days})")
    behind_s = float(lagging[0].split()[0])
    assert behind_s > ten_days
    assert behind_s % 86_400 == 0  # whole days of bar time: daily bars, all at 21:00
    assert _metric(health, "tradeloop_bar_lag_seconds") > 0
    _well_formed(urllib.request.urlopen(f"{health}/metrics", timeout=30).read().decode())
    assert _get(f"{health}/healthz")[0] == 200
    proc.send_signal(signal.SIGTERM)
    proc.communicate(timeout=60)
    assert proc.returncode == 0


def test_strategy_exception_ends_the_run_with_its_state_and_exit_70(
    replay_server: str, tmp_path: Path
) -> None:
    config = _held_config(tmp_path, replay_server, hold_at=0, fail_at=6)
    proc = daemon(config)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == EXIT_STRATEGY, err
    assert "Traceback" not in err
    records = [json.loads(line) for line in out.splitlines()]
    failed = next(r for r in records if r["event"] == "strategy_failed")
    assert failed["callback"] == "on_fill"
    assert failed["error"] == "ZeroDivisionError: the model divided by zero"
    assert 'raise ZeroDivisionError("the model divided by zero")' in failed["traceback"]
    # bar 7's open fills bar 6's order, and on_fill raises there (the 6th bar was decided)
    sample = pl.read_parquet(Path(__file__).parents[3] / "examples/data/sample.parquet")
    days = sample["timestamp"].unique().sort()
    assert failed["ts"] == days[6].isoformat() + "+00:00"
    assert failed["asset"] == sample["asset_id"].unique().sort()[0]
    summary = json.loads((tmp_path / "state" / "summary.json").read_text())
    assert summary["error"]["callback"] == "on_fill"
    assert summary["timestamps"] == 6  # bars 1-6 handled and journaled; bar 7 never was
    assert summary["fills"] == 5  # the book as journaled: bars 2-6 filled bars 1-5's orders
    assert summary["journal_seq"] == 6
    assert pl.read_parquet(tmp_path / "state" / "fills.parquet").height == 5
    # resuming, as documented: fix the strategy and start it again (same config)
    (tmp_path / "held.py").write_text(
        HELD.replace('raise ZeroDivisionError("the model divided by zero")', "pass")
    )
    resumed = daemon(config)
    out, err = resumed.communicate(timeout=120)
    assert resumed.returncode == 0, err
    assert '"event": "strategy_code_changed"' in out
    restored = json.loads(next(x for x in out.splitlines() if '"state_restored"' in x))
    assert restored["after_ts_ns"] == summary_ts_ns(days[5])
    summary = json.loads((tmp_path / "state" / "summary.json").read_text())
    assert summary["error"] is None
    assert summary["timestamps"] == days.len() - 6  # the rest of the run, bar 7 first
    assert summary["fills"] == days.len() - 1  # one order a bar, each filled at the next


def summary_ts_ns(day: Any) -> int:
    return int(day.replace(tzinfo=UTC).timestamp()) * 10**9


def test_feed_credentials_never_reach_the_logs(tmp_path: Path) -> None:
    url = "ws://trader:hunter2pass@127.0.0.1:9/stream?token=tok3n-value&symbols=A"
    config = write_config(tmp_path, url, feed__stale_after_s="0.5")
    env = {**os.environ, "ALPACA_SECRET_KEY": "alpaca-s3cret"}
    proc = daemon(config, env=env)
    lines = []
    for line in proc.stdout:  # type: ignore[union-attr]
        lines.append(line)
        if sum('"feed_reconnecting"' in x for x in lines) >= 2:
            break
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=60)
    text = "".join(lines) + out + err
    assert '"daemon_started"' in text
    assert "ws://***@127.0.0.1:9/stream?token=***&symbols=A" in text
    for secret in ("hunter2pass", "tok3n-value", "trader:"):
        assert secret not in text
    # the same URL in a config error on stderr
    bad = write_config(tmp_path, url.replace(":9/", ":99999/"))
    done = subprocess.run(
        [sys.executable, "-m", "tradeloop", "paper", "--config", str(bad)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert "cannot be parsed" in done.stderr
    assert "hunter2pass" not in done.stderr + done.stdout
    assert "tok3n-value" not in done.stderr + done.stdout
