"""Accounting invariants under random data and random (but legal) order flow.

Properties, each checked against values rebuilt here from the bars and the fill list:
- equity == cash + Σ qty × latest close, at every timestamp;
- cash == initial − Σ signed notional − Σ commission, at every timestamp;
- no fill before the bar after the decision (with next-open timing), and a market fill at the
  close timing happens on the decision bar at its close;
- every fill price lies inside its bar's [low, high] (no slippage here);
- cash never goes negative when shorting is off;
- final equity == initial cash + realised P&L − commission + unrealised P&L.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import polars as pl
from hypothesis import given, settings
from hypothesis import strategies as st

from tradeloop import Engine, MarketEvent, PerShareCommission, Strategy

T0 = datetime(2024, 1, 1, 21, tzinfo=UTC)


def random_bars(seed: int, n_assets: int, n_days: int, sparse: bool) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    frames = []
    for a in range(n_assets):
        close = 50 * np.exp(np.cumsum(rng.normal(0, 0.04, n_days)))
        open_ = close * np.exp(rng.normal(0, 0.03, n_days))
        high = np.maximum(open_, close) * (1 + rng.uniform(0, 0.03, n_days))
        low = np.minimum(open_, close) * (1 - rng.uniform(0, 0.03, n_days))
        keep = rng.uniform(size=n_days) > (0.3 if sparse else 0.0)
        keep[0] = True
        frames.append(
            pl.DataFrame(
                {
                    "timestamp": [T0 + timedelta(days=d) for d in range(n_days)],
                    "asset_id": f"S{a}",
                    "open": open_,
                    "high": high,
                    "low": low,
                    "close": close,
                    "volume": 1e6,
                }
            ).filter(pl.Series(keep))
        )
    return pl.concat(frames)


class Chaos(Strategy):
    """Legal but random orders of every type, sizes and cancels, from a seeded RNG."""

    def __init__(self, seed: int) -> None:
        super().__init__()
        self.rng = np.random.default_rng(seed)

    def on_market_event(self, event: MarketEvent, context: Mapping[str, Any]) -> None:
        rng, asset = self.rng, event.asset_id
        roll = rng.uniform()
        held = self.get_position(asset)
        if roll < 0.25:
            self.buy_percent(asset, float(rng.uniform(0.05, 0.6)))
        elif roll < 0.35:
            self.buy(
                asset,
                int(rng.integers(1, 50)),
                limit=event.close * float(rng.uniform(0.95, 1.02)),
                tif=str(rng.choice(["day", "gtc"])),
            )
        elif roll < 0.42:
            self.buy(
                asset, int(rng.integers(1, 50)), stop=event.close * float(rng.uniform(1.0, 1.05))
            )
        elif roll < 0.47:
            stop = event.close * float(rng.uniform(1.0, 1.04))
            self.buy(
                asset,
                int(rng.integers(1, 50)),
                stop=stop,
                limit=stop * float(rng.uniform(0.99, 1.02)),
            )
        elif roll < 0.6 and held > 0:
            self.sell(asset, max(1, int(held * rng.uniform(0.1, 1.0))))
        elif roll < 0.68 and held > 0:
            self.sell(
                asset,
                max(1, int(held * rng.uniform(0.1, 1.0))),
                stop=event.close * float(rng.uniform(0.95, 1.0)),
            )
        elif roll < 0.72:
            self.close_position(asset)
        elif roll < 0.78:
            for order in self.get_open_orders(asset)[:1]:
                self.cancel(order)
        elif roll < 0.82:
            self.rebalance_to_weights({asset: float(rng.uniform(0, 0.5))})


def latest_close(frame: pl.DataFrame) -> pl.DataFrame:
    """Per timestamp of the run, each asset's latest close so far (wide, forward filled)."""
    wide = frame.pivot(on="asset_id", index="timestamp", values="close").sort("timestamp")
    return wide.with_columns(pl.exclude("timestamp").forward_fill())


@settings(max_examples=40, deadline=None)
@given(
    seed=st.integers(0, 10_000),
    n_assets=st.integers(1, 3),
    n_days=st.integers(2, 40),
    sparse=st.booleans(),
    commission=st.sampled_from([0.0, 0.002, "per_share"]),
    timing=st.sampled_from(["next_open", "close"]),
)
def test_accounting_invariants_hold_for_random_order_flow(
    seed: int, n_assets: int, n_days: int, sparse: bool, commission: Any, timing: str
) -> None:
    frame = random_bars(seed, n_assets, n_days, sparse)
    cost = PerShareCommission(0.01, minimum=1.0) if commission == "per_share" else commission
    result = Engine(
        feed=frame, strategy=Chaos(seed), initial_cash=50_000, commission=cost, fill_timing=timing
    ).run()
    curve = result.equity_curve
    fills = result.fills
    closes = latest_close(frame.with_columns(pl.col("timestamp").dt.cast_time_unit("us")))
    assert closes["timestamp"].to_list() == curve["timestamp"].to_list()

    signed = fills.with_columns(
        (pl.when(pl.col("side") == "buy").then(pl.col("qty")).otherwise(-pl.col("qty"))).alias("q")
    )
    cash = 50_000.0
    held: dict[str, float] = {}
    by_time = {t: rows for (t,), rows in signed.group_by("timestamp")}
    for k, ts in enumerate(curve["timestamp"]):
        for row in by_time.get(ts, pl.DataFrame()).iter_rows(named=True):
            cash -= row["q"] * row["price"] + row["commission"]
            held[row["asset_id"]] = held.get(row["asset_id"], 0.0) + row["q"]
        marks = closes.row(k, named=True)
        equity = cash + sum(q * marks[a] for a, q in held.items() if q)
        assert abs(curve["cash"][k] - cash) < 1e-6
        assert abs(curve["equity"][k] - equity) < 1e-6
        assert cash > -1e-6

    # the P&L decomposition closes: equity = initial + realised − commission + unrealised
    assert (
        abs(
            result["final_value"]
            - (50_000 + result["realized_pnl"] - result["commission"] + result["unrealized_pnl"])
        )
        < 1e-6
    )

    orders = result.orders.select("order_id", "submitted_at", "order_type")
    joined = fills.join(orders, on="order_id").join(
        frame.with_columns(pl.col("timestamp").dt.cast_time_unit("us")).select(
            "timestamp", "asset_id", "low", "high", "close"
        ),
        on=["timestamp", "asset_id"],
    )
    assert joined.height == fills.height
    for row in joined.iter_rows(named=True):
        assert row["low"] - 1e-9 <= row["price"] <= row["high"] + 1e-9
        if timing == "next_open" or row["order_type"] != "market":
            assert row["timestamp"] > row["submitted_at"]
        elif row["timestamp"] == row["submitted_at"]:
            assert row["price"] == row["close"]
