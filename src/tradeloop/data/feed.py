"""Historical feeds: where a replay's bars come from.

``HistoricalFeed`` accepts a long multi-asset frame, a single-asset frame with ``asset_id=``, a
dict of per-asset frames, or a parquet/CSV path read lazily (only the needed columns, only
rows inside ``start``/``end``). polars and pandas frames both work; a pandas frame indexed by
time may keep its timestamps in the index.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import polars as pl

from tradeloop.data.columns import standard_names, warn_mapped
from tradeloop.data.validation import OHLCV, normalize_bars
from tradeloop.errors import ConfigError, DataError

__all__ = ["HistoricalFeed", "to_polars", "unreadable"]


class HistoricalFeed:
    """Bars (and their signal columns) for a replay backtest.

    ``signal_columns`` names the columns that become ``event.signals``; ``None`` takes every
    numeric column that is not a bar field. ``signals=`` is accepted as an alias.
    """

    def __init__(
        self,
        data: Any,
        signal_columns: Sequence[str] | None = None,
        *,
        asset_id: str | None = None,
        signals: Sequence[str] | None = None,
        timestamp_col: str = "timestamp",
        asset_col: str = "asset_id",
        start: datetime | date | str | None = None,
        end: datetime | date | str | None = None,
    ) -> None:
        if signal_columns is not None and signals is not None:
            raise ConfigError("pass signal_columns= or its alias signals=, not both")
        self.data = data
        chosen = signals if signals is not None else signal_columns
        self.signal_columns = list(chosen) if chosen is not None else None
        self.asset_id = asset_id
        self.timestamp_col = timestamp_col
        self.asset_col = asset_col
        self.start = _moment(start, "start")
        self.end = _moment(end, "end")
        self._default_asset_id = "asset"

    def with_asset_id(self, asset_id: str) -> HistoricalFeed:
        """Use ``asset_id`` for frames that have no asset column (the key of ``feeds={...}``)."""
        self._default_asset_id = asset_id
        return self

    def frame(self) -> pl.DataFrame:
        """Read and validate the bars into normal form (each call reads again: a feed holds
        no copy of the data, so a run keeps only its columnar table in memory)."""
        return self._load()

    @property
    def source(self) -> str:
        return str(self.data) if isinstance(self.data, str | Path) else "frame"

    def _load(self) -> pl.DataFrame:
        if isinstance(self.data, Mapping):
            parts = [
                self._normalize(to_polars(value, self.timestamp_col), f"frame[{key!r}]", str(key))
                for key, value in self.data.items()
            ]
            if not parts:
                raise DataError("the dict of frames is empty; give at least one asset")
            return pl.concat(parts, how="diagonal_relaxed")
        if isinstance(self.data, str | Path):
            return self._normalize(self._scan(Path(self.data)), str(self.data), self.asset_id)
        return self._normalize(to_polars(self.data, self.timestamp_col), "frame", self.asset_id)

    def _normalize(self, frame: pl.DataFrame, source: str, asset_id: str | None) -> pl.DataFrame:
        renames, dropped = self._standard(frame.columns)
        if renames or dropped:
            warn_mapped(source, renames, dropped)
            frame = frame.rename(renames).drop(dropped)
        if asset_id is None and self.asset_col not in frame.columns:
            asset_id = self._default_asset_id
        frame = self._clip(frame)
        return normalize_bars(
            frame,
            source=source,
            asset_id=asset_id,
            signal_columns=self.signal_columns,
            timestamp_col=self.timestamp_col,
            asset_col=self.asset_col,
        )

    def _standard(self, columns: Sequence[str]) -> tuple[dict[str, str], list[str]]:
        return standard_names(
            columns,
            timestamp_col=self.timestamp_col,
            asset_col=self.asset_col,
            signal_columns=self.signal_columns,
        )

    def _clip(self, frame: pl.DataFrame) -> pl.DataFrame:
        if self.start is None and self.end is None:
            return frame
        return frame.filter(self._time_filter(frame.schema))

    def _time_filter(self, schema: Mapping[str, Any]) -> pl.Expr:
        col = pl.col(self.timestamp_col)
        dtype = schema.get(self.timestamp_col)
        aware = isinstance(dtype, pl.Datetime) and dtype.time_zone is not None
        expr = pl.lit(True)
        if self.start is not None:
            expr = expr & (col >= _as_utc(self.start, aware))
        if self.end is not None:
            expr = expr & (col <= _as_utc(self.end, aware))
        return expr

    def _scan(self, path: Path) -> pl.DataFrame:
        if not path.exists():
            raise DataError(f"{path}: no such file. Fix: check the path (cwd is {Path.cwd()})")
        suffix = path.suffix.lower()
        if path.is_dir():
            # a partitioned folder (``tradeloop fetch``: asset_id=X/...): parquet files only,
            # so a temporary file or a note beside them is not read as data
            if any(path.rglob("*.parquet")):
                lazy = pl.scan_parquet(path / "**" / "*.parquet", hive_partitioning=True)
            else:
                return self._csv_folder(path)
        elif suffix == ".parquet":
            lazy = pl.scan_parquet(path)
        elif suffix == ".csv":
            lazy = pl.scan_csv(path, try_parse_dates=True)
        else:
            raise DataError(f"{path}: unknown file type {suffix!r}; use .parquet or .csv")
        return self._collect(lazy, path, path.stem if suffix == ".csv" else None)

    def _csv_folder(self, path: Path) -> pl.DataFrame:
        """A folder of CSV files, one per asset (``SPY.csv``): the file name is the asset id."""
        files = sorted(path.glob("*.csv"))
        if not files:
            raise DataError(
                f"{path}: a folder with no .parquet or .csv file in it. Fix: check the path"
            )
        parts = [self._collect(pl.scan_csv(f, try_parse_dates=True), f, f.stem) for f in files]
        return pl.concat(parts, how="diagonal_relaxed")

    def _collect(self, lazy: pl.LazyFrame, path: Path, file_asset: str | None) -> pl.DataFrame:
        """Read ``path``'s wanted columns; a file polars cannot read is a DataError."""
        try:
            return self._read(lazy, path, file_asset)
        except (pl.exceptions.PolarsError, OSError) as err:
            raise unreadable(path, err) from err

    def _read(self, lazy: pl.LazyFrame, path: Path, file_asset: str | None) -> pl.DataFrame:
        schema = lazy.collect_schema()
        renames, dropped = self._standard(list(schema))
        if renames or dropped:
            warn_mapped(str(path), renames, dropped)
            lazy = lazy.rename(renames).drop(dropped)
            schema = lazy.collect_schema()
        if file_asset is not None and self.asset_id is None and self.asset_col not in schema:
            lazy = lazy.with_columns(pl.lit(file_asset, pl.String).alias(self.asset_col))
            schema = lazy.collect_schema()
        wanted = {self.timestamp_col, self.asset_col, *OHLCV, *(self.signal_columns or schema)}
        lazy = lazy.select([name for name in schema if name in wanted])
        if self.timestamp_col in schema and (self.start is not None or self.end is not None):
            lazy = lazy.filter(self._time_filter(schema))
        return lazy.collect()


