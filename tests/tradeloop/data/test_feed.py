"""HistoricalFeed inputs: polars, pandas, dict of frames, parquet read lazily, time bounds."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pandas as pd
import polars as pl
import pytest

from tests.conftest import bars, day
from tradeloop import DataError, Engine, HistoricalFeed, ParquetDataFeed, Strategy
from tradeloop.data.bars import BarTable

ROWS = [
    (0, "A", 10, 11, 9, 10.5),
    (0, "B", 20, 21, 19, 20.5),
    (1, "A", 10.5, 11.5, 10, 11),
    (1, "B", 20.5, 21, 20, 20.8),
    (2, "A", 11, 12, 10.5, 11.5),
]


def test_bar_table_sorts_by_time_then_asset_and_counts_bars_per_asset() -> None:
    shuffled = bars(ROWS).sort("asset_id", "timestamp", descending=[True, False])
    table = BarTable.from_frame(HistoricalFeed(shuffled).frame())
    assert table.asset_ids == ("A", "B")
    assert table.asset_code.tolist() == [0, 1, 0, 1, 0]
    assert table.bar_index.tolist() == [0, 0, 1, 1, 2]
    assert table.ts_bounds.tolist() == [0, 2, 4, 5]
    assert table.close.tolist() == [10.5, 20.5, 11, 20.8, 11.5]


def test_pandas_frame_with_time_index_and_signals_alias() -> None:
    frame = bars(ROWS, {"p": [1, 2, 3, 4, 5]}).filter(pl.col("asset_id") == "A").drop("asset_id")
    pandas_frame = frame.to_pandas().set_index("timestamp")
    out = HistoricalFeed(pandas_frame, signals=["p"], asset_id="AAPL").frame()
    assert out["asset_id"].to_list() == ["AAPL"] * 3
    assert out["p"].to_list() == [1.0, 3.0, 5.0]


def test_dict_of_frames_takes_keys_as_asset_ids() -> None:
    a = bars(ROWS).filter(pl.col("asset_id") == "A").drop("asset_id")
    b = bars(ROWS).filter(pl.col("asset_id") == "B").drop("asset_id")
    out = HistoricalFeed({"AAA": a, "BBB": b}).frame()
    assert sorted(set(out["asset_id"].to_list())) == ["AAA", "BBB"]
    assert out.height == 5


def test_parquet_is_read_with_only_needed_columns_and_time_bounds(tmp_path: Path) -> None:
    path = tmp_path / "bars.parquet"
    bars(ROWS, {"p": [1, 2, 3, 4, 5], "unused": [0, 0, 0, 0, 0]}).write_parquet(path)
    feed = ParquetDataFeed(path, signal_columns=["p"], start=day(1), end=day(1))
    out = feed.frame()
    assert "unused" not in out.columns
    assert out["p"].to_list() == [3.0, 4.0]


def test_naive_time_bounds_mean_utc() -> None:
    frame = bars(ROWS)
    feed = HistoricalFeed(frame, start=datetime(2024, 1, 2, 21, 0))  # noqa: DTZ001
    assert feed.frame().height == 3
    aware = HistoricalFeed(frame, start=datetime(2024, 1, 2, 21, 0, tzinfo=UTC))
    assert aware.frame().height == 3


def test_csv_path_is_read(tmp_path: Path) -> None:
    path = tmp_path / "bars.csv"
    bars(ROWS).write_csv(path)
    assert HistoricalFeed(path).frame().height == 5


def test_missing_file_raises_with_cwd() -> None:
    with pytest.raises(DataError, match="no such file"):
        HistoricalFeed(Path("nope.parquet")).frame()


def test_unsupported_object_raises() -> None:
    with pytest.raises(DataError, match="cannot read bars from a list"):
        HistoricalFeed([1, 2, 3]).frame()


def test_same_asset_in_two_feeds_is_refused() -> None:
    a = bars(ROWS).filter(pl.col("asset_id") == "A")
    with pytest.raises(DataError, match=r"two bars at .* from two feeds"):
        Engine(feeds={"A": HistoricalFeed(a), "A2": HistoricalFeed(a)}, strategy=Strategy()).run()


def test_engine_accepts_feeds_dict_of_raw_frames() -> None:
    a = bars(ROWS).filter(pl.col("asset_id") == "A").drop("asset_id")
    result = Engine(feeds={"AAA": a}, strategy=Strategy()).run()
    assert result.config["n_assets"] == 1
    assert result.config["n_bars"] == 3


def test_pandas_long_frame_is_accepted_by_engine() -> None:
    frame = bars(ROWS).to_pandas()
    assert isinstance(frame, pd.DataFrame)
    assert Engine(feed=frame, strategy=Strategy()).run().config["n_bars"] == 5
