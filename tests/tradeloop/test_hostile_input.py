"""The hostile-input suite: input that is hostile or just wrong, live and in a backtest.

Each case is one the issue reproduced (a raw traceback, a silent wrong result, a hang) and
asserts what it is now: a typed error whose message names the problem and the fix, a
warning that says what happened, or a counted skip with the run otherwise unharmed. Three
lists: the Python API (``API_CASES``, and the stream cases run through the live runtime),
the command line (``CLI_CASES``, subprocesses), and the paper daemon (``DAEMON_CASES`` and a
hostile stream from a WebSocket server on 127.0.0.1 that must leave the daemon's fills
exactly those of the clean stream).
"""

from __future__ import annotations

import sys
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import polars as pl
import pytest

from tests.conftest import Messages, day
from tradeloop import Context, Engine, PaperBroker, Strategy
from tradeloop.broker.costs import ImplausibleCostWarning
from tradeloop.clock import utc_ns
from tradeloop.data import HistoricalFeed
from tradeloop.data.columns import ColumnsMappedWarning
from tradeloop.errors import ConfigError, DataError
from tradeloop.events import BarMessage, ContextMessage, Message
from tradeloop.runtime.live import LiveRuntime
from tradeloop.runtime.preflight import InputWarning

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT / "examples" / "data"
sys.path.insert(0, str(ROOT / "examples"))
from ml_strategy import MLStrategy  # noqa: E402

SAMPLE = pl.read_parquet(DATA / "sample.parquet")
VIX = pl.read_parquet(DATA / "vix.parquet")


@dataclass(frozen=True)
class Case:
    name: str
    run: Callable[[Path], Any]  # given a scratch folder
    raises: type[Exception] | None = None
    warns: type[Warning] | None = None
    says: str = ""


def _engine(tmp: Path, data: Any = SAMPLE, strategy: Strategy | None = None, **options: Any) -> Any:
    return Engine(feed=data, strategy=strategy or MLStrategy(), **options).run()


def _row(frame: pl.DataFrame, index: int, column: str, value: Any) -> pl.DataFrame:
    return frame.with_columns(
        pl.when(pl.int_range(pl.len()) == index)
        .then(pl.lit(value).cast(frame.schema[column]))
        .otherwise(pl.col(column))
        .alias(column)
    )


def _file(tmp: Path, name: str, content: bytes) -> Path:
    path = tmp / name
    path.write_bytes(content)
    return path


