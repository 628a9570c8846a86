"""Market-wide context (VIX, regime, breadth): one as-of snapshot per timestamp, for all assets.

Pure. Each context series keeps its own timestamps; a lookup at time ``t`` takes the last value
at or before ``t`` (forward fill, never a later value), so an hourly VIX lines up with daily bars.
Before a series starts the snapshot holds ``None``; missing (null/NaN) observations are skipped,
so the last valid value carries forward, as pandas' ``Series.asof`` does.

The one as-of context of both loops: a replay builds it from history; a stream run starts from
the names it expects (``Context.declared``) and the values a restart kept, and ``observe``s
each context message as it arrives. The same ``at_ns`` answers both.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable, Iterator, Mapping
from datetime import date, datetime
from typing import Any

import numpy as np
import numpy.typing as npt
import polars as pl

from tradeloop.clock import utc_ns
from tradeloop.data.feed import to_polars
from tradeloop.data.validation import utc_ns_expr
from tradeloop.errors import DataError, UnknownContextError

__all__ = ["Context", "ContextSnapshot", "context_names"]


class ContextSnapshot(Mapping[str, Any]):
    """The context at one timestamp: a read-only mapping of name to value (or ``None``).

    ``snapshot["VIX"]`` is ``None`` before the series starts and raises
    ``UnknownContextError`` for a name no series provides; ``snapshot.get("VIX", 0.0)``
    returns the default in both cases.
    """

    __slots__ = ("_values",)

    def __init__(self, values: Mapping[str, Any]) -> None:
        self._values = dict(values)

    def __getitem__(self, name: str) -> Any:
        try:
            return self._values[name]
        except KeyError:
            known = ", ".join(sorted(self._values)) or "none"
            raise UnknownContextError(
                f"unknown context {name!r}; context series: {known}. Fix: add it to "
                "Context({...}) or use context.get(name, default)."
            ) from None

    def get(self, name: str, default: Any = None) -> Any:
        value = self._values.get(name)
        return default if value is None else value

    def __contains__(self, name: object) -> bool:
        return name in self._values

    def __iter__(self) -> Iterator[str]:
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)

    def __repr__(self) -> str:
        return f"ContextSnapshot({self._values!r})"


EMPTY_SNAPSHOT = ContextSnapshot({})


class _Series:
    """One series' observations, in time order (missing values never stored)."""

    __slots__ = ("ts_ns", "values")

    def __init__(self, ts_ns: list[int], values: list[Any]) -> None:
        self.ts_ns = ts_ns
        self.values = values

    def asof(self, ts_ns: int) -> Any:
        index = bisect.bisect_right(self.ts_ns, ts_ns) - 1
        return self.values[index] if index >= 0 else None

    def add(self, ts_ns: int, value: Any) -> None:
        """Keep an observation: in order; a repeated time replaces the earlier value."""
        times = self.ts_ns
        if not times or ts_ns > times[-1]:
            times.append(ts_ns)
            self.values.append(value)
            return
        index = bisect.bisect_left(times, ts_ns)
        if index < len(times) and times[index] == ts_ns:
            self.values[index] = value
        else:
            times.insert(index, ts_ns)
            self.values.insert(index, value)

    def forget_before(self, ts_ns: int) -> None:
        """Drop what no lookup at ``ts_ns`` or later can return (all but the value in force)."""
        index = bisect.bisect_right(self.ts_ns, ts_ns) - 1
        if index > 0:
            del self.ts_ns[:index]
            del self.values[:index]


