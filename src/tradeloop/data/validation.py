"""Turn a user's bar frame into tradeloop's normal form, or say exactly what is wrong with it.

Pure: a polars frame in, a polars frame out. The normal form has one row per (asset, bar):
``ts_ns`` (Int64, UTC nanoseconds), ``asset_id`` (String), ``open high low close volume``
(Float64), one Float64 column per signal, and ``source_row`` (the row number in the input).

Rules, each checked for the whole frame at once (the bar rules, ``BAR_RULES``, are the same
for every source: a stream applies them to each timestamp's bars):
- ``timestamp`` and ``close`` are required; ``open``, ``high``, ``low`` default to ``close`` and
  ``volume`` to NaN when the input has close-only bars.
- naive timestamps are UTC; aware ones are converted to UTC; dates are midnight UTC.
- prices are finite and > 0, ``low <= open, close <= high``, volume is >= 0 or missing.
- (asset, timestamp) is unique, and each asset's rows are in increasing time order as given.
- signal columns are numeric (booleans become 0/1); a missing value becomes NaN.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import polars as pl

from tradeloop.errors import DataError, UnknownSignalError

__all__ = [
    "BAR_RULES",
    "OHLCV",
    "BarRule",
    "bar_problems",
    "keeps_bar_rules",
    "normalize_bars",
    "rule_masks",
    "utc_ns_expr",
]

F64 = npt.NDArray[np.float64]
OHLCV = ("open", "high", "low", "close", "volume")
_PRICES = ("open", "high", "low", "close")


@dataclass(frozen=True, slots=True)
class BarRule:
    """One rule every bar keeps, from any source: history, the wire codec, a venue feed."""

    name: str
    what: str
    fix: str


# The one set of bar rules. A history run refuses the data (DataError naming the first bad
# row); a stream skips the bar, counts it under ``name`` and logs it (``runtime.live``).
BAR_RULES = (
    *(
        BarRule(
            f"{name}_not_finite",
            f"{name} is missing or not finite",
            "drop the bar or fill it from a trusted source; tradeloop never guesses a price",
        )
        for name in _PRICES
    ),
    *(
        BarRule(f"{name}_not_positive", f"{name} is <= 0", "check the data source for a bad print")
        for name in _PRICES
    ),
    BarRule(
        "high_below_low",
        "high < low",
        "the bar range is inverted; check column order (open, high, low, close)",
    ),
    BarRule(
        "outside_range",
        "open or close lies outside [low, high]",
        "the bar is inconsistent; limit and stop fills need a valid range",
    ),
    BarRule("negative_volume", "volume is negative", "volume must be >= 0 (NaN if unknown)"),
)


def rule_masks(
    open_: F64, high: F64, low: F64, close: F64, volume: F64
) -> list[npt.NDArray[np.bool_]]:
    """For each of ``BAR_RULES`` (in order), which bars break it (NaN compares as False, so
    a missing price breaks only its ``*_not_finite`` rule)."""
    prices = (open_, high, low, close)
    with np.errstate(invalid="ignore"):
        return [
            *(~np.isfinite(p) for p in prices),
            *(p <= 0 for p in prices),
            high < low,
            (open_ > high) | (close > high) | (open_ < low) | (close < low),
            volume < 0,
        ]


def keeps_bar_rules(open_: F64, high: F64, low: F64, close: F64, volume: F64) -> bool:
    """Whether every bar keeps all of ``BAR_RULES``, in half the passes of ``rule_masks``:
    ``0 < low <= open, close <= high < inf`` holds only for finite, positive, consistent
    prices (NaN compares False, with no warning: an ``np.errstate`` would cost more than the
    checks of a stream's 500 bars), and volume is not negative."""
    good = low > 0
    good &= high < np.inf
    good &= low <= open_
    good &= low <= close
    good &= open_ <= high
    good &= close <= high
    return bool(good.all()) and not bool((volume < 0).any())


def bar_problems(
    open_: F64, high: F64, low: F64, close: F64, volume: F64
) -> list[tuple[int, BarRule]]:
    """(index, first rule broken) of every bad bar in the columns; empty when all are good."""
    if keeps_bar_rules(open_, high, low, close, volume):
        return []
    masks = rule_masks(open_, high, low, close, volume)
    seen: dict[int, BarRule] = {}
    for rule, mask in zip(BAR_RULES, masks, strict=True):
        for index in np.flatnonzero(mask).tolist():
            seen.setdefault(index, rule)
    return sorted(seen.items())


def normalize_bars(
    frame: pl.DataFrame,
    *,
    source: str,
    asset_id: str | None,
    signal_columns: Sequence[str] | None,
    timestamp_col: str = "timestamp",
    asset_col: str = "asset_id",
) -> pl.DataFrame:
    """Validate ``frame`` and return it in normal form (see the module docstring)."""
    frame = frame.with_row_index("source_row")
    _require_columns(frame, source, timestamp_col, asset_col, asset_id)
    signals = _pick_signals(frame, source, signal_columns, timestamp_col, asset_col)
    _check_numeric(frame, [name for name in OHLCV if name in frame.columns], source)

    asset = (
        pl.lit(asset_id, pl.String) if asset_id is not None else pl.col(asset_col).cast(pl.String)
    )
    close = _number(frame, "close")
    columns = [
        pl.col("source_row"),
        utc_ns_expr(frame, timestamp_col, source).alias("ts_ns"),
        asset.alias("asset_id"),
        *[
            (_number(frame, name) if name in frame.columns else close).alias(name)
            for name in ("open", "high", "low")
        ],
        close.alias("close"),
        (_number(frame, "volume") if "volume" in frame.columns else pl.lit(float("nan"))).alias(
            "volume"
        ),
        *[_signal_expr(frame, name, source) for name in signals],
    ]
    out = frame.select(columns)
    _check_values(out, source)
    _check_order(out, source)
    return out


def _check_numeric(frame: pl.DataFrame, names: list[str], source: str) -> None:
    """Price and volume columns hold numbers: text that is not one names its row."""
    for name in names:
        dtype = frame.schema[name]
        if dtype.is_numeric() or dtype == pl.Null:
            continue
        if dtype != pl.String:
            raise DataError(
                f"{source}: column {name!r} has type {dtype}, not numbers. Fix: give {name} "
                "as numbers (floats)."
            )
        parsed = pl.col(name).str.strip_chars().cast(pl.Float64, strict=False)
        bad = frame.filter(pl.col(name).is_not_null() & parsed.is_null())
        if bad.height:
            row = bad.row(0, named=True)
            raise DataError(
                f"{source}: row {row['source_row']} has {name} = {row[name]!r}, not a number "
                f"({bad.height} such rows). Fix: clean the column, e.g. "
                f"pl.col({name!r}).cast(pl.Float64, strict=False) turns text into nulls, then "
                "drop or fill those rows."
            )


def _require_columns(
    frame: pl.DataFrame, source: str, timestamp_col: str, asset_col: str, asset_id: str | None
) -> None:
    missing = [name for name in (timestamp_col, "close") if name not in frame.columns]
    if asset_id is None and asset_col not in frame.columns:
        missing.append(asset_col)
    if missing:
        present = ", ".join(c for c in frame.columns if c != "source_row")
        hints = []
        if timestamp_col in missing:
            hints.append(
                "say which columns hold the time and the asset, e.g. HistoricalFeed(data, "
                "timestamp_col='Date', asset_col='symbol'), or rename them to "
                f"{timestamp_col!r} and {asset_col!r}; a pandas frame with them in a "
                "MultiIndex needs df.reset_index() first"
            )
        if asset_col in missing:
            hints.append(
                f"name the asset column with asset_col='...' (e.g. asset_col='symbol'), pass "
                f"asset_id='SYMBOL' for a single-asset frame, or add a {asset_col!r} column"
            )
        if "close" in missing:
            hints.append("rename the close price column to 'close'")
        raise DataError(
            f"{source}: missing column(s) {', '.join(repr(m) for m in missing)}; "
            f"present: {present}. Fix: {'; '.join(hints)}."
        )


def _pick_signals(
    frame: pl.DataFrame,
    source: str,
    signal_columns: Sequence[str] | None,
    timestamp_col: str,
    asset_col: str,
) -> list[str]:
    reserved = {timestamp_col, asset_col, "source_row", *OHLCV}
    if signal_columns is None:
        return [
            name
            for name, dtype in frame.schema.items()
            if name not in reserved and (dtype.is_numeric() or dtype == pl.Boolean)
        ]
    unknown = [name for name in signal_columns if name not in frame.columns]
    if unknown:
        available = ", ".join(c for c in frame.columns if c not in reserved) or "none"
        raise UnknownSignalError(
            f"{source}: signal column(s) {', '.join(repr(u) for u in unknown)} not found; "
            f"columns that could be signals: {available}. Fix the name in signal_columns=[...]."
        )
    clash = [name for name in signal_columns if name in reserved]
    if clash:
        raise DataError(f"{source}: {clash} are bar fields, not signals; remove them from signals")
    return list(dict.fromkeys(signal_columns))


def utc_ns_expr(frame: pl.DataFrame, timestamp_col: str, source: str) -> pl.Expr:
    """UTC epoch nanoseconds of a datetime or date column (naive means UTC)."""
    dtype = frame.schema[timestamp_col]
    col = pl.col(timestamp_col)
    if dtype == pl.Date:
        col = col.cast(pl.Datetime("us"))
        dtype = pl.Datetime("us")
    if not isinstance(dtype, pl.Datetime):
        raise DataError(
            f"{source}: column {timestamp_col!r} has type {dtype}, not a datetime. Fix: "
            f"convert it first, e.g. pl.col({timestamp_col!r}).str.to_datetime() for text or "
            f"pl.from_epoch({timestamp_col!r}, time_unit='ms') for epoch numbers."
        )
    nulls = frame.filter(pl.col(timestamp_col).is_null())
    if nulls.height:
        raise DataError(
            f"{source}: row {nulls['source_row'][0]} has no timestamp "
            f"({nulls.height} such rows). Fix: drop or fill rows with a null {timestamp_col!r}."
        )
    if dtype.time_zone is None:
        col = col.dt.replace_time_zone("UTC")
    else:
        col = col.dt.convert_time_zone("UTC")
    _check_ns_range(frame, col.dt.epoch("us"), timestamp_col, source)
    return col.dt.epoch("ns")


# what UTC nanoseconds in an int64 can hold: 1677-09-21 to 2262-04-11
_NS_RANGE_US = (-(2**63) // 1000 + 1, (2**63 - 1) // 1000)


def _check_ns_range(
    frame: pl.DataFrame, epoch_us: pl.Expr, timestamp_col: str, source: str
) -> None:
    """A timestamp outside 1677..2262 cannot be held in nanoseconds: it would wrap into
    another date (a row dated 2922 became one dated 1677). Say which row instead."""
    low, high = _NS_RANGE_US
    outside = (
        frame.select(epoch_us.alias("us"), pl.col(timestamp_col).alias("when"))
        .with_row_index("row")
        .filter((pl.col("us") < low) | (pl.col("us") > high))
    )
    if not outside.height:
        return
    first = outside.row(0, named=True)
    row = frame["source_row"][first["row"]] if "source_row" in frame.columns else first["row"]
    raise DataError(
        f"{source}: row {row} has timestamp {first['when']}, outside the 1677-09-21..2262-04-11 "
        f"range of nanosecond times ({outside.height} such rows). Fix: check the date column "
        "for a typo (e.g. 2922 for 2022) or a wrong unit."
    )


def _number(frame: pl.DataFrame, name: str) -> pl.Expr:
    """A price or volume column as floats (text of numbers, checked before, is parsed)."""
    if frame.schema[name] == pl.String:
        return pl.col(name).str.strip_chars().cast(pl.Float64)
    return pl.col(name).cast(pl.Float64)


def _signal_expr(frame: pl.DataFrame, name: str, source: str) -> pl.Expr:
    dtype = frame.schema[name]
    if not (dtype.is_numeric() or dtype == pl.Boolean or dtype == pl.Null):
        raise DataError(
            f"{source}: signal {name!r} has type {dtype}; signals must be numeric. Fix: encode "
            "it as a number, or pass it as market context if it is a label such as a regime."
        )
    return pl.col(name).cast(pl.Float64).fill_null(float("nan")).alias(name)


def _where(row: dict[str, object], source: str) -> str:
    ts = pl.Series([row["ts_ns"]]).cast(pl.Datetime("ns", "UTC"))[0]
    return f"{source} row {row['source_row']} (asset {row['asset_id']}, {ts.isoformat()})"


def _first_bad(out: pl.DataFrame, condition: pl.Expr) -> tuple[dict[str, object], int] | None:
    bad = out.filter(condition)
    return (bad.row(0, named=True), bad.height) if bad.height else None


_CHECK_ROWS = 1 << 17  # rows the value check reads as arrays at once


def _check_values(out: pl.DataFrame, source: str) -> None:
    null_asset = _first_bad(out, pl.col("asset_id").is_null())
    if null_asset:
        row, count = null_asset
        raise DataError(
            f"{source} row {row['source_row']}: no asset id ({count} such rows). "
            "Fix: fill the asset column, or pass asset_id= for a single-asset frame."
        )
    # a slice of rows at a time: the columns of a parquet read come in chunks, and the whole
    # of each as one array would be a copy (~40 MB for a million bars) held only for this
    if all(
        keeps_bar_rules(*(out[name].slice(start, _CHECK_ROWS).to_numpy() for name in OHLCV))
        for start in range(0, out.height, _CHECK_ROWS)
    ):
        return
    columns = [out[name].to_numpy() for name in OHLCV]  # something is wrong: find it
    for rule, bad in zip(BAR_RULES, rule_masks(*columns), strict=True):
        if bad.any():
            index = int(np.argmax(bad))
            row = out.row(index, named=True)
            values = ", ".join(f"{k}={row[k]}" for k in OHLCV)
            raise DataError(
                f"{_where(row, source)}: {rule.what} ({values}); {int(bad.sum())} bad row(s) "
                f"in all. Fix: {rule.fix}."
            )


def _check_order(out: pl.DataFrame, source: str) -> None:
    """Each asset's rows must move forward in time, in the order given.

    Cheap on the happy path: rows sorted by (time, asset) or by (asset, time), strictly, are
    in order (one pass comparing each row with the one before). Any other order is checked by
    one stable sort by a small integer code; the costlier duplicate search runs only once
    something is already known to be wrong.
    """
    if _sorted_strictly(out):
        return
    code = pl.col("asset_id").cast(pl.Categorical).to_physical().alias("code")
    same_asset = pl.col("code") == pl.col("code").shift(1)
    previous = pl.when(same_asset).then(pl.col("ts_ns").shift(1)).alias("prev_ts_ns")
    happy = out.select(code, "ts_ns").sort("code", maintain_order=True)
    if not happy.select((pl.col("ts_ns") <= previous).any()).item():
        return
    keyed = (
        out.select("source_row", "asset_id", "ts_ns", code)
        .sort("code", maintain_order=True)
        .with_columns(previous)
    )
    repeated = out.filter(pl.struct("asset_id", "ts_ns").is_duplicated())
    if repeated.height:
        first = repeated.row(0, named=True)
        rows = repeated.filter(
            (pl.col("asset_id") == first["asset_id"]) & (pl.col("ts_ns") == first["ts_ns"])
        )["source_row"].to_list()
        raise DataError(
            f"{_where(first, source)}: duplicate (asset, timestamp), rows {rows} "
            f"({repeated.height} rows share a key). Fix: keep one bar per asset and time, e.g. "
            "df.unique(subset=['asset_id', 'timestamp'], keep='last')."
        )
    back = keyed.filter(pl.col("ts_ns") < pl.col("prev_ts_ns")).sort("source_row")
    row = back.row(0, named=True)
    prev = pl.Series([row["prev_ts_ns"]]).cast(pl.Datetime("ns", "UTC"))[0]
    raise DataError(
        f"{_where(row, source)}: timestamps go backwards for this asset (previous row was "
        f"{prev.isoformat()}); {back.height} such rows. Fix: sort first, "
        "df.sort('asset_id', 'timestamp'), after checking why the source is out of order."
    )


def _sorted_strictly(out: pl.DataFrame) -> bool:
    """Whether the rows are sorted by (time, asset) or by (asset, time) with no key twice:
    then each asset's rows move forward in time (the orders a data source usually gives).
    Replay order, (time, asset), is tried first: one pass when it holds."""
    ts, asset = pl.col("ts_ns"), pl.col("asset_id")
    ts_before, asset_before = ts.shift(1), asset.shift(1)
    time_major = (ts > ts_before) | ((ts == ts_before) & (asset > asset_before))
    asset_major = (asset > asset_before) | ((asset == asset_before) & (ts > ts_before))
    return any(
        bool(out.select(sorted_.fill_null(True).all()).item())
        for sorted_ in (time_major, asset_major)
    )
