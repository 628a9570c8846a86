"""An independent reference: a plain-Python loop written here from the documented rules.

It shares no code with the engine: its own dicts for cash and positions, its own fill rule
(market orders at the next open of the asset, sells before buys, bps slippage against the
trader, percent commission, whole shares, a buy cut to what cash affords at the fill), and its
own admission check (cost at the latest close must fit cash minus what open buys reserve plus
what open sells of held shares bring). The engine must agree to the cent.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np
import polars as pl
import pytest

from tradeloop import Engine, HistoricalFeed, MarketEvent, Strategy
from tradeloop.data.synthetic import synthetic_market

RATE = 0.001  # commission, fraction of notional
SLIP = 0.0005  # slippage, fraction of price
ENTRY, EXIT, WEIGHT = 0.62, 0.45, 0.33  # three positions use 99 %: gaps cut some buys


class Threshold(Strategy):
    def on_market_event(self, event: MarketEvent, context: Mapping[str, Any]) -> None:
        pred = event.signals["ml_pred"]
        held = self.get_position(event.asset_id)
        if pred > ENTRY and held == 0 and not self.get_open_orders(event.asset_id):
            self.buy_percent(event.asset_id, WEIGHT)
        elif held > 0 and pred < EXIT:
            self.close_position(event.asset_id)


def reference(frame: pl.DataFrame, cash: float) -> tuple[list[tuple[Any, ...]], float]:
    positions: dict[str, int] = {}
    marks: dict[str, float] = {}
    pending: list[dict[str, Any]] = []  # open orders, in submission order
    fills: list[tuple[Any, ...]] = []
    next_id = 1
    equity = cash
    for (ts,), rows in frame.sort("timestamp", "asset_id").group_by(
        "timestamp", maintain_order=True
    ):
        bar = {r["asset_id"]: r for r in rows.iter_rows(named=True)}
        due = [o for o in pending if o["asset"] in bar]
        for order in sorted(due, key=lambda o: (o["side"] == "buy", o["id"])):
            pending.remove(order)
            sign = 1 if order["side"] == "buy" else -1
            price = bar[order["asset"]]["open"] * (1 + sign * SLIP)
            qty = order["qty"]
            if sign > 0 and qty * price * (1 + RATE) > cash:
                qty = math.floor(cash / (price * (1 + RATE)))
            if sign < 0:
                qty = min(qty, positions.get(order["asset"], 0))
            if qty <= 0:
                continue
            cash -= sign * qty * price + qty * price * RATE
            positions[order["asset"]] = positions.get(order["asset"], 0) + sign * qty
            fills.append((ts, order["asset"], order["side"], float(qty), price))
        for asset, r in bar.items():
            marks[asset] = r["close"]
        for asset, r in bar.items():
            equity = cash + sum(q * marks[a] for a, q in positions.items())
            held = positions.get(asset, 0)
            has_open = any(o["asset"] == asset for o in pending)
            if r["ml_pred"] > ENTRY and held == 0 and not has_open:
                qty = math.floor(WEIGHT * equity / r["close"])
                est = r["close"] * (1 + SLIP)
                need = qty * est * (1 + RATE)
                reserved = sum(o["need"] for o in pending)
                if qty > 0 and need <= cash - reserved:
                    pending.append(
                        {"id": next_id, "asset": asset, "side": "buy", "qty": qty, "need": need}
                    )
                next_id += 1 if qty > 0 else 0
            elif held > 0 and r["ml_pred"] < EXIT:
                pending = [o for o in pending if o["asset"] != asset]  # close cancels open orders
                pending.append(
                    {
                        "id": next_id,
                        "asset": asset,
                        "side": "sell",
                        "qty": held,
                        "need": -held * r["close"],
                    }
                )
                next_id += 1
        equity = cash + sum(q * marks[a] for a, q in positions.items())
    return fills, equity


@pytest.mark.parametrize("seed", [1, 2, 3, 4])
def test_engine_agrees_with_reference_loop_to_the_cent(seed: int) -> None:
    frame, _ = synthetic_market(n_assets=4, n_bars=250, seed=seed)
    expected_fills, expected_equity = reference(frame, 100_000.0)
    result = Engine(
        feed=HistoricalFeed(frame, signal_columns=["ml_pred"]),
        strategy=Threshold(),
        initial_cash=100_000,
        commission=RATE,
        slippage=SLIP,
    ).run()
    got = [
        (r["timestamp"].replace(tzinfo=None), r["asset_id"], r["side"], r["qty"], r["price"])
        for r in result.fills.iter_rows(named=True)
    ]
    assert len(got) == len(expected_fills) > 50
    for mine, theirs in zip(got, expected_fills, strict=True):
        assert mine[:4] == theirs[:4]
        assert mine[4] == pytest.approx(theirs[4], abs=1e-9)
    assert result["final_value"] == pytest.approx(expected_equity, abs=0.005)
    assert np.isfinite(result["sharpe"])