def unreadable(path: Path, err: Exception) -> DataError:
    """A data file that cannot be read (empty, truncated, not the format its name says)."""
    size = path.stat().st_size if path.is_file() else None
    what = "an empty file" if size == 0 else f"{type(err).__name__}: {str(err).splitlines()[0]}"
    return DataError(
        f"{path}: cannot be read as {path.suffix.lstrip('.') or 'data'} ({what}). Fix: write "
        "it again (an interrupted copy or download leaves a truncated file), or point at the "
        "right file"
    )


def _moment(value: Any, what: str) -> datetime | None:
    """``start=``/``end=`` as a datetime: a datetime, a date (midnight UTC) or ISO text
    ("2022-06-01", "2022-06-01T14:30"); anything else is a ConfigError."""
    if value is None or isinstance(value, datetime):
        return value
    if isinstance(value, date):
        return datetime(value.year, value.month, value.day, tzinfo=UTC)
    if isinstance(value, str):
        try:
            return datetime.fromisoformat(value.strip())
        except ValueError:
            pass
    raise ConfigError(
        f"{what}={value!r} is not a time. Fix: a datetime, a date, or ISO text such as "
        f'{what}="2022-06-01" or "2022-06-01T14:30"'
    )


def _as_utc(value: datetime, aware: bool) -> datetime:
    """``value`` in UTC (naive means UTC), aware or naive to match the column it is compared to."""
    utc = value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    return utc if aware else utc.replace(tzinfo=None)


def to_polars(data: Any, timestamp_col: str = "timestamp") -> pl.DataFrame:
    """A polars frame from a polars (lazy) frame or a pandas frame (a time index is kept)."""
    if isinstance(data, pl.LazyFrame):
        return data.collect()
    if isinstance(data, pl.DataFrame):
        return data
    if type(data).__module__.startswith("pandas"):
        return _from_pandas(data, timestamp_col)
    raise DataError(
        f"cannot read bars from a {type(data).__name__}; give a polars or pandas DataFrame, "
        "a dict of them keyed by asset id, or a .parquet/.csv path"
    )


def _from_pandas(frame: Any, timestamp_col: str) -> pl.DataFrame:
    """A pandas frame as polars; a time index, or a ``(timestamp, asset_id)`` MultiIndex,
    becomes columns (``reset_index()``)."""
    index = frame.index
    if getattr(index, "nlevels", 1) > 1:
        names = list(index.names)
        if any(name is None for name in names) or set(names) & set(frame.columns):
            raise DataError(
                f"frame: a pandas MultiIndex with levels {names} cannot become columns as it "
                "is. Fix: name the levels and call reset_index() first, e.g. "
                "df.rename_axis(['timestamp', 'asset_id']).reset_index()"
            )
        frame = frame.reset_index()
    elif timestamp_col not in frame.columns and str(index.dtype).startswith("datetime"):
        frame = frame.rename_axis(timestamp_col).reset_index()
    try:
        return pl.from_pandas(frame)
    except (TypeError, ValueError, pl.exceptions.PolarsError) as err:
        raise DataError(
            f"frame: cannot convert this pandas frame ({err}). Fix: df.reset_index() first, "
            "so the timestamp and asset are columns"
        ) from err
