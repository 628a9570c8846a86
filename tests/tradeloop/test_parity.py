"""The parity matrix: seven strategies × three runtimes, identical fills, orders and equity
curves, AND identical callback inputs (every signal and context value each callback saw).

Runtimes: the replay ``Engine(bars, setup)``; ``Engine(ReplayFeed(bars, context), setup)``
through the live runtime in process; ``tradeloop serve-replay`` + ``tradeloop paper`` as two
real subprocesses on 127.0.0.1, the daemon loading the same setup by path from its config,
once fed one JSON message per bar and once one binary columnar frame per timestamp.
The strategies (``parity_setups.py``): per-event with a stop; batch with a target;
callable features feeding an ATR stop; precomputed features with a trailing stop; a context
series that starts late; stop and limit orders placed from ``on_fill``; a declarative
strategy (compiled in the replay, the event path elsewhere, so it has no callbacks to record).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import polars as pl
import pytest

from tests.tradeloop import parity_setups
from tradeloop import BacktestResult, Engine, HistoricalFeed, ReplayFeed
from tradeloop.data.bars import BarTable

SETUPS_FILE = Path(parity_setups.__file__).resolve()
NAMES = sorted(parity_setups.SETUPS)
FILL_COLUMNS = ["timestamp", "asset_id", "side", "qty", "price", "commission", "reason"]
ORDER_COLUMNS = ["order_id", "asset_id", "side", "qty", "order_type", "status", "filled_qty"]


# The same bars with holes: AAA misses every 7th bar and CCC its first 3, so the replay
# takes the ragged table's path (per-row asset codes, no shared layout) and the stream sees
# the universe change from timestamp to timestamp (its row finder pointed anew each time).
RAGGED = (
    parity_setups.BARS.with_columns(n=pl.int_range(pl.len()).over("asset_id"))
    .filter(
        ~((pl.col("asset_id") == "AAA") & (pl.col("n") % 7 == 3))
        & ~((pl.col("asset_id") == "CCC") & (pl.col("n") < 3))
    )
    .drop("n")
)


def run_in_process(
    name: str, log_dir: Path, stream: bool, bars: pl.DataFrame = parity_setups.BARS
) -> BacktestResult:
    setup = parity_setups.SETUPS[name]
    log_dir.mkdir(parents=True, exist_ok=True)
    previous = os.environ.get("TRADELOOP_PARITY_LOG")
    os.environ["TRADELOOP_PARITY_LOG"] = str(log_dir)
    try:
        feed: Any = ReplayFeed(bars, context=parity_setups.CONTEXT) if stream else bars
        return Engine(feed, setup, progress=False).run()
    finally:
        if previous is None:
            del os.environ["TRADELOOP_PARITY_LOG"]
        else:
            os.environ["TRADELOOP_PARITY_LOG"] = previous


@pytest.fixture(scope="module")
def replays(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[BacktestResult, Path]]:
    root = tmp_path_factory.mktemp("replay")
    return {name: (run_in_process(name, root, stream=False), root) for name in NAMES}


@pytest.fixture(scope="module")
def streams(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[BacktestResult, Path]]:
    root = tmp_path_factory.mktemp("stream")
    return {name: (run_in_process(name, root, stream=True), root) for name in NAMES}


@pytest.fixture(scope="module", params=["json-bars", "binary-frames"])
def daemons(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, Path]]:
    """One serve-replay, a paper daemon per strategy against it (concurrently); their state
    dirs. Twice: one JSON message per bar, and one binary columnar frame per timestamp
    (``--binary``: the decoder's repeated-header path and the intake's that go with it)."""
    root = tmp_path_factory.mktemp("daemon")
    bars, context = root / "bars.parquet", root / "context.parquet"
    parity_setups.BARS.write_parquet(bars)
    parity_setups.CONTEXT.write_parquet(context)
    serve = ["serve-replay", str(bars), "--context", str(context), "--port", "0"]
    if request.param == "binary-frames":
        serve.append("--binary")
    server = subprocess.Popen(
        [sys.executable, "-m", "tradeloop", *serve],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert server.stdout is not None
        url = _until(server.stdout, "replay_listening")["url"]
        env = {**os.environ, "TRADELOOP_PARITY_LOG": str(root / "logs")}
        (root / "logs").mkdir()
        procs = {}
        for name in NAMES:
            state = root / name
            config = root / f"{name}.toml"
            config.write_text(
                f'[run]\nstrategy = "{SETUPS_FILE}:{name}"\nstate_dir = "{state}"\n'
                f'[feed]\nurl = "{url}"\n[health]\nport = 0\n'
            )
            procs[name] = subprocess.Popen(
                [sys.executable, "-m", "tradeloop", "paper", "--config", str(config)],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
                text=True,
                env=env,
            )
        for name, proc in procs.items():
            _, err = proc.communicate(timeout=240)
            assert proc.returncode == 0, f"{name}: {err}"
        yield {name: root / name for name in NAMES} | {"logs": root / "logs"}
    finally:
        server.send_signal(signal.SIGTERM)
        server.communicate(timeout=30)


def _until(stream: Any, event: str) -> dict[str, Any]:
    for line in stream:
        record = json.loads(line)
        if record.get("event") == event:
            return record
    raise AssertionError(f"no {event!r}")


def callback_lines(folder: Path, name: str) -> list[str]:
    path = folder / f"{name}.jsonl"
    return path.read_text().splitlines() if path.exists() else []


def frames(result: BacktestResult) -> dict[str, pl.DataFrame]:
    return {
        "fills": result.fills.select(FILL_COLUMNS),
        "orders": result.orders.select(ORDER_COLUMNS),
        "equity": result.equity_curve.select("timestamp", "equity", "cash"),
    }


def daemon_frames(state: Path) -> dict[str, pl.DataFrame]:
    result = state / "result"
    return {
        "fills": pl.read_parquet(result / "fills.parquet").select(FILL_COLUMNS),
        "orders": pl.read_parquet(result / "orders.parquet").select(ORDER_COLUMNS),
        "equity": pl.read_parquet(result / "equity_curve.parquet").select(
            "timestamp", "equity", "cash"
        ),
    }


@pytest.mark.parametrize("name", NAMES)
def test_parity_in_process_stream_equals_the_replay(
    name: str,
    replays: dict[str, tuple[BacktestResult, Path]],
    streams: dict[str, tuple[BacktestResult, Path]],
) -> None:
    replay, replay_logs = replays[name]
    stream, stream_logs = streams[name]
    assert replay.fills.height > 0  # every strategy of the matrix trades
    for part, frame in frames(replay).items():
        assert frame.equals(frames(stream)[part]), f"{name}: {part} differ"
    lines = callback_lines(replay_logs, name)
    assert lines == callback_lines(stream_logs, name)
    assert (len(lines) > 0) is (name != "declarative")


@pytest.mark.parametrize("name", NAMES)
def test_parity_ragged_panel_in_process_stream_equals_the_replay(name: str, tmp_path: Path) -> None:
    assert not BarTable.from_frame(HistoricalFeed(RAGGED).frame()).complete  # the ragged path
    replay = run_in_process(name, tmp_path / "replay", stream=False, bars=RAGGED)
    stream = run_in_process(name, tmp_path / "stream", stream=True, bars=RAGGED)
    assert replay.fills.height > 0
    for part, frame in frames(replay).items():
        assert frame.equals(frames(stream)[part]), f"{name}: {part} differ"
    lines = callback_lines(tmp_path / "replay", name)
    assert lines == callback_lines(tmp_path / "stream", name)
    assert (len(lines) > 0) is (name != "declarative")


@pytest.mark.slow
@pytest.mark.parametrize("name", NAMES)
def test_parity_paper_daemon_subprocess_equals_the_replay(
    name: str,
    replays: dict[str, tuple[BacktestResult, Path]],
    daemons: dict[str, Path],
) -> None:
    replay, replay_logs = replays[name]
    ours = daemon_frames(daemons[name])
    for part, frame in frames(replay).items():
        assert frame.equals(ours[part]), f"{name}: {part} differ"
    assert callback_lines(replay_logs, name) == callback_lines(daemons["logs"], name)
    summary = json.loads((daemons[name] / "summary.json").read_text())
    assert summary["metrics"]["final_value"] == replay["final_value"]


def test_parity_matrix_exercises_what_it_claims(
    replays: dict[str, tuple[BacktestResult, Path]],
) -> None:
    """Each row of the matrix does what its name says (so the equalities mean something)."""
    exits = {n: r.config.get("risk_exits", {}) for n, (r, _) in replays.items()}
    assert sum(exits["per_event"].values()) > 0
    assert sum(exits["batch"].values()) > 0
    assert sum(exits["callable_atr"].values()) > 0  # the ATR stop reads the callable's atr
    assert sum(exits["precomputed"].values()) > 0
    _, logs = replays["late_context"]
    first = json.loads(callback_lines(logs, "late_context")[0])
    assert json.loads(first["context"])["breadth"] is None  # None before the series starts
    kinds = set(replays["on_fill_orders"][0].orders["order_type"].to_list())
    assert {"stop", "limit"} <= kinds
    assert replays["declarative"][0].config["compiled"] is True
    groups = replays["order_groups"][0].orders
    assert {"stop", "limit", "trailing_stop"} <= set(groups["order_type"].to_list())
    assert {"filled", "cancelled"} <= set(
        groups["status"].to_list()
    )  # a leg filled, its sibling went
    features = json.loads(callback_lines(replays["callable_atr"][1], "callable_atr")[-1])
    assert "atr" in json.loads(features["signals"])
    assert "day_of_week" in json.loads(features["context"])
