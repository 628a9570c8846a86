"""Sizing at the fill price (``sizing="fill"``) against the default sizing at the close.

Bars are (day, asset, o, h, l, c); each expected quantity is worked by hand in the comments.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.conftest import Scripted, bars
from tradeloop import Engine, HistoricalFeed, OrderError

GAP_UP = [(0, "X", 100, 101, 99, 100), (1, "X", 110, 111, 109, 110), (2, "X", 110, 111, 109, 110)]
GAP_DOWN = [(0, "X", 100, 101, 99, 100), (1, "X", 90, 91, 89, 90), (2, "X", 90, 91, 89, 90)]


def run(rows: list[tuple[Any, ...]], action: Any, **options: Any) -> Any:
    strategy = Scripted({(0, "X"): action})
    return Engine(feed=HistoricalFeed(bars(rows)), strategy=strategy, **options).run()


def fills(result: Any) -> list[tuple[str, float, float]]:
    return [(f["side"], f["qty"], f["price"]) for f in result.fills.iter_rows(named=True)]


def test_buy_percent_all_in_sized_at_close_is_rejected_for_its_commission() -> None:
    # the default sizes 1.0 × 10,000 / close 100 = 100 shares: 10,000 + 0.1 % = 10,010 > cash
    result = run(GAP_UP, lambda s, e: s.buy_percent("X", 1.0), initial_cash=10_000, commission=1e-3)
    assert result.orders["status"].to_list() == ["rejected"]


def test_buy_percent_all_in_sized_at_fill_fills_after_a_gap_up() -> None:
    # at the fill: open 110 with 0.1 % commission costs 110.11 a share; 10,000 / 110.11 = 90.8
    # -> 90 shares (90 × 110 = 9,900 + 9.90 commission = 9,909.90 <= 10,000; 91 would not fit)
    result = run(
        GAP_UP,
        lambda s, e: s.buy_percent("X", 1.0, sizing="fill"),
        initial_cash=10_000,
        commission=1e-3,
    )
    assert fills(result) == [("buy", 90, 110.0)]
    assert result.orders["status"].to_list() == ["filled"]
    assert result.equity_curve["cash"][-1] == pytest.approx(10_000 - 9_900 - 9.9)


def test_buy_percent_sized_at_fill_buys_more_after_a_gap_down() -> None:
    # open 90 × 1.001 = 90.09 a share: 10,000 / 90.09 = 111.0 -> 111 (9,990 + 9.99 = 9,999.99)
    result = run(
        GAP_DOWN,
        lambda s, e: s.buy_percent("X", 1.0, sizing="fill"),
        initial_cash=10_000,
        commission=1e-3,
    )
    assert fills(result) == [("buy", 111, 90.0)]
    assert result.equity_curve["cash"][-1] == pytest.approx(0.01)


def test_set_position_percent_sized_at_fill_targets_at_the_open() -> None:
    # half of 10,000 at the 90 open is 55.6 -> 55 shares; at the decision close it would be 50
    at_fill = run(
        GAP_DOWN,
        lambda s, e: s.set_position_percent("X", 0.5, sizing="fill"),
        initial_cash=10_000,
    )
    at_close = run(GAP_DOWN, lambda s, e: s.set_position_percent("X", 0.5), initial_cash=10_000)
    assert fills(at_fill) == [("buy", 55, 90.0)]
    assert fills(at_close) == [("buy", 50, 90.0)]


def test_rebalance_sized_at_fill_sells_first_then_buys_at_the_opens() -> None:
    rows = [
        (0, "A", 100, 101, 99, 100),
        (0, "B", 50, 51, 49, 50),
        (1, "A", 100, 101, 99, 100),
        (1, "B", 40, 41, 39, 40),
        (2, "A", 100, 101, 99, 100),
        (2, "B", 40, 41, 39, 40),
    ]
    strategy = Scripted(
        {(0, "B"): lambda s, e: s.rebalance_to_weights({"A": 0.5, "B": 0.5}, sizing="fill")}
    )
    result = Engine(feed=HistoricalFeed(bars(rows)), strategy=strategy, initial_cash=10_000).run()
    # equity 10,000 at the fill: A 5,000 / 100 = 50; B 5,000 / open 40 = 125 (at the close
    # 50 it would have been 100)
    assert sorted(fills(result)) == [("buy", 50, 100.0), ("buy", 125, 40.0)]


def test_sizing_unknown_mode_raises_order_error_naming_choices() -> None:
    with pytest.raises(OrderError, match="'close', 'fill'"):
        run(GAP_UP, lambda s, e: s.buy_percent("X", 0.5, sizing="open"))
