"""BarStore: fetched history on disk, as hive-partitioned parquet that ``HistoricalFeed`` reads.

Layout: ``<root>/asset_id=<ASSET>/<window start>.parquet``, one file per asset and time window
(whole UTC days by default), columns ``timestamp`` (UTC) and ``open high low close volume``;
the asset comes from the folder name. ``HistoricalFeed(root)`` reads the lot.

Rules:
- a window is validated by the backtest's own rules (``normalize_bars``) before it is written,
  and its bars must lie inside the span that was asked for;
- a file is written whole (a hidden temporary name, then a rename), so a killed fetch leaves
  complete files only, never half a file a reader would pick up;
- each file's parquet metadata records the span it covers (``[from_ns, to_ns)``), the venue and
  the interval, so a re-run plans only what no file covers yet: the gaps;
- only closed bars are asked for: a bar opening at ``t`` is closed once ``t + interval <= now``.

No network here: the fetch loop (``tradeloop.stream.fetch``) downloads, this module plans and
stores. Time is passed in.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import polars as pl

from tradeloop.data.validation import OHLCV, normalize_bars
from tradeloop.errors import ConfigError, DataError

__all__ = ["BarStore", "FetchWindow", "bars_frame", "parse_interval"]

_NS = {"s": 1_000_000_000, "m": 60_000_000_000, "h": 3_600_000_000_000, "d": 86_400_000_000_000}
_DAY_NS = _NS["d"]
_INTERVAL = re.compile(r"^(\d+)([smhd])$")
_META_KEY = "tradeloop.fetch"
_BARS_PER_WINDOW = 1_000  # a default window is whole days holding about this many bars (or 1 day)


def parse_interval(text: str) -> int:
    """``"1m"`` → nanoseconds (``s``, ``m``, ``h``, ``d``: ``30s``, ``5m``, ``1h``, ``1d``)."""
    found = _INTERVAL.match(text.strip())
    if found is None or int(found[1]) == 0:
        raise ConfigError(
            f"interval {text!r} is not a bar length. Fix: give a number and a unit, "
            "e.g. 1m, 5m, 1h or 1d"
        )
    return int(found[1]) * _NS[found[2]]


@dataclass(frozen=True, slots=True)
class FetchWindow:
    """The bars of one asset to fetch: opening in ``[start_ns, end_ns)``, stored in ``path``.

    ``file_start_ns`` is the start of the file's whole window (the name of the file).
    """

    asset_id: str
    start_ns: int
    end_ns: int
    file_start_ns: int
    path: Path


class BarStore:
    """A folder of bars from one venue at one interval (see the module docstring)."""

    def __init__(
        self, root: str | Path, *, venue: str, interval: str, window_days: int | None = None
    ) -> None:
        self.root = Path(root)
        self.venue = venue
        self.interval = interval
        self.interval_ns = parse_interval(interval)
        days = (
            max(1, self.interval_ns * _BARS_PER_WINDOW // _DAY_NS)
            if window_days is None
            else window_days
        )
        if days < 1:
            raise ConfigError(f"window_days={window_days}: give a whole number of days >= 1")
        self.window_ns = days * _DAY_NS

    def plan(
        self, assets: Sequence[str], start_ns: int, end_ns: int, now_ns: int
    ) -> list[FetchWindow]:
        """The windows still to fetch for ``[start_ns, end_ns)``, in time order, asset by asset.

        A window already covered by its file is left out; one covered in part is fetched
        again over the union of what it has and what is asked (the file is rewritten).
        """
        if end_ns <= start_ns:
            raise ConfigError(
                f"the end ({_iso(end_ns)}) is not after the start ({_iso(start_ns)}). "
                "Fix: give --end later than --start"
            )
        existing = next(self.root.glob("asset_id=*/*.parquet"), None)
        if existing is not None:
            self.covered(existing)  # one venue and one interval per folder
        # the first bar still forming opens here: every bar before it has closed by now_ns
        closed_end = ((now_ns - self.interval_ns) // self.interval_ns + 1) * self.interval_ns
        stop = min(end_ns, closed_end)
        windows: list[FetchWindow] = []
        first = start_ns - start_ns % self.window_ns
        for asset in assets:
            for file_start in range(first, stop, self.window_ns):
                low = max(file_start, start_ns)
                high = min(file_start + self.window_ns, stop)
                if high <= low:
                    continue
                path = self.path(asset, file_start)
                covered = self.covered(path)
                if covered is not None:
                    if covered[0] <= low and high <= covered[1]:
                        continue
                    low, high = min(low, covered[0]), max(high, covered[1])
                windows.append(FetchWindow(asset, low, high, file_start, path))
        return windows

    def path(self, asset: str, file_start_ns: int) -> Path:
        stamp = datetime.fromtimestamp(file_start_ns / 1e9, UTC).strftime("%Y-%m-%dT%H-%M")
        return self.root / f"asset_id={asset}" / f"{stamp}.parquet"

    def covered(self, path: Path) -> tuple[int, int] | None:
        """The span a file covers, or None if there is no file; refuses another venue/interval."""
        if not path.exists():
            return None
        try:
            meta = json.loads(pl.read_parquet_metadata(path)[_META_KEY])
        except (KeyError, ValueError, OSError, pl.exceptions.PolarsError) as err:
            raise DataError(
                f"{path}: not a file written by tradeloop fetch ({err!r}). "
                "Fix: fetch into an empty folder, or delete this file to fetch it again"
            ) from err
        if (meta["venue"], meta["interval"]) != (self.venue, self.interval):
            raise ConfigError(
                f"{self.root}: holds {meta['interval']} bars from {meta['venue']}, not "
                f"{self.interval} bars from {self.venue}. Fix: fetch into another --out folder"
            )
        return int(meta["from_ns"]), int(meta["to_ns"])

    def write(self, window: FetchWindow, bars: pl.DataFrame) -> int:
        """Validate ``bars`` (``timestamp`` + OHLCV) of ``window`` and store them; returns rows."""
        span = f"{_iso(window.start_ns)}..{_iso(window.end_ns)}"
        source = f"{self.venue} {window.asset_id} bars {span}"
        frame = bars.select("timestamp", *OHLCV).sort("timestamp")
        normal = normalize_bars(frame, source=source, asset_id=window.asset_id, signal_columns=[])
        outside = normal.filter(
            (pl.col("ts_ns") < window.start_ns) | (pl.col("ts_ns") >= window.end_ns)
        )
        if outside.height:
            raise DataError(
                f"{source}: the venue sent {outside.height} bar(s) outside the span asked for "
                f"(first at {_iso(outside['ts_ns'][0])}). Fix: report it; nothing was written"
            )
        table = normal.select(
            pl.col("ts_ns").cast(pl.Datetime("ns", "UTC")).alias("timestamp"), *OHLCV
        )
        meta = {
            "venue": self.venue,
            "interval": self.interval,
            "asset_id": window.asset_id,
            "from_ns": window.start_ns,
            "to_ns": window.end_ns,
        }
        window.path.parent.mkdir(parents=True, exist_ok=True)
        temporary = window.path.with_name(f".{window.path.name}.tmp")
        table.write_parquet(temporary, metadata={_META_KEY: json.dumps(meta)})
        os.replace(temporary, window.path)  # atomic: the reader sees the old file or the new one
        return table.height

    def clean(self) -> int:
        """Remove temporary files a killed fetch left behind; returns how many."""
        leftovers = list(self.root.glob("asset_id=*/.*.parquet.tmp"))
        for path in leftovers:
            path.unlink()
        return len(leftovers)

    def assets(self) -> list[str]:
        return sorted(p.name.removeprefix("asset_id=") for p in self.root.glob("asset_id=*"))


def bars_frame(rows: Iterable[tuple[int, float, float, float, float, float]]) -> pl.DataFrame:
    """``(ts_ns, open, high, low, close, volume)`` rows as the frame ``BarStore.write`` takes."""
    columns: list[Sequence[float]] = list(zip(*rows, strict=True)) or [() for _ in range(6)]
    return pl.DataFrame(
        {
            "timestamp": pl.Series(columns[0], dtype=pl.Int64).cast(pl.Datetime("ns", "UTC")),
            **{
                name: pl.Series(values, dtype=pl.Float64)
                for name, values in zip(OHLCV, columns[1:], strict=True)
            },
        }
    )


def _iso(ts_ns: int) -> str:
    return datetime.fromtimestamp(ts_ns / 1e9, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
