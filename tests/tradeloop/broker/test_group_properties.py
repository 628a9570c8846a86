"""Bracket invariants under random bars, random levels and partial fills (hypothesis).

- a bracket never leaves a position beyond its entry: a long stays within [0, entry filled],
  a short within [−entry filled, 0], at every bar and at the end;
- its exits together never fill more than the entry filled;
- its two legs never both fill on one bar (the OCO takes one of them; a bar reaching both
  takes the stop), and a leg fills on the entry's own bar only if the entry filled at the
  open (the bar proves the order of touches then).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import polars as pl
from hypothesis import given, settings
from hypothesis import strategies as st

from tradeloop import Engine, MarketEvent, Strategy, VolumeShareSlippage

T0 = datetime(2024, 1, 1, 21, tzinfo=UTC)


def random_bars(seed: int, n_days: int) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    close = 100 * np.exp(np.cumsum(rng.normal(0, 0.03, n_days)))
    open_ = close * np.exp(rng.normal(0, 0.02, n_days))
    high = np.maximum(open_, close) * (1 + rng.uniform(0, 0.04, n_days))
    low = np.minimum(open_, close) * (1 - rng.uniform(0, 0.04, n_days))
    return pl.DataFrame(
        {
            "timestamp": [T0 + timedelta(days=d) for d in range(n_days)],
            "asset_id": "X",
            "open": open_,
            "high": high,
            "low": low,
            "close": close,
            "volume": rng.choice([50.0, 200.0, 1e6], n_days),
        }
    )


class Brackets(Strategy):
    """Whenever flat with nothing working, enter a bracket with random levels."""

    def __init__(self, seed: int, short: bool) -> None:
        super().__init__()
        self.rng = np.random.default_rng(seed)
        self.short = short
        self.groups: list[Any] = []
        self.positions: list[tuple[int, float]] = []  # (group index, position) per bar

    def on_market_event(self, event: MarketEvent, context: Mapping[str, Any]) -> None:
        self.positions.append((len(self.groups) - 1, self.get_position("X")))
        if self.get_position("X") != 0 or self.get_open_orders("X"):
            return
        qty = float(self.rng.integers(1, 40))
        stop, target = self.rng.uniform(0.01, 0.08), self.rng.uniform(0.01, 0.08)
        limit = None
        if self.rng.uniform() < 0.5:
            limit = event.close * (1 + (1 if self.short else -1) * self.rng.uniform(0, 0.02))
        place = self.sell if self.short else self.buy
        entry = place("X", qty, limit=limit, stop_loss_pct=stop, take_profit_pct=target)
        if entry.is_open:
            self.groups.append(entry.group)


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 10_000), short=st.booleans(), thin=st.booleans())
def test_bracket_never_leaves_a_position_beyond_its_entry(
    seed: int, short: bool, thin: bool
) -> None:
    strategy = Brackets(seed, short)
    slippage = VolumeShareSlippage(volume_limit=0.1, price_impact=0.0) if thin else None
    broker_options: dict[str, Any] = {"allow_short": short, "initial_cash": 1e7}
    if slippage is not None:
        broker_options["slippage"] = slippage
    Engine(feed=random_bars(seed, 80), strategy=strategy, **broker_options).run()
    sign = -1.0 if short else 1.0
    for index, position in strategy.positions:
        entry = strategy.groups[index].parent.filled_qty if index >= 0 else 0.0
        assert 0.0 <= sign * position <= entry + 1e-9
    for group in strategy.groups:
        entry, (stop, target) = group.parent, group.legs
        assert stop.filled_qty + target.filled_qty <= entry.filled_qty + 1e-9


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 10_000), short=st.booleans(), thin=st.booleans())
def test_bracket_legs_never_both_fill_on_one_bar(seed: int, short: bool, thin: bool) -> None:
    strategy = Brackets(seed, short)
    options: dict[str, Any] = {"allow_short": short, "initial_cash": 1e7}
    if thin:
        options["slippage"] = VolumeShareSlippage(volume_limit=0.1, price_impact=0.0)
    engine = Engine(feed=random_bars(seed, 80), strategy=strategy, **options)
    engine.run()
    fills = engine.broker.fills
    bars = random_bars(seed, 80)
    opens = dict(zip(bars["timestamp"].to_list(), bars["open"].to_list(), strict=True))
    for group in strategy.groups:
        entry, (stop, target) = group.parent, group.legs
        stop_bars = {f.ts_ns for f in fills if f.order_id == stop.id}
        target_bars = {f.ts_ns for f in fills if f.order_id == target.id}
        assert not stop_bars & target_bars
        entry_fills = [f for f in fills if f.order_id == entry.id]
        if entry_fills:
            first = entry_fills[0]
            same_bar = (stop_bars | target_bars) & {first.ts_ns}
            if same_bar:  # an exit on the entry's bar: only after an entry at that bar's open
                assert first.price == opens[first.timestamp]
