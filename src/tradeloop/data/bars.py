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

__all__ = ["BarTable", "TimestampColumns"]

F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]
# one handled timestamp of a stream: (ts_ns, asset ids, {"open": ..., "signal:x": ...})
TimestampColumns = tuple[int, list[str], Mapping[str, F64]]


@dataclass(frozen=True, slots=True)
class BarTable:
    """Every bar of a run. Row ``i`` is asset ``asset_ids[asset_code[i]]`` at ``ts_ns[i]``.

    Rows are sorted by time, then asset code; asset codes follow the sorted asset names.
    ``ts_bounds[k]:ts_bounds[k + 1]`` are the rows of the k-th distinct timestamp
    ``unique_ts_ns[k]``. ``bar_index[i]`` counts that asset's bars from 0. ``asset_rows``
    lists the rows asset by asset, each asset's in time order (what per-asset results read),
    and ``asset_keys`` their sorted keys ``code × n_timestamps + k`` (row of asset ``code`` at
    the k-th timestamp), so "the asset's last bar at or before k" is one ``searchsorted``. A
    ``complete`` table (every asset at every timestamp) stores neither: its row of asset
    ``code`` at the k-th timestamp is ``k × n_assets + code``, so both are arithmetic.
    """

    ts_ns: I64
    asset_code: I64
    asset_ids: tuple[str, ...]
    open: F64
    high: F64
    low: F64
    close: F64
    volume: F64
    bar_index: I64
    signals: dict[str, F64]
    unique_ts_ns: I64
    ts_bounds: I64
    ragged_rows: I64 | None  # ``asset_rows`` of a table that is not complete
    ragged_keys: I64 | None  # its ``asset_keys``

    @property
    def n_rows(self) -> int:
        return len(self.ts_ns)

    @property
    def n_timestamps(self) -> int:
        return len(self.unique_ts_ns)

    @property
    def complete(self) -> bool:
        """Whether every asset has a bar at every timestamp."""
        return self.n_rows == self.n_timestamps * len(self.asset_ids)

    @property
    def asset_rows(self) -> I64:
        if self.ragged_rows is not None:
            return self.ragged_rows
        n_assets = len(self.asset_ids)
        by_time = np.arange(self.n_timestamps, dtype=np.int64) * n_assets
        return (np.arange(n_assets, dtype=np.int64)[:, None] + by_time[None, :]).ravel()

    @property
    def asset_keys(self) -> I64:
        if self.ragged_keys is not None:
            return self.ragged_keys
        return np.arange(self.n_rows, dtype=np.int64)

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
        raw_ts = frame["ts_ns"].to_numpy()
        panel = _complete_panel(frame, raw_ts)
        if panel is not None:
            asset_ids, raw_codes = panel
            in_order = True
        else:
            asset_ids = tuple(sorted(frame["asset_id"].unique().to_list()))
            as_code = pl.col("asset_id").cast(pl.Enum(asset_ids)).to_physical()
            raw_codes = frame.select(as_code).to_series().to_numpy().astype(np.int64)
            step = np.diff(raw_ts)
            in_order = bool((step >= 0).all()) and bool(
                ((step > 0) | (np.diff(raw_codes) > 0)).all()
            )
            del step
        if consume:
            frame.drop_in_place("asset_id")
            frame.drop_in_place("ts_ns")
        # already in replay order (time, asset): keep zero-copy views of the input
        order: npt.NDArray[np.intp] | None = None if in_order else np.lexsort((raw_codes, raw_ts))
        ts = (raw_ts if order is None else raw_ts[order]).astype(np.int64, copy=False)
        codes = raw_codes if order is None else raw_codes[order]
        del raw_codes, raw_ts

        def column(name: str) -> F64:
            values = frame.drop_in_place(name) if consume else frame[name]
            if values.null_count():
                values = values.fill_null(float("nan"))
            array = values.cast(pl.Float64).to_numpy()
            return array if order is None else array[order]

        same = (
            np.zeros(0, dtype=np.bool_) if in_order else (np.diff(ts) == 0) & (np.diff(codes) == 0)
        )
        if same.any():
            i = int(np.flatnonzero(same)[0])
            when = datetimes_from_ns(ts[i : i + 1])[0]
            raise DataError(
                f"asset {asset_ids[codes[i]]!r} has two bars at {when.isoformat()}, from two "
                "feeds or frames. Fix: give each asset exactly one feed."
            )
        starts = np.flatnonzero(np.diff(ts, prepend=ts[0] - 1))
        n_ts, n_assets = len(starts), len(asset_ids)
        ragged_rows = ragged_keys = None
        if len(ts) == n_ts * n_assets:  # complete: row k × n_assets + code (see the docstring)
            bar_index = np.repeat(np.arange(n_ts, dtype=np.int64), n_assets)
        else:
            ragged_rows, bar_index = _per_asset_count(codes, n_assets)
            row_k = np.repeat(np.arange(n_ts, dtype=np.int64), np.diff(starts, append=len(ts)))
            ragged_keys = codes[ragged_rows] * n_ts + row_k[ragged_rows]
            del row_k
        reserved = {"ts_ns", "asset_id", "asset_code", "source_row", *OHLCV}
        return cls(
            ts_ns=ts,
            asset_code=codes,
            asset_ids=asset_ids,
            open=column("open"),
            high=column("high"),
            low=column("low"),
            close=column("close"),
            volume=column("volume"),
            bar_index=bar_index,
            signals={name: column(name) for name in frame.columns if name not in reserved},
            unique_ts_ns=ts[starts],
            ts_bounds=np.append(starts, len(ts)).astype(np.int64),
            ragged_rows=ragged_rows,
            ragged_keys=ragged_keys,
        )


def _complete_panel(frame: pl.DataFrame, ts: I64) -> tuple[tuple[str, ...], I64] | None:
    """(asset ids, asset codes) of a frame that is a complete panel in replay order: the
    first timestamp's assets, strictly sorted, then the same assets at every later timestamp,
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
    codes = np.tile(np.arange(n_assets, dtype=np.int64), len(ts) // n_assets)
    return tuple(first), codes


def _per_asset_count(codes: I64, n_assets: int) -> tuple[I64, I64]:
    """For rows in time order: the rows asset by asset (stable), and how many earlier rows
    share each row's asset code."""
    order = np.argsort(codes, kind="stable").astype(np.int64)
    counts = np.bincount(codes, minlength=n_assets)
    firsts = np.concatenate(([0], np.cumsum(counts)[:-1]))
    out = np.empty(len(codes), dtype=np.int64)
    out[order] = np.arange(len(codes)) - np.repeat(firsts, counts)
    return order, out
