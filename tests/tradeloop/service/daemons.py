"""What the daemon's subprocess tests share: the paper daemon and the replay server as real
processes on 127.0.0.1, their configs, their JSON log lines, and the backtest they must
equal."""

from __future__ import annotations

import contextlib
import functools
import json
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import IO, Any

import polars as pl
import pytest

from tradeloop import Context, Engine

ROOT = Path(__file__).resolve().parents[3]
DATA = ROOT / "examples" / "data"
STRATEGY = f"{ROOT / 'examples' / 'ml_strategy.py'}:MLStrategy"


def json_lines(stream: IO[str], until: str, timeout_s: float = 60.0) -> dict[str, Any]:
    """Read JSON log lines until one whose event is ``until``; return it."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        line = stream.readline()
        if not line:
            raise AssertionError(f"process ended before logging {until!r}")
        record = json.loads(line)
        if record.get("event") == until:
            return record
    raise AssertionError(f"no {until!r} log line within {timeout_s} s")


@contextlib.contextmanager
def serving_replay(speed: float, *flags: str) -> Iterator[str]:
    """``tradeloop serve-replay`` of the sample on a free port; yields its URL."""
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tradeloop",
            "serve-replay",
            str(DATA / "sample.parquet"),
            "--context",
            str(DATA / "vix.parquet"),
            "--port",
            "0",
            "--speed",
            str(speed),
            *flags,
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        yield json_lines(proc.stdout, "replay_listening")["url"]
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=30)  # also closes the pipes
        assert proc.returncode == 0


@pytest.fixture
def replay_server(request: pytest.FixtureRequest) -> Iterator[str]:
    speed, *flags = getattr(request, "param", (0.0,))
    with serving_replay(speed, *flags) as url:
        yield url


def write_config(tmp_path: Path, url: str, **overrides: str) -> Path:
    sections = {
        "run": {
            "mode": '"paper"',
            "strategy": f'"{STRATEGY}"',
            "state_dir": f'"{tmp_path / "state"}"',
        },
        "feed": {"url": f'"{url}"'},
        "broker": {"initial_cash": "100000.0", "commission": "0.0005"},
        "health": {"host": '"127.0.0.1"', "port": "0"},
    }
    for dotted, value in overrides.items():
        section, key = dotted.split("__")
        sections.setdefault(section, {})[key] = value
    text = "".join(
        f"[{name}]\n" + "".join(f"{k} = {v}\n" for k, v in values.items())
        for name, values in sections.items()
    )
    path = tmp_path / "paper.toml"
    path.write_text(text)
    return path


def daemon(
    config: Path, *extra: str, prefix: Sequence[str] = (), **popen: Any
) -> subprocess.Popen[str]:
    """``tradeloop paper --config CONFIG EXTRA...`` (``prefix``: a command it runs under)."""
    return subprocess.Popen(
        [*prefix, sys.executable, "-m", "tradeloop", "paper", "--config", str(config), *extra],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        **popen,
    )


FILL_COLUMNS = ["timestamp", "asset_id", "side", "qty", "price", "commission", "reason"]


def assert_ends_like_the_backtest(state_dir: Path) -> None:
    """The daemon's fills and final equity are the backtest's (``backtest_of_sample``)."""
    backtest = backtest_of_sample()
    paper = pl.read_parquet(state_dir / "fills.parquet")
    assert paper.select(FILL_COLUMNS).equals(backtest.fills.select(FILL_COLUMNS))
    summary = json.loads((state_dir / "summary.json").read_text())
    assert summary["final_equity"] == pytest.approx(backtest["final_value"], abs=1e-9)


@functools.cache
def backtest_of_sample() -> Any:
    """The bundled strategy's backtest over the sample (what every daemon run must equal)."""
    sys.path.insert(0, str(ROOT / "examples"))
    from ml_strategy import MLStrategy

    return Engine(
        feed=DATA / "sample.parquet",
        strategy=MLStrategy(),
        context=Context(pl.read_parquet(DATA / "vix.parquet")),
        commission=0.0005,
    ).run()
