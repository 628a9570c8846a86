"""Under random prices, orders and rules, a risk exit only ever takes a position to flat."""

from __future__ import annotations

from typing import Any

import polars as pl
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.tradeloop.test_properties import Chaos, random_bars
from tradeloop import Engine
from tradeloop.risk import (
    DynamicTrailingStop,
    RiskManager,
    StopLoss,
    TakeProfit,
    TimeBasedExit,
)

RULES: list[Any] = [
    StopLoss(0.03),
    TakeProfit(0.04),
    DynamicTrailingStop(0.05, 0.5, 0.02),
    TimeBasedExit(3),
]


@settings(max_examples=30, deadline=None)
@given(
    seed=st.integers(0, 10_000),
    n_assets=st.integers(1, 3),
    n_days=st.integers(3, 40),
    rules=st.lists(st.sampled_from(RULES), min_size=1, max_size=4, unique_by=id),
    shorts=st.booleans(),
)
def test_risk_exits_never_increase_exposure(
    seed: int, n_assets: int, n_days: int, rules: list[Any], shorts: bool
) -> None:
    risk = RiskManager()
    for rule in rules:
        risk.add_rule(rule)
    frame = random_bars(seed, n_assets, n_days, sparse=False)
    result = Engine(
        feed=frame, strategy=Chaos(seed), risk=risk, initial_cash=50_000, allow_short=shorts
    ).run()
    names = {rule.name for rule in rules}
    fills = result.fills.with_columns(
        pl.when(pl.col("side") == "buy").then(pl.col("qty")).otherwise(-pl.col("qty")).alias("q")
    )
    held: dict[str, float] = {}
    for row in fills.iter_rows(named=True):
        before = held.get(row["asset_id"], 0.0)
        after = before + row["q"]
        if row["reason"] in names:
            assert before != 0
            assert abs(after) < 1e-9, (row, before)  # flat: never flipped, never added
        held[row["asset_id"]] = after
    # every exit the manager counted is a fill in the result, with its rule's name
    assert sum(risk.exits.values()) == fills.filter(pl.col("reason").is_in(list(names))).height
