"""Bad bar data gets a DataError that names the source, row, asset, time and the fix."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta, timezone

import numpy as np
import polars as pl
import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.conftest import bars
from tradeloop import DataError, HistoricalFeed, UnknownSignalError
from tradeloop.data.validation import keeps_bar_rules, rule_masks

GOOD = [
    (0, "A", 10, 11, 9, 10.5),
    (0, "B", 20, 21, 19, 20.5),
    (1, "A", 10.5, 11.5, 10, 11),
    (1, "B", 20.5, 21, 20, 20.8),
]


def load(frame: pl.DataFrame, **options: object) -> pl.DataFrame:
    return HistoricalFeed(frame, **options).frame()  # type: ignore[arg-type]


def test_valid_frame_normalises_to_utc_ns_and_float_columns() -> None:
    out = load(bars(GOOD, {"ml_pred": [0.1, 0.2, 0.3, 0.4]}))
    assert out.columns == [
        "source_row",
        "ts_ns",
        "asset_id",
        "open",
        "high",
        "low",
        "close",
        "volume",
        "ml_pred",
    ]
    first = datetime(2024, 1, 1, 21, tzinfo=UTC)
    assert out["ts_ns"][0] == int(first.timestamp()) * 1_000_000_000


@pytest.mark.parametrize("bad_row", [0, (1 << 17) - 1, 1 << 17, 300_000 - 1])
def test_one_bad_bar_among_300k_is_found_in_whichever_slice_it_is(bad_row: int) -> None:
    # the value check reads the columns a slice of 131,072 rows at a time: a bad bar at a
    # slice's edge, or in the last (short) slice, is still the one named
    n = 300_000
    close = np.full(n, 10.0)
    close[bad_row] = -1.0
    frame = pl.DataFrame(
        {
            "timestamp": pl.datetime_range(
                datetime(2024, 1, 1, tzinfo=UTC),
                datetime(2024, 1, 1, tzinfo=UTC) + timedelta(minutes=n - 1),
                "1m",
                eager=True,
            ),
            "open": np.full(n, 10.0), "high": np.full(n, 10.0), "low": np.full(n, 10.0),
            "close": close,
        }
    )  # fmt: skip
    with pytest.raises(DataError, match=rf"row {bad_row}\b.*close is <= 0"):
        load(frame, asset_id="A")


@pytest.mark.parametrize(
    ("column", "value", "message"),
    [
        ("close", float("nan"), "close is missing or not finite"),
        ("close", None, "close is missing or not finite"),
        ("open", -1.0, "open is <= 0"),
        ("low", 11.8, "high < low"),
        ("open", 12.0, "open or close lies outside"),
        ("volume", -5.0, "volume is negative"),
    ],
)
def test_bad_price_row_raises_data_error_naming_row_asset_and_time(
    column: str, value: float | None, message: str
) -> None:
    frame = (
        bars(GOOD)
        .with_row_index("i")
        .with_columns(
            pl.when(pl.col("i") == 2)
            .then(pl.lit(value, pl.Float64))
            .otherwise(pl.col(column))
            .alias(column)
        )
        .drop("i")
    )
    with pytest.raises(DataError) as info:
        load(frame)
    text = str(info.value)
    assert message in text
    assert "row 2" in text
    assert "asset A" in text
    assert "2024-01-02T21:00:00+00:00" in text
    assert "Fix:" in text


def test_missing_column_error_lists_present_columns_and_fix() -> None:
    with pytest.raises(DataError, match=r"missing column\(s\) 'close'.*present: timestamp"):
        load(bars(GOOD).drop("close"))


def test_frame_without_asset_column_takes_asset_id_argument() -> None:
    frame = bars(GOOD[:1]).drop("asset_id")
    assert load(frame, asset_id="SPY")["asset_id"].to_list() == ["SPY"]


def test_duplicate_asset_timestamp_raises_with_both_rows() -> None:
    with pytest.raises(DataError, match=r"duplicate \(asset, timestamp\).*unique"):
        load(bars([*GOOD, (1, "B", 20, 21, 19, 20)]))


def test_non_adjacent_duplicate_is_found_too() -> None:
    rows = [(0, "A", 10, 11, 9, 10), (1, "A", 10, 11, 9, 10), (0, "A", 10, 11, 9, 10)]
    with pytest.raises(DataError, match=r"duplicate \(asset, timestamp\), rows \[0, 2\]"):
        load(bars(rows))


def test_asset_rows_out_of_time_order_raise_with_previous_time() -> None:
    rows = [(1, "A", 10, 11, 9, 10), (0, "A", 10, 11, 9, 10)]
    with pytest.raises(DataError, match=r"timestamps go backwards.*previous row was 2024-01-02"):
        load(bars(rows))


def test_assets_concatenated_one_after_another_are_accepted() -> None:
    rows = [(0, "A", 10, 11, 9, 10), (1, "A", 10, 11, 9, 10), (0, "B", 5, 6, 4, 5)]
    assert load(bars(rows)).height == 3


def test_unknown_signal_column_raises_listing_candidates() -> None:
    with pytest.raises(UnknownSignalError, match=r"'ml_pred' not found.*could be signals: score"):
        load(bars(GOOD, {"score": [1, 2, 3, 4]}), signal_columns=["ml_pred"])


def test_text_signal_column_is_refused_with_hint_to_use_context() -> None:
    frame = bars(GOOD).with_columns(pl.lit("bull").alias("regime"))
    with pytest.raises(DataError, match=r"signals must be numeric.*context"):
        load(frame, signal_columns=["regime"])


def test_text_timestamps_are_refused_with_conversion_hint() -> None:
    frame = bars(GOOD).with_columns(pl.col("timestamp").dt.to_string("%Y-%m-%d"))
    with pytest.raises(DataError, match=r"not a datetime.*str.to_datetime"):
        load(frame)


def test_null_timestamp_raises() -> None:
    frame = bars(GOOD).with_columns(
        pl.when(pl.int_range(pl.len()) == 1)
        .then(None)
        .otherwise(pl.col("timestamp"))
        .alias("timestamp")
    )
    with pytest.raises(DataError, match="row 1 has no timestamp"):
        load(frame)


def test_naive_timestamps_are_utc_and_aware_ones_are_converted() -> None:
    naive = bars(GOOD[:1]).with_columns(pl.col("timestamp").dt.replace_time_zone(None))
    eastern = bars(GOOD[:1]).with_columns(
        pl.col("timestamp").dt.convert_time_zone("America/New_York")
    )
    assert load(naive)["ts_ns"][0] == load(eastern)["ts_ns"][0] == load(bars(GOOD[:1]))["ts_ns"][0]


def test_close_only_frame_fills_ohlc_from_close_and_volume_nan() -> None:
    frame = pl.DataFrame({"timestamp": [datetime(2024, 1, 1)], "close": [5.0]})  # noqa: DTZ001
    out = load(frame, asset_id="X").row(0, named=True)
    assert (out["open"], out["high"], out["low"], out["close"]) == (5.0, 5.0, 5.0, 5.0)
    assert math.isnan(out["volume"])


def test_null_signal_becomes_nan_not_zero() -> None:
    out = load(bars(GOOD, {"s": [1.0, None, 3.0, 4.0]}))  # type: ignore[list-item]
    assert math.isnan(out["s"][1])


def test_date_column_is_midnight_utc() -> None:
    frame = pl.DataFrame({"timestamp": [datetime(2024, 1, 2).date()], "close": [1.0]})  # noqa: DTZ001
    ts = load(frame, asset_id="X")["ts_ns"][0]
    assert ts == int(datetime(2024, 1, 2, tzinfo=UTC).timestamp()) * 10**9


def test_fixed_offset_timezone_converts() -> None:
    tz = timezone(timedelta(hours=2))
    frame = pl.DataFrame({"timestamp": [datetime(2024, 1, 2, 2, 0, tzinfo=tz)], "close": [1.0]})
    ts = load(frame, asset_id="X")["ts_ns"][0]
    assert ts == int(datetime(2024, 1, 2, 0, 0, tzinfo=UTC).timestamp()) * 10**9


# The happy paths: rows sorted by (time, asset) or (asset, time) are accepted by one pass;
# any other order goes through the general check, which must reach the same verdict.


def test_rows_sorted_by_asset_then_time_are_accepted() -> None:
    rows = [(0, "A", 10, 11, 9, 10), (1, "A", 10, 11, 9, 10), (0, "B", 5, 6, 4, 5)]
    assert load(bars(rows))["source_row"].to_list() == [0, 1, 2]


def test_rows_interleaved_in_no_sorted_order_but_forward_per_asset_are_accepted() -> None:
    # B before A at t=0, A before B at t=1: neither sort order, each asset moves forward
    rows = [(0, "B", 5, 6, 4, 5), (0, "A", 10, 11, 9, 10), (1, "A", 10, 11, 9, 10)]
    rows.append((1, "B", 5, 6, 4, 5))
    assert load(bars(rows)).height == 4


def test_time_sorted_rows_with_a_repeated_key_raise_duplicate() -> None:
    rows = [(0, "A", 10, 11, 9, 10), (0, "A", 10, 11, 9, 10), (1, "A", 10, 11, 9, 10)]
    with pytest.raises(DataError, match=r"duplicate \(asset, timestamp\), rows \[0, 1\]"):
        load(bars(rows))


def test_asset_sorted_rows_going_back_in_time_raise_with_row() -> None:
    rows = [(0, "A", 10, 11, 9, 10), (2, "A", 10, 11, 9, 10), (1, "A", 10, 11, 9, 10)]
    with pytest.raises(DataError, match=r"row 2 \(asset A.*timestamps go backwards"):
        load(bars(rows))


_PRICE = st.one_of(
    st.floats(min_value=-2.0, max_value=3.0, allow_nan=False),
    st.sampled_from([math.nan, math.inf, -math.inf, 0.0, 1.0]),
)


@given(st.lists(st.tuples(_PRICE, _PRICE, _PRICE, _PRICE, _PRICE), min_size=1, max_size=8))
def test_keeps_bar_rules_any_prices_agrees_with_every_rule_mask(
    bars_: list[tuple[float, ...]],
) -> None:
    # the one-pass check is the rules' conjunction: it says "good" exactly when no mask is set
    columns = [np.array(column, dtype=np.float64) for column in zip(*bars_, strict=True)]
    assert keeps_bar_rules(*columns) == (not any(mask.any() for mask in rule_masks(*columns)))
