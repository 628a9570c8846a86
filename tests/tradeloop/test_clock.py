"""UTC nanoseconds to datetimes, and MarketEvent's lazy timestamp."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import numpy as np
import polars as pl

from tradeloop import MarketEvent
from tradeloop.clock import datetimes_from_ns, utc_datetime


def test_utc_datetime_matches_polars_for_whole_and_fractional_seconds() -> None:
    stamps = [0, 1_600_000_000_000_000_000, 1_600_000_000_123_456_789, -86_400_500_000_000]
    expected = pl.Series(stamps, dtype=pl.Int64).cast(pl.Datetime("ns", "UTC")).to_list()
    assert [utc_datetime(ts) for ts in stamps] == expected
    assert datetimes_from_ns(np.array(stamps, dtype=np.int64)) == expected
    assert all(d.tzinfo is not None and d.utcoffset() == timedelta(0) for d in expected)


def test_utc_datetime_repeats_return_the_same_object() -> None:
    assert utc_datetime(1_700_000_000_000_000_000) is utc_datetime(1_700_000_000_000_000_000)


def test_market_event_from_datetime_knows_its_ns_and_naive_means_utc() -> None:
    aware = datetime(2024, 3, 4, 14, 30, tzinfo=timezone(timedelta(hours=2)))
    event = MarketEvent(aware, "X", 1, 1, 1, 1, 0, {}, {})
    assert event.ts_ns == int(aware.timestamp()) * 1_000_000_000
    naive = MarketEvent(datetime(2024, 3, 4, 12, 30), "X", 1, 1, 1, 1, 0, {}, {})  # noqa: DTZ001
    assert naive.ts_ns == event.ts_ns


def test_market_event_from_ns_builds_its_datetime_when_read() -> None:
    event = MarketEvent(None, "X", 1, 1, 1, 1, 0, {}, {}, ts_ns=1_700_000_000_000_000_000)
    assert event.timestamp == datetime(2023, 11, 14, 22, 13, 20, tzinfo=UTC)
