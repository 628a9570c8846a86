"""BarStore: windows planned by hand-counted spans, files written whole and read by the feed."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import polars as pl
import pytest

from tradeloop.data.feed import HistoricalFeed
from tradeloop.data.store import BarStore, FetchWindow, bars_frame, parse_interval
from tradeloop.errors import ConfigError, DataError

MIN = 60_000_000_000
DAY = 1440 * MIN
JAN1 = int(datetime(2024, 1, 1, tzinfo=UTC).timestamp()) * 1_000_000_000
LATER = JAN1 + 365 * DAY  # a "now" long after every bar asked for


def minute_bars(start_ns: int, count: int, base: float = 100.0) -> pl.DataFrame:
    return bars_frame(
        (start_ns + k * MIN, base + k, base + k + 2, base + k - 1, base + k + 1, 10.0 + k)
        for k in range(count)
    )


def spans(windows: list[FetchWindow]) -> list[tuple[str, int, int]]:
    return [(w.asset_id, (w.start_ns - JAN1) // MIN, (w.end_ns - JAN1) // MIN) for w in windows]


def test_parse_interval_units_give_nanoseconds() -> None:
    assert parse_interval("1m") == MIN
    assert parse_interval("30s") == 30_000_000_000
    assert parse_interval("4h") == 240 * MIN
    assert parse_interval("1d") == DAY
    for bad in ("1x", "m", "0m", "1.5m"):
        with pytest.raises(ConfigError, match=r"e\.g\. 1m"):
            parse_interval(bad)


def test_store_plan_cuts_the_span_into_utc_days_per_asset(tmp_path: Path) -> None:
    store = BarStore(tmp_path, venue="binance", interval="1m")
    # 2024-01-01 12:00 → 2024-01-03 06:00: half a day, a day, a quarter day (minutes by hand)
    plan = store.plan(["BTC", "ETH"], JAN1 + 720 * MIN, JAN1 + 2 * DAY + 360 * MIN, LATER)
    expected = [(0, 720, 1440), (0, 1440, 2880), (0, 2880, 3240)]
    assert spans(plan) == [(a, lo, hi) for a in ("BTC", "ETH") for _, lo, hi in expected]
    assert plan[0].path == tmp_path / "asset_id=BTC" / "2024-01-01T00-00.parquet"
    assert plan[-1].path == tmp_path / "asset_id=ETH" / "2024-01-03T00-00.parquet"


def test_store_plan_asks_only_for_closed_bars(tmp_path: Path) -> None:
    store = BarStore(tmp_path, venue="binance", interval="1m")
    now = JAN1 + 90 * MIN + 30_000_000_000  # 01:30:30: the 01:30 bar is still forming
    plan = store.plan(["BTC"], JAN1, JAN1 + DAY, now)
    assert spans(plan) == [("BTC", 0, 90)]  # bars 00:00 … 01:29


def test_store_default_window_holds_about_a_thousand_bars(tmp_path: Path) -> None:
    assert BarStore(tmp_path, venue="v", interval="1m").window_ns == DAY
    assert BarStore(tmp_path, venue="v", interval="1h").window_ns == 41 * DAY  # 1000 h = 41.7 d
    with pytest.raises(ConfigError, match="whole number of days"):
        BarStore(tmp_path, venue="v", interval="1m", window_days=0)


def test_store_rerun_plans_only_the_gaps(tmp_path: Path) -> None:
    store = BarStore(tmp_path, venue="binance", interval="1m")
    first = store.plan(["BTC"], JAN1, JAN1 + 3 * DAY, LATER)
    store.write(first[0], minute_bars(JAN1, 1440))
    store.write(first[2], minute_bars(JAN1 + 2 * DAY, 1440))
    assert spans(store.plan(["BTC"], JAN1, JAN1 + 3 * DAY, LATER)) == [("BTC", 1440, 2880)]


def test_store_partly_covered_window_is_fetched_over_the_union(tmp_path: Path) -> None:
    store = BarStore(tmp_path, venue="binance", interval="1m")
    (morning,) = store.plan(["BTC"], JAN1, JAN1 + 600 * MIN, LATER)
    store.write(morning, minute_bars(JAN1, 600))
    assert store.plan(["BTC"], JAN1 + 300 * MIN, JAN1 + 500 * MIN, LATER) == []  # inside
    (extended,) = store.plan(["BTC"], JAN1 + 300 * MIN, JAN1 + DAY, LATER)
    assert spans([extended]) == [("BTC", 0, 1440)]  # what it had plus what is asked
    assert extended.path == morning.path


def test_store_files_read_back_through_historical_feed(tmp_path: Path) -> None:
    store = BarStore(tmp_path, venue="binance", interval="1m")
    for window in store.plan(["BTC", "ETH"], JAN1, JAN1 + 2 * DAY, LATER):
        base = 100.0 if window.asset_id == "BTC" else 200.0
        store.write(window, minute_bars(window.start_ns, 1440, base))
    (tmp_path / "asset_id=BTC" / ".2024-01-03T00-00.parquet.tmp").write_bytes(b"half a file")
    frame = HistoricalFeed(tmp_path).frame().sort("asset_id", "ts_ns")
    assert frame.height == 2 * 2 * 1440
    eth = frame.filter(pl.col("asset_id") == "ETH")
    # minute k of day 2 is bar 1440 + k of the asset: open = 200 + (k within its window)
    assert eth["ts_ns"][1440] == JAN1 + DAY
    assert eth.row(1441, named=True) | {"source_row": 0} == {
        "source_row": 0,
        "ts_ns": JAN1 + DAY + MIN,
        "asset_id": "ETH",
        "open": 201.0,
        "high": 203.0,
        "low": 200.0,
        "close": 202.0,
        "volume": 11.0,
    }
    assert store.clean() == 1
    assert not list(tmp_path.rglob("*.tmp"))


def test_store_write_refuses_a_bad_bar_and_writes_nothing(tmp_path: Path) -> None:
    store = BarStore(tmp_path, venue="binance", interval="1m")
    (window,) = store.plan(["BTC"], JAN1, JAN1 + 10 * MIN, LATER)
    bad = minute_bars(JAN1, 10).with_columns(
        pl.when(pl.int_range(pl.len()) == 4).then(50.0).otherwise(pl.col("high")).alias("high")
    )
    with pytest.raises(DataError, match=r"BTC.*high < low"):
        store.write(window, bad)
    assert not window.path.exists()


def test_store_write_refuses_bars_outside_the_span_asked_for(tmp_path: Path) -> None:
    store = BarStore(tmp_path, venue="binance", interval="1m")
    (window,) = store.plan(["BTC"], JAN1, JAN1 + 10 * MIN, LATER)
    with pytest.raises(DataError, match=r"1 bar\(s\) outside the span"):
        store.write(window, minute_bars(JAN1, 11))
    assert not window.path.exists()


def test_store_write_refuses_duplicate_bars_like_a_backtest(tmp_path: Path) -> None:
    store = BarStore(tmp_path, venue="binance", interval="1m")
    (window,) = store.plan(["BTC"], JAN1, JAN1 + 10 * MIN, LATER)
    twice = pl.concat([minute_bars(JAN1, 5), minute_bars(JAN1 + 4 * MIN, 2)])
    with pytest.raises(DataError, match="duplicate"):
        store.write(window, twice)


def test_store_refuses_a_folder_of_another_interval(tmp_path: Path) -> None:
    minutes = BarStore(tmp_path, venue="binance", interval="1m")
    (window,) = minutes.plan(["BTC"], JAN1, JAN1 + 10 * MIN, LATER)
    minutes.write(window, minute_bars(JAN1, 10))
    hours = BarStore(tmp_path, venue="binance", interval="1h")
    with pytest.raises(ConfigError, match="holds 1m bars from binance, not 1h"):
        hours.plan(["BTC"], JAN1, JAN1 + DAY, LATER)


def test_store_refuses_a_parquet_file_it_did_not_write(tmp_path: Path) -> None:
    store = BarStore(tmp_path, venue="binance", interval="1m")
    path = store.path("BTC", JAN1)
    path.parent.mkdir(parents=True)
    minute_bars(JAN1, 3).write_parquet(path)
    with pytest.raises(DataError, match="not a file written by tradeloop fetch"):
        store.plan(["BTC"], JAN1, JAN1 + DAY, LATER)


def test_store_plan_refuses_an_end_before_the_start(tmp_path: Path) -> None:
    store = BarStore(tmp_path, venue="binance", interval="1m")
    with pytest.raises(ConfigError, match="not after the start"):
        store.plan(["BTC"], JAN1, JAN1, LATER)


def test_store_empty_window_is_written_so_a_rerun_skips_it(tmp_path: Path) -> None:
    store = BarStore(tmp_path, venue="alpaca", interval="1m")
    (sunday,) = store.plan(["SPY"], JAN1 - DAY, JAN1, LATER)  # 2023-12-31, no trading
    assert store.write(sunday, bars_frame([])) == 0
    assert store.plan(["SPY"], JAN1 - DAY, JAN1, LATER) == []
