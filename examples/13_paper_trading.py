"""Step 13, paper trading from a config file: ``tradeloop serve-replay`` + ``tradeloop paper``.

Runs the two commands a deployment runs, as subprocesses on 127.0.0.1 with free ports: a
replay server streaming the first 60 days of the bundled sample as live bars, and the paper
daemon reading ``deploy/paper.toml`` unchanged. As in Docker, environment variables override
what differs here: TRADELOOP_FEED_URL (the replay's address), TRADELOOP_HEALTH_PORT=0 (any
free port) and TRADELOOP_RUN_STATE_DIR (a scratch directory). While the daemon trades, the
script asks its /healthz, /readyz and /metrics; when the stream ends the daemon writes
fills.parquet, orders.parquet, result/ and summary.json and exits 0. Last, the same 60 days
run as a backtest of the setup the config names (``examples/ml_setup.py``: the strategy, its
risk rules, its model and its costs): the fills must match. In a shell:

    tradeloop serve-replay bars.parquet --context examples/data/vix.parquet --port 8765
    TRADELOOP_FEED_URL=ws://127.0.0.1:8765 tradeloop paper --config deploy/paper.toml

Run: ``python examples/13_paper_trading.py`` (about 5 s; files go to a temporary directory,
or to $TRADELOOP_EXAMPLES_DIR when set).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

import polars as pl

from tradeloop import Context, Engine
from tradeloop.config import load_config
from tradeloop.plugins import load_setup

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "examples" / "data"
CONFIG = ROOT / "deploy" / "paper.toml"
DAYS = 60
SPEED = 86_400 * 20  # daily bars, 20 a second: slow enough to watch the health endpoints


def start(name: str, args: list[str], workdir: Path, env: dict[str, str]) -> subprocess.Popen[str]:
    """``tradeloop <args>`` in the repository root, its JSON log lines going to a file."""
    with (workdir / f"{name}.log").open("w") as log:  # the child keeps its own handle
        return subprocess.Popen(
            [sys.executable, "-m", "tradeloop", *args],
            cwd=ROOT,
            env={**os.environ, "PYTHONUNBUFFERED": "1", **env},
            stdout=log,
            stderr=subprocess.STDOUT,
            text=True,
        )


def wait_for_log(workdir: Path, name: str, event: str, timeout_s: float = 60.0) -> dict[str, Any]:
    """The first log line of ``name``'s process whose event is ``event``."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        lines = (workdir / f"{name}.log").read_text().split("\n")[:-1]  # whole lines only
        for line in lines:
            if line.startswith("{") and json.loads(line).get("event") == event:
                return dict(json.loads(line))
        time.sleep(0.05)
    raise TimeoutError(f"{name} did not log {event!r} within {timeout_s} s")


def get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as err:  # /readyz answers 503 until the first bar
        return err.code, err.read().decode()


def paper_run(workdir: Path, bars: Path) -> dict[str, Any]:
    """Serve ``bars``, run the daemon on them, watch its endpoints; return what it reported."""
    context = str(DATA / "vix.parquet")
    replay_args = ["serve-replay", str(bars), "--context", context, "--port", "0"]
    replay = start("replay", [*replay_args, "--speed", str(SPEED)], workdir, {})
    daemon = None
    try:
        url = wait_for_log(workdir, "replay", "replay_listening")["url"]
        env = {
            "TRADELOOP_FEED_URL": url,
            "TRADELOOP_HEALTH_PORT": "0",
            "TRADELOOP_RUN_STATE_DIR": str(workdir / "state"),
        }
        daemon = start("paper", ["paper", "--config", str(CONFIG)], workdir, env)
        health = wait_for_log(workdir, "paper", "daemon_started")["health"]
        print(f"  replay server  {url}   (tradeloop serve-replay, {DAYS} days)")
        print(f"  paper daemon   health on {health}   (tradeloop paper --config deploy/paper.toml)")
        status, body = get(f"{health}/healthz")
        print(f"  GET /healthz   {status} {body}")
        deadline = time.monotonic() + 30
        while (ready := get(f"{health}/readyz"))[0] != 200 and time.monotonic() < deadline:
            time.sleep(0.02)
        print(f"  GET /readyz    {ready[0]} {ready[1]}")
        metrics = dict(
            line.split() for line in get(f"{health}/metrics")[1].splitlines() if line[0] != "#"
        )
        print(
            f"  GET /metrics   tradeloop_bars_total {metrics['tradeloop_bars_total']}, "
            f"tradeloop_equity {float(metrics['tradeloop_equity']):,.2f}"
        )
        code = daemon.wait(timeout=120)
        files = ", ".join(sorted(p.name for p in (workdir / "state").iterdir()))
        print(f"  daemon exited {code} when the stream ended; state: {files}")
        summary: dict[str, Any] = json.loads((workdir / "state" / "summary.json").read_text())
        return summary
    finally:
        for proc in (daemon, replay):
            if proc is not None and proc.poll() is None:
                proc.terminate()  # SIGTERM: both shut down cleanly
                proc.wait(timeout=30)


def main(workdir: Path) -> int:
    bars = pl.read_parquet(DATA / "sample.parquet")
    first_days = bars["timestamp"].unique().sort().head(DAYS)
    bars = bars.filter(pl.col("timestamp").is_in(first_days.implode()))
    bars.write_parquet(workdir / "bars.parquet")
    print(f"Paper trading from deploy/paper.toml over {DAYS} days of the bundled sample")
    summary = paper_run(workdir, workdir / "bars.parquet")

    config = load_config(CONFIG, env={})  # the file alone: its setup and what it overrides
    backtest = Engine(
        feed=bars,
        strategy=load_setup(str(ROOT / config.strategy)),  # the setup paper.toml names
        context=Context(pl.read_parquet(DATA / "vix.parquet")),
        initial_cash=config.initial_cash,
        commission=config.commission,
        slippage=config.slippage,
    ).run()
    columns = ["timestamp", "asset_id", "side", "qty", "price", "commission", "reason"]
    paper_fills = pl.read_parquet(workdir / "state" / "fills.parquet").select(columns)
    same = paper_fills.equals(backtest.fills.select(columns))
    print("\n                         paper daemon        backtest")
    print(f"  bars                 {summary['bars']:>14,}  {backtest.config['n_bars']:>14,}")
    print(f"  fills                {summary['fills']:>14,}  {backtest.fills.height:>14,}")
    equity = (summary["final_equity"], backtest["final_value"])
    print(f"  final equity         {equity[0]:>14,.2f}  {equity[1]:>14,.2f}")
    print(f"\n  fills identical: {'yes' if same else 'NO'}")
    return 0 if same else 1


if __name__ == "__main__":
    if "TRADELOOP_EXAMPLES_DIR" in os.environ:
        raise SystemExit(main(Path(os.environ["TRADELOOP_EXAMPLES_DIR"])))
    with tempfile.TemporaryDirectory(prefix="tradeloop-paper-") as scratch:
        raise SystemExit(main(Path(scratch)))
