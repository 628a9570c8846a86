"""Columnar bar storage for a replay: numpy arrays sorted by (timestamp, asset).

Pure. One ``BarTable`` holds every bar of a run; the replay walks it one timestamp at a time
through ``ts_bounds`` without ever materialising a row object it does not need.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from itertools import pairwise
from typing import Any

import numpy as np
import numpy.typing as npt
import polars as pl

from tradeloop.clock import datetimes_from_ns
from tradeloop.data.validation import OHLCV
from tradeloop.errors import DataError

__all__ = ["BarTable", "RaggedRows", "Rows", "TimestampColumns"]

F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]
# one handled timestamp of a stream: (ts_ns, asset ids, {"open": ..., "signal:x": ...})
TimestampColumns = tuple[int, list[str], Mapping[str, F64]]


Rows = slice | npt.NDArray[np.intp] | I64  # rows of a table: a range, or row numbers


@dataclass(frozen=True, slots=True)
class RaggedRows:
    """What a table that is not complete stores per row (a complete one computes it)."""

    ts_ns: I64
    asset_code: I64
    bar_index: I64
    asset_rows: I64
    asset_keys: I64


@dataclass(frozen=True, slots=True)
class BarTable:
    """Every bar of a run. Row ``i`` is asset ``asset_ids[asset_code[i]]`` at ``ts_ns[i]``.

    Rows are sorted by time, then asset code; asset codes follow the sorted asset names.
    ``ts_bounds[k]:ts_bounds[k + 1]`` are the rows of the k-th distinct timestamp
    ``unique_ts_ns[k]``. ``bar_index[i]`` counts that asset's bars from 0. ``asset_rows``
    lists the rows asset by asset, each asset's in time order (what per-asset results read),
    and ``asset_keys`` their sorted keys ``code × n_timestamps + k`` (row of asset ``code`` at
    the k-th timestamp), so "the asset's last bar at or before k" is one ``searchsorted``.

    A ``complete`` table (every asset at every timestamp) stores none of these per row: its
    row of asset ``code`` at the k-th timestamp is ``k × n_assets + code``, so each is
    arithmetic on the row number (for 500 assets × 2,520 days, 29 MB not held). Read rows
    with ``ts_ns_of`` / ``asset_code_of`` / ``bar_index_of``; the whole-column properties
    (``ts_ns`` …) build the column on each call for a complete table.
    """

    asset_ids: tuple[str, ...]
    open: F64
    high: F64
    low: F64
    close: F64
    volume: F64
    signals: dict[str, F64]
    unique_ts_ns: I64
    ts_bounds: I64
    ragged: RaggedRows | None  # the per-row columns of a table that is not complete

    @property
    def n_rows(self) -> int:
        return len(self.close)

    @property
    def n_timestamps(self) -> int:
        return len(self.unique_ts_ns)

    @property
    def complete(self) -> bool:
        """Whether every asset has a bar at every timestamp."""
        return self.ragged is None

    def ts_ns_of(self, rows: Rows) -> I64:
        """The timestamps (ns) of ``rows``."""
        if self.ragged is not None:
            return self.ragged.ts_ns[rows]
        return self.unique_ts_ns[self._numbers(rows) // len(self.asset_ids)]

    def asset_code_of(self, rows: Rows) -> I64:
        """The asset codes of ``rows`` (indices into ``asset_ids``)."""
        if self.ragged is not None:
            return self.ragged.asset_code[rows]
        return self._numbers(rows) % len(self.asset_ids)

    def bar_index_of(self, rows: Rows) -> I64:
        """How many earlier bars each of ``rows``'s assets has."""
        if self.ragged is not None:
            return self.ragged.bar_index[rows]
        return self._numbers(rows) // len(self.asset_ids)

    @property
    def ts_ns(self) -> I64:
        return self.ts_ns_of(slice(None))

    @property
    def asset_code(self) -> I64:
        return self.asset_code_of(slice(None))

    @property
    def bar_index(self) -> I64:
        return self.bar_index_of(slice(None))

    @property
    def asset_rows(self) -> I64:
        if self.ragged is not None:
            return self.ragged.asset_rows
        n_assets = len(self.asset_ids)
        by_time = np.arange(self.n_timestamps, dtype=np.int64) * n_assets
        return (np.arange(n_assets, dtype=np.int64)[:, None] + by_time[None, :]).ravel()

    @property
    def asset_keys(self) -> I64:
        if self.ragged is not None:
            return self.ragged.asset_keys
        return np.arange(self.n_rows, dtype=np.int64)

    def _numbers(self, rows: Rows) -> I64:
        if isinstance(rows, slice):
            return np.arange(*rows.indices(self.n_rows), dtype=np.int64)
        return np.asarray(rows, dtype=np.int64)

    @classmethod
    def from_frames(cls, frames: Sequence[pl.DataFrame], *, consume: bool = False) -> BarTable:
        """Merge normalised frames (see ``validation.normalize_bars``) into one table;
        ``consume``: the frames are the caller's to give up (see ``from_frame``)."""
        frame = pl.concat(list(frames), how="diagonal_relaxed") if len(frames) > 1 else frames[0]
        return cls.from_frame(frame, consume=consume)

    @classmethod
    def from_timestamps(cls, stamps: Iterable[TimestampColumns]) -> BarTable:
        """A table of the timestamps a stream run handled: (ts_ns, asset ids, columns) each,
        columns named ``open`` … ``volume`` and ``signal:<name>`` (NaN where a timestamp had
        no such signal). What a stream run's result (and the daemon's) is built from."""
        stamps = list(stamps)
        if not stamps:
            raise DataError("the stream delivered no bars")
        names = sorted({k for _, _, columns in stamps for k in columns})
        frame: dict[str, Any] = {
            "ts_ns": np.concatenate(
                [np.full(len(ids), ts, dtype=np.int64) for ts, ids, _ in stamps]
            ),
            "asset_id": [a for _, ids, _ in stamps for a in ids],
        }
        for name in names:
            frame[name.removeprefix("signal:")] = np.concatenate(
                [columns.get(name, np.full(len(ids), math.nan)) for _, ids, columns in stamps]
            )
        return cls.from_frame(pl.DataFrame(frame))

    @classmethod
    def from_frame(cls, frame: pl.DataFrame, *, consume: bool = False) -> BarTable:
        """The table of a normalised frame. ``consume=True`` empties ``frame`` column by column
        as each becomes an array, so a large run never holds both copies at once (for a frame
        nobody else reads: an engine's freshly validated bars)."""
        if frame.height == 0:
            raise DataError("no bars to replay: the data is empty (check start/end filters)")
        n_rows = frame.height
        raw_ts = frame["ts_ns"].to_numpy()
        panel = _complete_panel(frame, raw_ts)
        if consume:
            frame.drop_in_place("ts_ns")
        if panel is not None:  # already in replay order: rows, codes and counts are arithmetic
            if consume:
                frame.drop_in_place("asset_id")
            asset_ids = panel
            n_assets = len(asset_ids)
            unique_ts = raw_ts[::n_assets].astype(np.int64)
            starts = np.arange(0, n_rows, n_assets, dtype=np.int64)
            del raw_ts
            order: npt.NDArray[np.intp] | None = None
            ragged = None
        else:
            asset_ids = tuple(sorted(frame["asset_id"].unique().to_list()))
            as_code = pl.col("asset_id").cast(pl.Enum(asset_ids)).to_physical()
            codes = frame.select(as_code).to_series().to_numpy().astype(np.int64)
            if consume:
                frame.drop_in_place("asset_id")
            order, ts, codes = _replay_order(raw_ts, codes)
            del raw_ts
            _refuse_doubles(ts, codes, asset_ids)
            starts = np.flatnonzero(np.diff(ts, prepend=ts[0] - 1))
            unique_ts = ts[starts]
            ragged = _ragged(ts, codes, starts, len(asset_ids))

        def column(name: str) -> F64:
            values = frame.drop_in_place(name) if consume else frame[name]
            if values.null_count():
                values = values.fill_null(float("nan"))
            array = values.cast(pl.Float64).to_numpy()
            return array if order is None else array[order]

        reserved = {"ts_ns", "asset_id", "asset_code", "source_row", *OHLCV}
        return cls(
            asset_ids=asset_ids,
            open=column("open"),
            high=column("high"),
            low=column("low"),
            close=column("close"),
            volume=column("volume"),
            signals={name: column(name) for name in frame.columns if name not in reserved},
            unique_ts_ns=unique_ts,
            ts_bounds=np.append(starts, n_rows).astype(np.int64),
            ragged=ragged,
        )


