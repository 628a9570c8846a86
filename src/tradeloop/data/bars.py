"""Columnar bar storage for a replay: numpy arrays sorted by (timestamp, asset).

Pure. One ``BarTable`` holds every bar of a run; the replay walks it one timestamp at a time
through ``ts_bounds`` without ever materialising a row object it does not need.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

import numpy as np
import numpy.typing as npt
import polars as pl

from tradeloop.data.validation import OHLCV
from tradeloop.errors import DataError

__all__ = ["BarTable", "datetimes_from_ns"]

F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]


@dataclass(frozen=True, slots=True)
class BarTable:
    """Every bar of a run. Row ``i`` is asset ``asset_ids[asset_code[i]]`` at ``ts_ns[i]``.

    Rows are sorted by time, then asset code; asset codes follow the sorted asset names.
    ``ts_bounds[k]:ts_bounds[k + 1]`` are the rows of the k-th distinct timestamp
    ``unique_ts_ns[k]``. ``bar_index[i]`` counts that asset's bars from 0.
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

    @property
    def n_rows(self) -> int:
        return len(self.ts_ns)

    @property
    def n_timestamps(self) -> int:
        return len(self.unique_ts_ns)

    @classmethod
    def from_frames(cls, frames: Sequence[pl.DataFrame]) -> BarTable:
        """Merge normalised frames (see ``validation.normalize_bars``) into one table."""
        frame = pl.concat(list(frames), how="diagonal_relaxed") if len(frames) > 1 else frames[0]
        return cls.from_frame(frame)

    @classmethod
    def from_frame(cls, frame: pl.DataFrame) -> BarTable:
        if frame.height == 0:
            raise DataError("no bars to replay: the data is empty (check start/end filters)")
        if frame.height != frame.select(pl.struct("asset_id", "ts_ns").n_unique()).item():
            dup = frame.group_by("asset_id", "ts_ns").len().filter(pl.col("len") > 1).row(0)
            when = datetimes_from_ns(np.array([dup[1]], dtype=np.int64))[0]
            raise DataError(
                f"asset {dup[0]!r} has two bars at {when.isoformat()}, from two feeds or "
                "frames. Fix: give each asset exactly one feed."
            )
        asset_ids = tuple(sorted(frame["asset_id"].unique().to_list()))
        codes = pl.Series("asset_id", asset_ids, dtype=pl.String)
        frame = (
            frame.with_columns(
                pl.col("asset_id")
                .replace_strict(codes, pl.int_range(len(asset_ids), eager=True))
                .cast(pl.Int64)
                .alias("asset_code")
            )
            .sort("ts_ns", "asset_code")
            .with_columns(
                pl.int_range(pl.len()).over("asset_code").cast(pl.Int64).alias("bar_index")
            )
        )
        ts = frame["ts_ns"].to_numpy()
        starts = np.flatnonzero(np.diff(ts, prepend=ts[0] - 1))
        signal_names = [
            c
            for c in frame.columns
            if c not in {"ts_ns", "asset_id", "asset_code", "bar_index", "source_row", *OHLCV}
        ]
        return cls(
            ts_ns=ts.astype(np.int64, copy=False),
            asset_code=frame["asset_code"].to_numpy(),
            asset_ids=asset_ids,
            open=frame["open"].to_numpy(),
            high=frame["high"].to_numpy(),
            low=frame["low"].to_numpy(),
            close=frame["close"].to_numpy(),
            volume=frame["volume"].to_numpy(),
            bar_index=frame["bar_index"].to_numpy(),
            signals={
                name: frame[name].fill_null(float("nan")).cast(pl.Float64).to_numpy()
                for name in signal_names
            },
            unique_ts_ns=ts[starts].astype(np.int64, copy=False),
            ts_bounds=np.append(starts, len(ts)).astype(np.int64),
        )


def datetimes_from_ns(ts_ns: I64) -> list[datetime]:
    """UTC-aware datetimes (microsecond precision, as Python's datetime allows)."""
    values: list[datetime] = (
        pl.Series(ts_ns, dtype=pl.Int64).cast(pl.Datetime("ns", "UTC")).to_list()
    )
    return values
