"""The benchmark curves, against values worked out by hand."""

from __future__ import annotations

from datetime import timedelta

import numpy as np
import pandas as pd
import polars as pl
import pytest

from tests.conftest import Scripted, bars, day
from tradeloop import DataError, Engine, HistoricalFeed
from tradeloop.data.bars import BarTable
from tradeloop.results.benchmark import equal_weight_buy_and_hold, rescaled_benchmark

# A trades on days 0 and 2 (no bar on day 1); B starts on day 1.
ROWS = [
    (0, "A", 10, 10, 10, 10),
    (1, "B", 20, 20, 20, 20),
    (2, "A", 12, 12, 12, 12),
    (2, "B", 18, 18, 18, 18),
]


def test_equal_weight_buy_and_hold_holds_each_asset_from_its_first_close() -> None:
    table = BarTable.from_frame(HistoricalFeed(bars(ROWS)).frame())
    # 500 each: day 0 A at 10 (500) + B's share in cash (500); day 1 A still marked at 10,
    # B bought at 20 (500); day 2 A 12/10 × 500 = 600, B 18/20 × 500 = 450.
    assert equal_weight_buy_and_hold(table, 1_000.0).tolist() == pytest.approx(
        [1_000.0, 1_000.0, 1_050.0]
    )


def test_engine_result_carries_the_benchmark_on_its_timestamps() -> None:
    result = Engine(feed=bars(ROWS), strategy=Scripted({}), initial_cash=1_000.0).run()
    assert result.benchmark_curve["timestamp"].to_list() == [day(0), day(1), day(2)]
    assert result.benchmark_curve["equity"].to_list() == pytest.approx([1_000.0, 1_000.0, 1_050.0])


def test_rescaled_benchmark_reads_as_of_each_time_and_starts_at_initial_cash() -> None:
    ts_ns = np.array([int(day(i).timestamp() * 1e9) for i in range(3)], dtype=np.int64)
    hourly = pl.DataFrame(
        {
            "timestamp": [day(0) - timedelta(hours=1), day(0), day(1) + timedelta(hours=1)],
            "spy": [90.0, 100.0, 110.0],
        }
    )
    # day 0 reads 100 (its own time), day 1 still 100 (the 110 comes an hour later), day 2 110
    assert rescaled_benchmark(hourly, ts_ns, 1_000.0).tolist() == pytest.approx(
        [1_000.0, 1_000.0, 1_100.0]
    )
    later = pd.Series([50.0, 55.0], index=pd.DatetimeIndex([day(1), day(2)]))
    scaled = rescaled_benchmark(later, ts_ns, 1_000.0)
    assert np.isnan(scaled[0])
    assert scaled[1:].tolist() == pytest.approx([1_000.0, 1_100.0])


def test_rescaled_benchmark_after_the_run_is_a_data_error() -> None:
    ts_ns = np.array([int(day(0).timestamp() * 1e9)], dtype=np.int64)
    series = pl.DataFrame({"timestamp": [day(5)], "spy": [100.0]})
    with pytest.raises(DataError, match="benchmark series"):
        rescaled_benchmark(series, ts_ns, 1_000.0)