class Context:
    """Market-wide series looked up as of each timestamp.

    Accepts ``{name: series}`` where a series is a pandas Series with a time index or a polars
    frame of ``timestamp`` and one value column; a frame with a ``timestamp`` column and one
    column per name; or the seed's ``{timestamp: {name: value}}`` dict. Values may be numbers
    or labels (``"bull"``).
    """

    def __init__(self, sources: Any = None, *, timestamp_col: str = "timestamp") -> None:
        self._series: dict[str, _Series] = {}
        self._last_ts_ns: int | None = None
        self._last: ContextSnapshot = EMPTY_SNAPSHOT
        if sources is None:
            return
        if isinstance(sources, Context):
            self._series = {
                n: _Series(list(s.ts_ns), list(s.values)) for n, s in sources._series.items()
            }
        elif isinstance(sources, Mapping):
            self._add_mapping(sources, timestamp_col)
        else:
            self._add_frame(to_polars(sources, timestamp_col), "context frame", timestamp_col)

    @classmethod
    def declared(
        cls, names: Iterable[str] = (), in_force: Mapping[str, tuple[int, Any]] | None = None
    ) -> Context:
        """A context for a stream: ``names`` are ``None`` until their first value arrives;
        ``in_force`` holds (time, value) pairs a restart kept (``in_force()`` of the last run)."""
        context = cls()
        for name in names:
            context._series[str(name)] = _Series([], [])
        for name, (ts_ns, value) in (in_force or {}).items():
            context.observe(name, int(ts_ns), value)
        return context

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(self._series)

    def observe(self, name: str, ts_ns: int, value: Any) -> None:
        """A new observation of series ``name`` (a stream's context message). A missing value
        (None, NaN) is not an observation: the last valid value stays in force."""
        if value is None or value != value:
            self._series.setdefault(name, _Series([], []))
            return
        series = self._series.get(name)
        if series is None:
            series = self._series[name] = _Series([], [])
        series.add(ts_ns, value)
        if self._last_ts_ns is not None and ts_ns <= self._last_ts_ns:
            self._last_ts_ns = None  # the cached snapshot may be out of date

    def in_force(self, ts_ns: int) -> dict[str, tuple[int, Any]]:
        """Each series' value in force at ``ts_ns``, with its time: what a restart needs."""
        kept: dict[str, tuple[int, Any]] = {}
        for name, series in self._series.items():
            index = bisect.bisect_right(series.ts_ns, ts_ns) - 1
            if index >= 0:
                kept[name] = (series.ts_ns[index], series.values[index])
        return kept

    def forget_before(self, ts_ns: int) -> None:
        """A stream only looks forward: drop observations older than the value in force."""
        for series in self._series.values():
            series.forget_before(ts_ns)

    def __bool__(self) -> bool:
        return bool(self._series)

    def at(self, timestamp: datetime) -> ContextSnapshot:
        """The snapshot as of ``timestamp`` (naive means UTC)."""
        return self.at_ns(utc_ns(timestamp))

    def at_ns(self, ts_ns: int) -> ContextSnapshot:
        """The snapshot as of ``ts_ns`` (UTC ns); the last one is cached for repeated calls."""
        if ts_ns != self._last_ts_ns:
            self._last = ContextSnapshot({n: s.asof(ts_ns) for n, s in self._series.items()})
            self._last_ts_ns = ts_ns
        return self._last

    def aligned(self, name: str, ts_ns: npt.NDArray[np.int64]) -> npt.NDArray[np.float64]:
        """Series ``name`` as of each of ``ts_ns`` (sorted), as floats: NaN before it starts.

        Raises KeyError for an unknown name and TypeError for a series of labels.
        """
        series = self._series[name]
        values = np.asarray(series.values)
        if values.size and values.dtype.kind not in "fiub":
            raise TypeError(f"context {name!r} holds labels, not numbers")
        index = np.searchsorted(np.asarray(series.ts_ns, np.int64), ts_ns, side="right") - 1
        if not values.size:
            return np.full(len(ts_ns), np.nan)
        out = np.where(index >= 0, values.astype(np.float64)[np.maximum(index, 0)], np.nan)
        return out.astype(np.float64)

    def series_points(self, name: str) -> tuple[list[int], list[Any]]:
        """The raw observations of series ``name``: (UTC ns times, values)."""
        series = self._series[name]
        return list(series.ts_ns), list(series.values)

    def merged(self, other: Context) -> Context:
        """A context holding both sets of series; a name in both is an error."""
        both = set(self._series) & set(other._series)
        if both:
            raise DataError(f"context series {sorted(both)} are given twice; keep one source")
        out = Context(self)
        out._series.update(Context(other)._series)
        return out

    def _add_mapping(self, sources: Mapping[Any, Any], timestamp_col: str) -> None:
        if sources and all(_is_timestamp(key) for key in sources):
            rows = [{timestamp_col: ts, **values} for ts, values in sources.items()]
            frame = pl.DataFrame(rows, infer_schema_length=None).sort(timestamp_col)
            self._add_frame(frame, "context dict", timestamp_col)
            return
        for name, series in sources.items():
            self._add_named(str(name), series, timestamp_col)

    def _add_named(self, name: str, series: Any, timestamp_col: str) -> None:
        where = f"context {name!r}"
        if type(series).__module__.startswith("pandas") and hasattr(series, "to_frame"):
            if not str(series.index.dtype).startswith("datetime"):
                raise DataError(
                    f"{where}: the pandas Series has no timestamp index "
                    f"(index type {series.index.dtype}). Fix: index it by time, "
                    "series.set_axis(pd.DatetimeIndex(times))."
                )
            frame = pl.from_pandas(series.rename(name).rename_axis(timestamp_col).reset_index())
        elif isinstance(series, pl.DataFrame | pl.LazyFrame):
            frame = to_polars(series)
            values = [c for c in frame.columns if c != timestamp_col]
            if timestamp_col not in frame.columns or len(values) != 1:
                raise DataError(
                    f"{where}: a context frame needs a {timestamp_col!r} column and exactly one "
                    f"value column; got {frame.columns}."
                )
            frame = frame.rename({values[0]: name})
        else:
            raise DataError(
                f"{where}: a {type(series).__name__} has no timestamps, so it cannot be lined "
                "up with bars. Fix: give a pandas Series indexed by time, or a polars frame "
                f"with {timestamp_col!r} and a value column."
            )
        self._add_frame(frame, where, timestamp_col)

    def _add_frame(self, frame: pl.DataFrame, where: str, timestamp_col: str) -> None:
        if timestamp_col not in frame.columns:
            raise DataError(
                f"{where}: no {timestamp_col!r} column (columns: {frame.columns}). "
                "Fix: name the time column 'timestamp' or pass timestamp_col=."
            )
        ts = frame.select(utc_ns_expr(frame, timestamp_col, where)).to_series().to_numpy()
        if len(ts) > 1:
            steps = np.diff(ts)
            if (steps <= 0).any():
                bad = int(np.flatnonzero(steps <= 0)[0]) + 1
                kind = "repeats" if steps[bad - 1] == 0 else "goes backwards"
                raise DataError(
                    f"{where}: the timestamp at row {bad} {kind}. Fix: sort by time and keep "
                    "one row per time, e.g. frame.unique('timestamp').sort('timestamp')."
                )
        for name in frame.columns:
            if name == timestamp_col:
                continue
            if name in self._series:
                raise DataError(f"{where}: context series {name!r} is given twice")
            column = frame[name]
            keep = column.is_not_null().to_numpy()
            if column.dtype.is_float():
                keep &= ~column.is_nan().fill_null(True).to_numpy()
            values = column.filter(pl.Series(keep)).to_list()
            self._series[name] = _Series(ts[keep].astype(np.int64).tolist(), values)


def _is_timestamp(key: Any) -> bool:
    return isinstance(key, datetime | date) or type(key).__name__ in {"Timestamp", "datetime64"}


def context_names(context: Any) -> tuple[str, ...]:
    """The series names ``context`` stands for: a list of names as given, else the names of
    the ``Context`` it makes (what a stream run declares it expects)."""
    if context is None:
        return ()
    if isinstance(context, list | tuple) and all(isinstance(n, str) for n in context):
        return tuple(context)
    return (context if isinstance(context, Context) else Context(context)).names
