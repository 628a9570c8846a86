"""Context: as-of lookups, None before a series starts, every accepted input form, errors."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pandas as pd
import polars as pl
import pytest

from tradeloop import Context, DataError, UnknownContextError

T0 = datetime(2024, 1, 1, tzinfo=UTC)


def hours(*offsets: int) -> list[datetime]:
    return [T0 + timedelta(hours=h) for h in offsets]


def vix_frame() -> pl.DataFrame:
    return pl.DataFrame({"timestamp": hours(0, 1, 2), "VIX": [15.0, 16.0, 17.0]})


def test_context_lookup_takes_last_value_at_or_before_time() -> None:
    context = Context({"VIX": vix_frame()})
    assert context.at(T0 + timedelta(minutes=90))["VIX"] == 16.0  # between hours 1 and 2
    assert context.at(T0 + timedelta(hours=2))["VIX"] == 17.0  # exactly at a point
    assert context.at(T0 + timedelta(days=30))["VIX"] == 17.0  # forward filled


def test_context_before_series_starts_is_none_and_get_default_applies() -> None:
    snapshot = Context({"VIX": vix_frame()}).at(T0 - timedelta(seconds=1))
    assert snapshot["VIX"] is None
    assert snapshot.get("VIX") is None
    assert snapshot.get("VIX", 0.0) == 0.0


def test_context_unknown_name_raises_keyerror_listing_names() -> None:
    snapshot = Context({"VIX": vix_frame()}).at(T0)
    with pytest.raises(UnknownContextError, match="'VXX'; context series: VIX"):
        snapshot["VXX"]
    with pytest.raises(KeyError):
        snapshot["VXX"]
    assert snapshot.get("VXX", 1.0) == 1.0


def test_context_nan_observation_is_skipped_like_pandas_asof() -> None:
    frame = pl.DataFrame({"timestamp": hours(0, 1), "VIX": [15.0, float("nan")]})
    assert Context({"VIX": frame}).at(T0 + timedelta(hours=5))["VIX"] == 15.0


def test_context_accepts_pandas_series_with_time_index() -> None:
    series = pd.Series([1.0, 2.0], index=pd.DatetimeIndex(hours(0, 24)))
    context = Context({"breadth": series})
    assert context.at(T0 + timedelta(hours=23))["breadth"] == 1.0


def test_context_accepts_seed_dict_of_timestamp_to_values_with_labels() -> None:
    naive = datetime(2023, 1, 3, 9, 30)  # noqa: DTZ001 - the seed's form; naive means UTC
    context = Context(
        {
            naive + timedelta(days=1): {"VIX": 19.1, "regime": "bull"},
            naive: {"VIX": 18.5, "regime": "bull"},
            naive + timedelta(days=2): {"VIX": 22.3, "regime": "bear"},
        }
    )
    snapshot = context.at(naive + timedelta(days=1, hours=1))
    assert (snapshot["VIX"], snapshot["regime"]) == (19.1, "bull")
    assert context.at(naive + timedelta(days=5))["regime"] == "bear"


def test_context_accepts_frame_of_columns() -> None:
    frame = vix_frame().with_columns(pl.Series("SPY", [400.0, 401.0, 399.0]))
    snapshot = Context(frame).at(T0 + timedelta(hours=1))
    assert dict(snapshot) == {"VIX": 16.0, "SPY": 401.0}


def test_context_series_without_timestamps_is_refused_with_fix() -> None:
    with pytest.raises(DataError, match="has no timestamps"):
        Context({"VIX": [15.0, 16.0]})
    with pytest.raises(DataError, match="no timestamp index"):
        Context({"VIX": pd.Series([15.0, 16.0])})
    with pytest.raises(DataError, match="no 'timestamp' column"):
        Context(pl.DataFrame({"VIX": [1.0]}))


def test_context_unsorted_or_repeated_times_are_refused() -> None:
    backwards = pl.DataFrame({"timestamp": hours(1, 0), "VIX": [1.0, 2.0]})
    with pytest.raises(DataError, match="goes backwards"):
        Context({"VIX": backwards})
    repeated = pl.DataFrame({"timestamp": hours(0, 0), "VIX": [1.0, 2.0]})
    with pytest.raises(DataError, match="repeats"):
        Context({"VIX": repeated})


def test_context_snapshot_is_cached_per_timestamp() -> None:
    context = Context({"VIX": vix_frame()})
    assert context.at_ns(10**18) is context.at_ns(10**18)


def test_context_merge_refuses_a_name_given_twice() -> None:
    with pytest.raises(DataError, match="given twice"):
        Context({"VIX": vix_frame()}).merged(Context({"VIX": vix_frame()}))
