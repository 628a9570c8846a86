"""Synthetic bars with ML-style signals and a VIX-like context, for demos, tests and benchmarks.

Deterministic for a seed. The VIX series mean-reverts around 18 with occasional spikes; prices
follow a geometric random walk whose volatility rises with it. ``ml_pred`` is a
probability-like score with real but imperfect skill at the *next* bar's direction (as a
decent model's out-of-sample prediction would have), and ``confidence`` how sure it is.
Nothing here is market data.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import numpy as np
import polars as pl

__all__ = ["synthetic_market"]


def synthetic_market(
    n_assets: int = 5,
    n_bars: int = 504,
    *,
    seed: int = 7,
    start: datetime = datetime(2022, 1, 3, 21, 0),  # noqa: DTZ001 - naive means UTC here
    interval: timedelta = timedelta(days=1),
    skill: float = 0.15,
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Return ``(bars, vix)``: long-format bars with ``ml_pred``/``confidence`` and a VIX frame."""
    rng = np.random.default_rng(seed)
    times = [start + i * interval for i in range(n_bars)]
    vix = np.empty(n_bars)
    vix[0] = 18.0
    shocks = rng.normal(0.0, 1.0, n_bars)
    spikes = (rng.uniform(size=n_bars) < 0.015) * rng.uniform(8.0, 18.0, n_bars)
    for i in range(1, n_bars):
        vix[i] = max(9.0, vix[i - 1] + 0.08 * (18.0 - vix[i - 1]) + 1.6 * shocks[i] + spikes[i])
    vol = 0.012 * vix / 18.0
    frames = []
    for a in range(n_assets):
        returns = rng.normal(0.0003, 1.0, n_bars) * vol
        close = 100.0 * (1.0 + a * 0.25) * np.exp(np.cumsum(returns))
        gap = rng.normal(0.0, 0.25, n_bars) * vol
        open_ = np.concatenate(([close[0]], close[:-1])) * np.exp(gap)
        wick = np.abs(rng.normal(0.0, 0.5, (2, n_bars))) * vol
        high = np.maximum(open_, close) * (1.0 + wick[0])
        low = np.minimum(open_, close) * (1.0 - wick[1])
        next_move = np.concatenate((returns[1:], [0.0])) / vol
        score = skill * next_move + rng.normal(0.0, 1.0, n_bars)
        ml_pred = 1.0 / (1.0 + np.exp(-1.2 * score))
        confidence = np.clip(0.5 + 0.5 * np.abs(np.tanh(score)), 0.0, 1.0)
        frames.append(
            pl.DataFrame(
                {
                    "timestamp": times,
                    "asset_id": f"A{a:03d}" if n_assets > 26 else chr(ord("A") + a) * 3,
                    "open": open_,
                    "high": high,
                    "low": low,
                    "close": close,
                    "volume": rng.integers(200_000, 2_000_000, n_bars).astype(np.float64),
                    "ml_pred": ml_pred,
                    "confidence": confidence,
                }
            )
        )
    bars = pl.concat(frames).sort("timestamp", "asset_id")
    return bars, pl.DataFrame({"timestamp": times, "VIX": vix})
