"""Deterministic synthetic data for the benchmarks, cached as parquet in benchmarks/out/.

Two data sets, both generated with ``numpy.random.default_rng`` and a fixed seed, so every run
(and every machine) replays exactly the same bars:

- ``minute_bars(n)``: one asset ("BTC") of 1-minute OHLCV bars, 24/7 from 2020-01-01, a
  geometric random walk, plus ``ml_pred`` in [0, 1]: a persistent AR(1) signal (phi 0.98, mapped
  through the normal CDF so it is uniform on [0, 1]). A persistent signal gives the
  threshold strategy a realistic trade rate (a few thousand round trips per million bars)
  rather than a coin flip every bar.
- ``daily_panel(n_assets, n_days)``: ``n_assets`` assets ("A000".."A499") of daily bars on
  business days from 2010-01-04, one bar per asset per day (a complete panel), with ``score``:
  a per-asset AR(1) ranking signal (phi 0.9).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path

import numpy as np
import polars as pl

__all__ = ["OUT", "cached", "daily_panel", "minute_bars"]

OUT = Path(__file__).resolve().parent / "out"
SEED = 20_240_601
_NS_PER_MIN = 60 * 1_000_000_000
_NS_PER_DAY = 86_400 * 1_000_000_000


def _ar1(rng: np.random.Generator, shape: tuple[int, ...], phi: float) -> np.ndarray:
    """A unit-variance AR(1) along axis 0 (the recursion is done in float64 numpy steps)."""
    shocks = rng.standard_normal(shape) * math.sqrt(1.0 - phi * phi)
    out = np.empty(shape)
    out[0] = rng.standard_normal(shape[1:])
    for t in range(1, shape[0]):
        out[t] = phi * out[t - 1] + shocks[t]
    return out


def _normal_cdf(x: np.ndarray) -> np.ndarray:
    erf = np.frompyfunc(math.erf, 1, 1)
    return 0.5 * (1.0 + erf(x / math.sqrt(2.0)).astype(np.float64))


def _ohlc(
    rng: np.random.Generator, close: np.ndarray, bar_vol: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Open near the previous close, high/low a little outside the open-close range."""
    prev = np.concatenate((close[:1], close[:-1]))  # along time (axis 0), 1-D or 2-D
    open_ = prev * np.exp(rng.normal(0.0, bar_vol * 0.2, close.shape))
    top = np.maximum(open_, close)
    bottom = np.minimum(open_, close)
    high = top * np.exp(np.abs(rng.normal(0.0, bar_vol * 0.5, close.shape)))
    low = bottom * np.exp(-np.abs(rng.normal(0.0, bar_vol * 0.5, close.shape)))
    return open_, high, low


def minute_bars(n_bars: int, seed: int = SEED) -> pl.DataFrame:
    """One asset, ``n_bars`` one-minute bars with an ``ml_pred`` signal (see module docstring)."""
    rng = np.random.default_rng(seed)
    vol = 0.0008
    close = 30_000.0 * np.exp(np.cumsum(rng.normal(0.0, vol, n_bars)))
    open_, high, low = _ohlc(rng, close, vol)
    volume = rng.gamma(2.0, 5.0, n_bars).round(3) + 0.001
    phi = 0.98
    # AR(1) by blocks: x[t] = phi * x[t-1] + e[t], evaluated with a cumulative trick per block
    # (exact, and vectorised: x[t] = phi^t * (x0 + sum_{s<=t} phi^-s e[s]) within a block).
    shocks = rng.standard_normal(n_bars) * math.sqrt(1.0 - phi * phi)
    z = np.empty(n_bars)
    block = 256
    prev = rng.standard_normal()
    powers = phi ** np.arange(1, block + 1)
    for b0 in range(0, n_bars, block):
        e = shocks[b0 : b0 + block]
        p = powers[: len(e)]
        z[b0 : b0 + block] = p * (prev + np.cumsum(e / p))
        prev = z[b0 + len(e) - 1]
    ml_pred = _normal_cdf(z)
    start = np.datetime64("2020-01-01T00:00:00", "ns").astype(np.int64)
    ts = start + np.arange(n_bars, dtype=np.int64) * _NS_PER_MIN
    return pl.DataFrame(
        {
            "timestamp": pl.Series(ts).cast(pl.Datetime("ns")).cast(pl.Datetime("us")),
            "asset_id": pl.Series(["BTC"] * n_bars, dtype=pl.String),
            "open": open_,
            "high": high,
            "low": low,
            "close": close,
            "volume": volume,
            "ml_pred": ml_pred,
        }
    )


def daily_panel(n_assets: int, n_days: int, seed: int = SEED + 1) -> pl.DataFrame:
    """``n_assets`` × ``n_days`` daily bars with a ``score`` signal, sorted by (time, asset)."""
    rng = np.random.default_rng(seed)
    vol = 0.02
    start_price = rng.uniform(20.0, 200.0, n_assets)
    drift = rng.normal(0.0002, 0.0004, n_assets)
    close = start_price * np.exp(np.cumsum(rng.normal(drift, vol, (n_days, n_assets)), axis=0))
    open_, high, low = _ohlc(rng, close, vol)
    volume = rng.integers(10_000, 5_000_000, (n_days, n_assets)).astype(np.float64)
    score = _ar1(rng, (n_days, n_assets), 0.9)
    days = np.busday_offset("2010-01-04", np.arange(n_days), roll="forward")
    ts = days.astype("datetime64[ns]").astype(np.int64)
    names = [f"A{i:03d}" for i in range(n_assets)]
    return pl.DataFrame(
        {
            "timestamp": pl.Series(np.repeat(ts, n_assets))
            .cast(pl.Datetime("ns"))
            .cast(pl.Datetime("us")),
            "asset_id": pl.Series(names * n_days, dtype=pl.String),
            "open": open_.ravel(),
            "high": high.ravel(),
            "low": low.ravel(),
            "close": close.ravel(),
            "volume": volume.ravel(),
            "score": score.ravel(),
        }
    )


def cached(name: str, build: Callable[[], pl.DataFrame]) -> Path:
    """Path of ``out/<name>.parquet``, building and writing it first if it is missing."""
    path = OUT / f"{name}.parquet"
    if not path.exists():
        OUT.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        build().write_parquet(tmp)
        tmp.replace(path)
    return path


def minute_path(n_bars: int) -> Path:
    return cached(f"minute_{n_bars}_s{SEED}", lambda: minute_bars(n_bars))


def panel_path(n_assets: int, n_days: int) -> Path:
    return cached(f"panel_{n_assets}x{n_days}_s{SEED + 1}", lambda: daily_panel(n_assets, n_days))
