"""Common file shapes: yfinance/Stooq CSVs, a folder of them, pandas MultiIndex frames, and the
errors that name ``timestamp_col=`` / ``asset_col=`` / ``reset_index()``."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd
import polars as pl
import pytest

from tradeloop import Engine, MarketEvent, Strategy
from tradeloop.data.columns import ColumnsMappedWarning, standard_names
from tradeloop.data.feed import HistoricalFeed
from tradeloop.errors import DataError

# a yfinance download (``yf.download("SPY", auto_adjust=False).to_csv()``), three days
YFINANCE_CSV = """\
Date,Open,High,Low,Close,Adj Close,Volume
2024-01-02,472.16,473.67,470.49,472.65,465.12,123623700
2024-01-03,470.43,471.19,468.17,468.79,461.32,103585900
2024-01-04,468.30,470.96,467.05,467.28,459.84,84232200
"""
# Stooq's daily CSV (https://stooq.com/q/d/l/?s=aapl.us&i=d): no Adj Close
STOOQ_CSV = """\
Date,Open,High,Low,Close,Volume
2024-01-02,187.15,188.44,183.885,185.64,82488700
2024-01-03,184.22,185.88,183.43,184.25,58414500
"""


class BuyTenOnFirstBar(Strategy):
    def on_market_event(self, event: MarketEvent, context: Mapping[str, Any]) -> None:
        if self.get_position(event.asset_id) == 0 and not self.get_open_orders():
            self.buy(event.asset_id, 10)


def test_standard_names_map_case_and_spaces_and_leave_adj_close_out() -> None:
    renames, dropped = standard_names(
        ["Date", "Open", "High", "Low", "Close", "Adj Close", "Volume", "Score"]
    )
    assert renames == {
        "Date": "timestamp",
        "Open": "open",
        "High": "high",
        "Low": "low",
        "Close": "close",
        "Volume": "volume",
    }
    assert dropped == ["Adj Close"]
    assert standard_names(["timestamp", "asset_id", "close", "Close"]) == ({}, [])


def test_yfinance_csv_reads_as_bars_with_a_mapping_note(tmp_path: Path) -> None:
    path = tmp_path / "SPY.csv"
    path.write_text(YFINANCE_CSV)
    with pytest.warns(ColumnsMappedWarning) as caught:
        frame = HistoricalFeed(path).frame()
    note = str(caught[0].message)
    assert "'Open' → 'open'" in note
    assert "'Date' → 'timestamp'" in note
    assert "'Adj Close' left out" in note
    assert frame.columns == [
        "source_row",
        "ts_ns",
        "asset_id",
        "open",
        "high",
        "low",
        "close",
        "volume",
    ]  # no signal: Open, Adj Close and the rest are not signals
    assert frame["asset_id"].to_list() == ["SPY"] * 3  # from the file name
    assert frame["open"].to_list() == [472.16, 470.43, 468.30]


def test_yfinance_csv_market_order_fills_at_the_next_open_not_the_close(tmp_path: Path) -> None:
    path = tmp_path / "SPY.csv"
    path.write_text(YFINANCE_CSV)
    with pytest.warns(ColumnsMappedWarning):
        result = Engine(feed=HistoricalFeed(path), strategy=BuyTenOnFirstBar()).run()
    # decided on 2024-01-02, filled at 2024-01-03's Open (470.43), not its Close (468.79)
    assert result.fills["price"].to_list() == [470.43]
    assert result.fills["timestamp"][0] == datetime(2024, 1, 3, tzinfo=UTC)


def test_adj_close_is_read_when_named_as_a_signal(tmp_path: Path) -> None:
    path = tmp_path / "SPY.csv"
    path.write_text(YFINANCE_CSV)
    with pytest.warns(ColumnsMappedWarning, match="'Adj Close' → 'adj_close'"):
        frame = HistoricalFeed(path, signal_columns=["adj_close"]).frame()
    assert frame["adj_close"].to_list() == [465.12, 461.32, 459.84]


def test_folder_of_stooq_csvs_is_one_asset_per_file(tmp_path: Path) -> None:
    (tmp_path / "AAPL.csv").write_text(STOOQ_CSV)
    (tmp_path / "SPY.csv").write_text(YFINANCE_CSV)
    with pytest.warns(ColumnsMappedWarning):
        frame = HistoricalFeed(tmp_path).frame()
    counts = dict(frame.group_by("asset_id").len().iter_rows())
    assert counts == {"AAPL": 2, "SPY": 3}
    assert frame.filter(pl.col("asset_id") == "AAPL")["low"].to_list() == [183.885, 183.43]


def test_polars_frame_with_capitalised_columns_is_mapped_too() -> None:
    frame = pl.read_csv(YFINANCE_CSV.encode(), try_parse_dates=True)
    with pytest.warns(ColumnsMappedWarning):
        out = HistoricalFeed(frame, asset_id="SPY").frame()
    assert out["close"].to_list() == [472.65, 468.79, 467.28]
    assert "Open" not in out.columns


def pandas_bars() -> pd.DataFrame:
    times = pd.to_datetime(["2024-01-02", "2024-01-02", "2024-01-03", "2024-01-03"], utc=True)
    return pd.DataFrame(
        {
            "timestamp": times,
            "asset_id": ["A", "B", "A", "B"],
            "open": [10.0, 20.0, 11.0, 21.0],
            "high": [12.0, 22.0, 12.0, 22.0],
            "low": [9.0, 19.0, 10.0, 20.0],
            "close": [11.0, 21.0, 11.5, 21.5],
            "volume": [1.0, 2.0, 3.0, 4.0],
            "score": [0.1, 0.2, 0.3, 0.4],
        }
    )


def test_pandas_multiindex_timestamp_asset_frame_works() -> None:
    indexed = pandas_bars().set_index(["timestamp", "asset_id"])
    frame = HistoricalFeed(indexed, signal_columns=["score"]).frame()
    assert frame.select("asset_id", "close", "score").rows() == [
        ("A", 11.0, 0.1),
        ("B", 21.0, 0.2),
        ("A", 11.5, 0.3),
        ("B", 21.5, 0.4),
    ]


def test_pandas_multiindex_without_names_says_reset_index() -> None:
    indexed = pandas_bars().set_index(["timestamp", "asset_id"])
    indexed.index.names = [None, None]
    with pytest.raises(DataError, match=r"reset_index\(\)"):
        HistoricalFeed(indexed).frame()


def test_missing_timestamp_error_names_timestamp_col_and_asset_col() -> None:
    frame = pl.DataFrame({"when": [datetime(2024, 1, 2, tzinfo=UTC)], "sym": ["A"], "close": [1.0]})
    with pytest.raises(DataError, match="timestamp_col=") as caught:
        HistoricalFeed(frame).frame()
    assert "asset_col=" in str(caught.value)
    out = HistoricalFeed(frame, timestamp_col="when", asset_col="sym").frame()
    assert out["asset_id"].to_list() == ["A"]