def _replay_order(ts: I64, codes: I64) -> tuple[npt.NDArray[np.intp] | None, I64, I64]:
    """The sort into replay order (time, then asset; ``None`` when the rows already are in
    it), and the timestamps and codes in that order."""
    step = np.diff(ts)
    in_order = bool((step >= 0).all()) and bool(((step > 0) | (np.diff(codes) > 0)).all())
    del step
    if in_order:
        return None, ts.astype(np.int64, copy=False), codes
    order = np.lexsort((codes, ts))
    return order, ts[order].astype(np.int64, copy=False), codes[order]


def _refuse_doubles(ts: I64, codes: I64, asset_ids: tuple[str, ...]) -> None:
    """A ``DataError`` naming the first asset with two bars at one time (rows in replay order)."""
    same = (np.diff(ts) == 0) & (np.diff(codes) == 0)
    if same.any():
        i = int(np.flatnonzero(same)[0])
        when = datetimes_from_ns(ts[i : i + 1])[0]
        raise DataError(
            f"asset {asset_ids[codes[i]]!r} has two bars at {when.isoformat()}, from two "
            "feeds or frames. Fix: give each asset exactly one feed."
        )


def _ragged(ts: I64, codes: I64, starts: I64, n_assets: int) -> RaggedRows | None:
    """The per-row columns of rows in replay order, or ``None`` when every asset has a bar
    at every timestamp (then each is arithmetic: see ``BarTable``)."""
    n_ts = len(starts)
    if len(ts) == n_ts * n_assets:
        return None
    asset_rows, bar_index = _per_asset_count(codes, n_assets)
    row_k = np.repeat(np.arange(n_ts, dtype=np.int64), np.diff(starts, append=len(ts)))
    keys = codes[asset_rows] * n_ts + row_k[asset_rows]
    return RaggedRows(ts, codes, bar_index, asset_rows, keys)