def _half_of_the_sample(tmp: Path) -> Path:
    whole = (DATA / "sample.parquet").read_bytes()
    return _file(tmp, "truncated.parquet", whole[: len(whole) // 2])


class OnBar(Strategy):
    def on_bar(self, event: Any, context: Any) -> None:  # backtrader's name: never called
        self.buy(event.asset_id, 1)


class Next(Strategy):
    def next(self) -> None:
        raise AssertionError("never called")


class NearMiss(Strategy):
    def on_market_event(self, event: Any, context: Any) -> None:
        pass

    def on_fil(self, fill: Any) -> None:  # one letter short of on_fill
        raise AssertionError("never called")


class LimitOnTypo(Strategy):
    def on_market_event(self, event: Any, context: Any) -> None:
        if not self.get_open_orders():
            self.buy("aaa", 10, limit=1_000.0)  # the sample's asset is "AAA"


API_CASES = [
    Case("slippage 1.5", lambda t: _engine(t, slippage=1.5), ConfigError, says="must be < 1"),
    Case("commission 1.5", lambda t: _engine(t, commission=1.5), ConfigError, says="150%"),
    Case(
        "slippage 5 meant as bps",
        lambda t: _engine(t, slippage=5),
        ConfigError,
        says="meant basis points? 5 bps is 0.0005",
    ),
    Case(
        "commission 0.05",
        lambda t: _engine(t, commission=0.05),
        warns=ImplausibleCostWarning,
        says="5.0% of every trade",
    ),
    Case(
        "a row dated 2922",
        lambda t: _engine(t, _row(SAMPLE, 3, "timestamp", datetime(2922, 1, 1, tzinfo=UTC))),
        DataError,
        says="row 3 has timestamp 2922-01-01 00:00:00, outside the 1677-09-21..2262-04-11",
    ),
    Case(
        "a whole file in 2312",
        lambda t: _engine(t, SAMPLE.with_columns(pl.col("timestamp").dt.offset_by("290y"))),
        DataError,
        says="(2520 such rows)",
    ),
    Case(
        "text in the close column",
        lambda t: _engine(
            t, _row(SAMPLE.with_columns(pl.col("close").cast(pl.String)), 5, "close", "n/a")
        ),
        DataError,
        says="row 5 has close = 'n/a', not a number",
    ),
    Case(
        "an empty parquet file",
        lambda t: _engine(t, _file(t, "empty.parquet", b"")),
        DataError,
        says="cannot be read as parquet (an empty file)",
    ),
    Case(
        "a garbage parquet file",
        lambda t: _engine(t, _file(t, "garbage.parquet", b"\x00garbage" * 64)),
        DataError,
        says="cannot be read as parquet (ComputeError",
    ),
    Case(
        "a truncated parquet file",
        lambda t: _engine(t, _half_of_the_sample(t)),
        DataError,
        says="an interrupted copy or download leaves a truncated file",
    ),
    Case(
        "an empty CSV file",
        lambda t: _engine(t, _file(t, "empty.csv", b"")),
        DataError,
        says="cannot be read as csv (an empty file)",
    ),
    Case(
        "an empty folder",
        lambda t: _engine(t, t),
        DataError,
        says="a folder with no .parquet or .csv file in it",
    ),
    Case(
        "feeds={}",
        lambda t: Engine(feeds={}, strategy=MLStrategy()),
        ConfigError,
        says="feeds={} names no asset",
    ),
    Case(
        "start= as text that is no date",
        lambda t: HistoricalFeed(SAMPLE, start="June the first"),
        ConfigError,
        says='start="2022-06-01"',
    ),
    Case(
        "cash 1e308", lambda t: _engine(t, initial_cash=1e308), ConfigError, says="more than 1e+15"
    ),
    Case(
        "a signal NaN in every bar",
        lambda t: _engine(t, SAMPLE.with_columns(pl.lit(None, pl.Float64).alias("ml_pred"))),
        warns=InputWarning,
        says="signal 'ml_pred' is NaN in every one of its 2520 bars",
    ),
    Case(
        "a context entirely after the bars",
        lambda t: _engine(
            t, context=Context(VIX.with_columns(pl.col("timestamp").dt.offset_by("10y")))
        ),
        warns=InputWarning,
        says="after the last bar (2023-05-21 21:00:00+00:00): the strategy sees None",
    ),
    Case(
        "on_bar instead of on_market_event",
        lambda t: _engine(t, strategy=OnBar()),
        warns=InputWarning,
        says="OnBar.on_bar is never called by tradeloop, and no per-bar callback is defined",
    ),
    Case(
        "next (backtrader)",
        lambda t: _engine(t, strategy=Next()),
        warns=InputWarning,
        says="Next.next is never called",
    ),
    Case(
        "a callback one letter off",
        lambda t: _engine(t, strategy=NearMiss()),
        warns=InputWarning,
        says="NearMiss.on_fil is never called by tradeloop. Fix: name it on_fill",
    ),
    Case(
        "capitalised OHLC columns",
        lambda t: _engine(t, SAMPLE.rename({"open": "Open", "high": "High"})),
        warns=ColumnsMappedWarning,
        says="'Open' → 'open', 'High' → 'high'",
    ),
]


@pytest.mark.parametrize("case", API_CASES, ids=[c.name for c in API_CASES])
def test_hostile_input_in_the_api_is_a_typed_error_or_a_warning(case: Case, tmp_path: Path) -> None:
    if case.raises is not None:
        with pytest.raises(case.raises) as caught:
            case.run(tmp_path)
        assert case.says in str(caught.value)
        assert "Fix:" in str(caught.value) or case.raises is DataError
        return
    assert case.warns is not None
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        case.run(tmp_path)
    said = [str(w.message) for w in seen if issubclass(w.category, case.warns)]
    assert any(case.says in message for message in said), said


def test_start_as_iso_text_replays_from_that_date() -> None:
    result = Engine(HistoricalFeed(SAMPLE, start="2022-06-01"), MLStrategy()).run()
    first = result.equity_curve["timestamp"].min()
    assert first >= datetime(2022, 6, 1, tzinfo=UTC)


def test_limit_order_for_an_unknown_asset_is_rejected_and_holds_no_cash() -> None:
    result = _engine(Path(), strategy=LimitOnTypo())
    typo = result.orders.filter(pl.col("asset_id") == "aaa")
    assert typo.height == result.config["n_bars"]  # one an event, each refused at once
    assert set(typo["status"]) == {"rejected"}
    assert typo["message"][0].startswith("unknown asset 'aaa': no bar of it has been seen")
    assert result["final_value"] == 100_000.0  # nothing reserved, nothing traded


# -- the stream: hostile messages through the live runtime ----------------------------------

NOW_S = utc_ns(day(10)) / 1e9  # the wall clock of these runs: day 10 at 21:00 UTC


class Buyer(Strategy):
    """Buys 1 of every asset it sees whose ``ml`` signal is above 0.5, once."""

    def __init__(self) -> None:
        super().__init__()
        self.seen: list[tuple[int, str, Any]] = []

    def on_market_event(self, event: Any, context: Any) -> None:
        self.seen.append((event.timestamp.day, event.asset_id, context.get("VIX")))
        if event.signals.get("ml", 0.0) > 0.5 and not self.get_position(event.asset_id):
            self.buy(event.asset_id, 1)


def _bar(d: int, asset: str, price: float = 10.0, *, when: datetime | None = None) -> BarMessage:
    ts = utc_ns(when or day(d))
    return BarMessage(asset, ts, price, price, price, price, 1000.0, {"ml": 0.9})


def _clean() -> list[Message]:
    out: list[Message] = []
    for d in range(6):
        out.append(ContextMessage("VIX", utc_ns(day(d)), 20.0 + d))
        out += [_bar(d, "A"), _bar(d, "B")]
    return out


async def _run(messages: list[Message], **options: Any) -> tuple[LiveRuntime, PaperBroker, Buyer]:
    broker, strategy = PaperBroker(100_000.0), Buyer()
    runtime = LiveRuntime(
        Messages(messages),
        strategy,
        broker,
        wall_clock=lambda: NOW_S,
        max_future_s=300.0,
        **options,
    )
    await runtime.run()
    return runtime, broker, strategy


def _fills(broker: PaperBroker) -> list[tuple[Any, ...]]:
    return [(f.ts_ns, f.asset_id, f.qty, f.price) for f in broker.fills]


def _inject(extra: dict[int, list[Message]]) -> list[Message]:
    """The clean stream with ``extra`` messages after its ``k``-th message."""
    out: list[Message] = []
    for k, message in enumerate(_clean()):
        out.append(message)
        out += extra.get(k, [])
    return out


STREAM_CASES: list[tuple[str, dict[int, list[Message]], dict[str, Any], dict[str, int]]] = [
    (
        "one bar dated 2100",
        {4: [_bar(0, "A", when=datetime(2100, 1, 1, tzinfo=UTC))]},
        {},
        {"future_bars": 1},
    ),
    (
        "a bar half a day ahead at 0.01",
        {7: [_bar(0, "A", 0.01, when=datetime.fromtimestamp(NOW_S + 43_200, UTC))]},
        {},
        {"future_bars": 1},
    ),
    (
        "phantom assets beside a declared universe",
        {k: [_bar(k // 3, f"PHANTOM{k}{i}") for i in range(50)] for k in (2, 5, 8)},
        {"universe": ["A", "B"]},
        {"unknown_assets": 150},
    ),
    (
        "phantom assets over the cap",
        {k: [_bar(k // 3, f"PHANTOM{k}{i}") for i in range(50)] for k in (2, 5, 8)},
        {"max_assets": 2},
        {"unknown_assets": 150},
    ),
    (
        "context names nobody declared",
        {3: [ContextMessage(f"junk{i}", utc_ns(day(1)), 1.0) for i in range(300)]},
        {"context_names": ["VIX"]},
        {"unknown_context": 300},
    ),
    (
        "context names over the cap",
        {3: [ContextMessage(f"junk{i}", utc_ns(day(1)), 1.0) for i in range(300)]},
        {"max_context_names": 1},
        {"unknown_context": 300},
    ),
    (
        "text for VIX",
        {6: [ContextMessage("VIX", utc_ns(day(2)), "very high")]},  # over 22.0, if let in
        {},
        {"refused_context": 1},
    ),
]


@pytest.mark.parametrize(
    ("name", "extra", "options", "counted"), STREAM_CASES, ids=[c[0] for c in STREAM_CASES]
)
async def test_hostile_stream_is_counted_and_dropped_and_the_run_is_unharmed(
    name: str, extra: dict[int, list[Message]], options: dict[str, Any], counted: dict[str, int]
) -> None:
    clean_runtime, clean_broker, clean = await _run(_clean(), **options)
    runtime, broker, strategy = await _run(_inject(extra), **options)
    expected = {"future_bars": 0, "unknown_assets": 0, "unknown_context": 0, "refused_context": 0}
    assert runtime.intake.counters() == {**expected, **counted}
    assert _fills(broker) == _fills(clean_broker)  # every fill, price and time unharmed
    assert strategy.seen == clean.seen  # and every callback saw what the clean run saw
    assert runtime.last_flushed == clean_runtime.last_flushed == utc_ns(day(5))
    assert broker.marks == clean_broker.marks  # no position marked at a hostile price


# -- the command line -----------------------------------------------------------------------

STRATEGY = f"{ROOT / 'examples' / 'ml_strategy.py'}:MLStrategy"


def _cli(*args: str) -> Any:
    import subprocess

    return subprocess.run(
        [sys.executable, "-m", "tradeloop", *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def _backtest(tmp: Path, *args: str, data: str | Path = DATA / "sample.parquet") -> Any:
    return _cli("backtest", "--data", str(data), "--strategy", STRATEGY, "--no-progress", *args)


def _dated_2922(tmp: Path) -> Path:
    path = tmp / "2922.parquet"
    _row(SAMPLE, 7, "timestamp", datetime(2922, 1, 1, tzinfo=UTC)).write_parquet(path)
    return path


def _text_close(tmp: Path) -> Path:
    path = tmp / "text.csv"
    _row(SAMPLE.with_columns(pl.col("close").cast(pl.String)), 2, "close", "abc").write_csv(path)
    return path


CLI_CASES: list[tuple[str, Callable[[Path], Any], str]] = [
    ("--slippage 1.5", lambda t: _backtest(t, "--slippage", "1.5"), "ConfigError: slippage 1.5"),
    (
        "--commission 1.5",
        lambda t: _backtest(t, "--commission", "1.5"),
        "ConfigError: commission 1.5",
    ),
    ("--slippage 5", lambda t: _backtest(t, "--slippage", "5"), "5 bps is 0.0005"),
    ("--cash 1e308", lambda t: _backtest(t, "--cash", "1e308"), "ConfigError: initial_cash 1e+308"),
    (
        "an empty parquet file",
        lambda t: _backtest(t, data=_file(t, "empty.parquet", b"")),
        "DataError: ",
    ),
    ("a truncated parquet file", lambda t: _backtest(t, data=_half_of_the_sample(t)), "truncated"),
    ("an empty CSV", lambda t: _backtest(t, data=_file(t, "e.csv", b"")), "an empty file"),
    ("an empty folder", lambda t: _backtest(t, data=t), "a folder with no .parquet or .csv"),
    ("a row dated 2922", lambda t: _backtest(t, data=_dated_2922(t)), "row 7 has timestamp 2922"),
    ("text in close (CSV)", lambda t: _backtest(t, data=_text_close(t)), "close = 'abc'"),
    ("--start that is no date", lambda t: _backtest(t, "--start", "soon"), "--start"),
    (
        "--out where a file is",
        lambda t: _backtest(t, "--out", str(_file(t, "taken", b"x"))),
        "a file is in the way of the folder",
    ),
    (
        "--context that is garbage",
        lambda t: _backtest(t, "--context", str(_file(t, "vix.parquet", b"PAR1 broken"))),
        "vix.parquet: cannot be read as parquet",
    ),
]


@pytest.mark.parametrize(("name", "run", "says"), CLI_CASES, ids=[c[0] for c in CLI_CASES])
def test_hostile_input_on_the_command_line_is_a_typed_error(
    name: str, run: Callable[[Path], Any], says: str, tmp_path: Path
) -> None:
    done = run(tmp_path)
    assert done.returncode == 1, done.stdout
    assert done.stderr.startswith("tradeloop: error: ")
    assert says in done.stderr
    assert "Traceback" not in done.stderr


def test_backtest_out_to_a_missing_folder_makes_it_and_keeps_the_summary(tmp_path: Path) -> None:
    done = _backtest(tmp_path, "--out", str(tmp_path / "not" / "there"), "--commission", "0.05")
    assert done.returncode == 0, done.stderr
    assert "final_value" in done.stdout or "Final value" in done.stdout
    assert (tmp_path / "not" / "there" / "fills.parquet").exists()
    assert "ImplausibleCostWarning" in done.stderr  # 5 % commission: allowed, said


def test_serve_replay_on_a_busy_port_is_a_typed_error() -> None:
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = _cli("serve-replay", str(DATA / "sample.parquet"), "--port", str(port))
    assert done.returncode == 1
    assert f"cannot listen on 127.0.0.1:{port}: Address already in use" in done.stderr
    assert "Traceback" not in done.stderr


# -- the paper daemon -----------------------------------------------------------------------


class HostileReplay:
    """``ReplayServer`` of the sample on its own loop and thread, sending what a broken or
    hostile feed would, in the real protocol, beside the real bars: at timestamp 40 a bar
    dated 2100 and one half a day ahead at 0.01; at 60, 200 bars of assets outside the
    universe and 300 undeclared context names; at 80, text for VIX at that timestamp."""

    def __init__(self) -> None:
        import asyncio
        import threading
        import time

        from tradeloop.stream.codec import encode
        from tradeloop.stream.server import ReplayServer

        ahead_ns = int((time.time() + 43_200) * 1e9)

        class Server(ReplayServer):
            def frames(self, **kwargs: Any) -> Any:
                for k, ts_ns, frames in super().frames(**kwargs):
                    hostile: list[Message] = []
                    if k == 40:
                        hostile += [
                            _bar(0, "AAA", 99.0, when=datetime(2100, 1, 1, tzinfo=UTC)),
                            BarMessage("BBB", ahead_ns, 0.01, 0.01, 0.01, 0.01, 1.0, {}),
                        ]
                    if k == 60:
                        hostile += [
                            BarMessage(f"PH{i}", ts_ns, 1, 1, 1, 1, 1, {}) for i in range(200)
                        ]
                        hostile += [ContextMessage(f"junk{i}", ts_ns, 1.0) for i in range(300)]
                    if k == 80:
                        frames = [
                            frames[0],
                            encode(ContextMessage("VIX", ts_ns, "very high")),
                            *frames[1:],
                        ]
                    yield k, ts_ns, [*frames, *(encode(m) for m in hostile)]

        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        server = Server(DATA / "sample.parquet", context=Context(VIX))
        self.server = asyncio.run_coroutine_threadsafe(server.start(), self.loop).result(30)

    def close(self) -> None:
        import asyncio

        asyncio.run_coroutine_threadsafe(self.server.close(), self.loop).result(30)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=10)
        self.loop.close()


def test_hostile_stream_leaves_the_daemon_exactly_on_the_backtest(tmp_path: Path) -> None:
    import json

    from tests.tradeloop.service.daemons import assert_ends_like_the_backtest, daemon, write_config

    assets = sorted(SAMPLE["asset_id"].unique())
    feed = HostileReplay()
    try:
        config = write_config(
            tmp_path,
            feed.server.url,
            feed__universe=json.dumps(assets),
            feed__context='["VIX"]',
        )
        proc = daemon(config)
        out, err = proc.communicate(timeout=180)
    finally:
        feed.close()
    assert proc.returncode == 0, err
    summary = json.loads((tmp_path / "state" / "summary.json").read_text())
    assert (
        summary["future_bars"],
        summary["unknown_assets"],
        summary["unknown_context"],
        summary["refused_context"],
    ) == (2, 200, 300, 1)
    assert summary["timestamps"] == 504  # no real bar was late for a bar from 2100
    assert_ends_like_the_backtest(tmp_path / "state")  # fills and equity as if never sent
    logged = {json.loads(line)["event"] for line in out.splitlines()}
    assert {"future_bar_refused", "unknown_asset_dropped", "context_value_refused"} <= logged


DAEMON_CASES = [
    ({"TRADELOOP_BROKER_COMISSION": "0.001"}, {}, "[broker] has no key 'comission'"),
    ({"TRADELOOP_RUN_STATE_DIR": ""}, {}, "run.state_dir is empty"),
    ({}, {"feed__stale_after_s": "0"}, "feed.stale_after_s = 0 must be > 0"),
    ({}, {"feed__url": '"ws://[::1:8765"'}, "cannot be parsed"),
    ({}, {"broker__commission": "1.5"}, "commission 1.5 is 150% of every trade"),
    ({}, {"broker__initial_cash": "1e308"}, "initial_cash 1e+308 is more than 1e+15"),
]


@pytest.mark.parametrize(
    ("env", "config", "says"), DAEMON_CASES, ids=[c[2][:30] for c in DAEMON_CASES]
)
def test_hostile_settings_stop_the_daemon_before_it_starts(
    env: dict[str, str], config: dict[str, str], says: str, tmp_path: Path
) -> None:
    import os
    import subprocess

    from tests.tradeloop.service.daemons import write_config
    from tradeloop.service.failure import EXIT_REFUSED

    path = write_config(tmp_path, "ws://127.0.0.1:9", **config)
    done = subprocess.run(
        [sys.executable, "-m", "tradeloop", "paper", "--config", str(path)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env={**os.environ, **env},
    )
    assert done.returncode == EXIT_REFUSED, done.stderr
    assert says in done.stderr
    assert "Traceback" not in done.stderr
    assert not (tmp_path / "state" / "journal.sqlite").exists()
