"""The benchmark strategies, written the way a user would write them against tradeloop."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from rules import BUY_ABOVE, BUY_PERCENT, SELL_BELOW, expected_trades
from tradeloop import MarketEvent, Strategy, TimestampBatch

__all__ = [
    "BUY_ABOVE",
    "BUY_PERCENT",
    "SELL_BELOW",
    "Threshold",
    "TopNBatch",
    "TopNBatchEvents",
    "TopNEvent",
    "expected_trades",
]


class Threshold(Strategy):
    """(a) Buy 95 % of equity when ml_pred > 0.8 and flat; close when ml_pred < 0.4 and long."""

    def on_market_event(self, event: MarketEvent, context: Mapping[str, Any]) -> None:
        pred = event.signals["ml_pred"]
        asset = event.asset_id
        held = self.get_position(asset)
        if held == 0:
            if pred > BUY_ABOVE:
                self.buy_percent(asset, BUY_PERCENT)
        elif held > 0 and pred < SELL_BELOW:
            self.close_position(asset)


class TopNBatch(Strategy):
    """(b) Every ``every`` timestamps, hold the ``n`` highest-scoring assets at 1/n each."""

    def __init__(self, n: int = 25, every: int = 5) -> None:
        super().__init__()
        self.n = n
        self.every = every
        self.step = 0

    def on_timestamp_batch(self, batch: TimestampBatch, context: Mapping[str, Any]) -> None:
        step = self.step
        self.step = step + 1
        if step % self.every:
            return
        top = np.argsort(batch.signals["score"], kind="stable")[-self.n :]
        ids = batch.asset_ids
        weight = 1.0 / self.n
        self.rebalance_to_weights({ids[i]: weight for i in top.tolist()})


class TopNEvent(Strategy):
    """(c) The same rotation from per-bar callbacks.

    Each bar's score is collected; when the universe's last asset of the timestamp arrives
    (bars arrive in asset order and the panel is complete, so that is the ``n_assets``-th
    bar), the timestamp is ranked and, every ``every`` timestamps, rebalanced: the same
    orders as ``TopNBatch``, at the same point of the timestamp.
    """

    def __init__(self, n_assets: int, n: int = 25, every: int = 5) -> None:
        super().__init__()
        self.n_assets = n_assets
        self.n = n
        self.every = every
        self.step = 0
        self.ids: list[str] = []
        self.scores: list[float] = []

    def on_market_event(self, event: MarketEvent, context: Mapping[str, Any]) -> None:
        self.ids.append(event.asset_id)
        self.scores.append(event.signals["score"])
        if len(self.ids) < self.n_assets:
            return
        ids, scores = self.ids, self.scores
        self.ids, self.scores = [], []
        step = self.step
        self.step = step + 1
        if step % self.every:
            return
        top = np.argsort(np.asarray(scores), kind="stable")[-self.n :]
        weight = 1.0 / self.n
        self.rebalance_to_weights({ids[i]: weight for i in top.tolist()})


class TopNBatchEvents(Strategy):
    """(b') The rotation of (b), written against per-asset events built from the batch: the
    timestamp's bars are iterated as ``MarketEvent``s and their scores collected (what a
    user porting per-bar code to ``on_timestamp_batch`` writes); the same orders as (b)."""

    def __init__(self, n: int = 25, every: int = 5) -> None:
        super().__init__()
        self.n = n
        self.every = every
        self.step = 0

    def on_timestamp_batch(self, batch: TimestampBatch, context: Mapping[str, Any]) -> None:
        ids: list[str] = []
        scores: list[float] = []
        for event in batch:
            ids.append(event.asset_id)
            scores.append(event.signals["score"])
        step = self.step
        self.step = step + 1
        if step % self.every:
            return
        top = np.argsort(np.asarray(scores), kind="stable")[-self.n :]
        weight = 1.0 / self.n
        self.rebalance_to_weights({ids[i]: weight for i in top.tolist()})