def _complete_panel(frame: pl.DataFrame, ts: I64) -> tuple[str, ...] | None:
    """The asset ids of a frame that is a complete panel in replay order: the first
    timestamp's assets, strictly sorted, then the same assets at every later timestamp,
    each timestamp after the one before. ``None`` for any other frame (the general path sorts
    and codes it). One comparing pass, instead of a unique and a coding of every row."""
    n_assets = int(np.argmax(ts != ts[0])) or len(ts)  # rows at the first timestamp
    if len(ts) % n_assets:
        return None
    first = frame["asset_id"].head(n_assets).to_list()
    if None in first or any(a >= b for a, b in pairwise(first)):
        return None
    blocks = ts.reshape(-1, n_assets)
    if not (blocks == blocks[:, :1]).all() or not (np.diff(blocks[:, 0]) > 0).all():
        return None
    asset = pl.col("asset_id")
    repeats = (asset == asset.shift(n_assets)).fill_null(True).all()
    if not frame.select(repeats).item():
        return None
    return tuple(first)


def _per_asset_count(codes: I64, n_assets: int) -> tuple[I64, I64]:
    """For rows in time order: the rows asset by asset (stable), and how many earlier rows
    share each row's asset code."""
    order = np.argsort(codes, kind="stable").astype(np.int64)
    counts = np.bincount(codes, minlength=n_assets)
    firsts = np.concatenate(([0], np.cumsum(counts)[:-1]))
    out = np.empty(len(codes), dtype=np.int64)
    out[order] = np.arange(len(codes)) - np.repeat(firsts, counts)
    return order, out
