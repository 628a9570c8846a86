"""Brackets, OCO and OTO in the simulator: each case worked by hand in its comments.

Bars are (day, asset, o, h, l, c[, v]); an entry decided on day 0 fills at day 1's open.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pytest

from tests.conftest import Scripted, bars, day
from tradeloop import (
    BacktestResult,
    Engine,
    HistoricalFeed,
    OrderError,
    VolumeShareSlippage,
    order_request,
)

QUIET = (0, "X", 100, 101, 99, 100)


def run(
    rows: list[tuple[Any, ...]], script: Mapping[tuple[int, str], Any], **options: Any
) -> tuple[BacktestResult, Scripted]:
    strategy = Scripted(script)
    result = Engine(feed=HistoricalFeed(bars(rows)), strategy=strategy, **options).run()
    return result, strategy


def fills(result: BacktestResult) -> list[tuple[int, str, float, float, str]]:
    """(day index, side, qty, price, reason) for every fill."""
    return [
        ((f["timestamp"] - day(0)).days, f["side"], f["qty"], f["price"], f["reason"])
        for f in result.fills.iter_rows(named=True)
    ]


def statuses(result: BacktestResult) -> list[str]:
    return result.orders["status"].to_list()


def bracket(s: Any, e: Any) -> Any:
    return s.buy("X", 10, stop_loss=95.0, take_profit=110.0)


def test_bracket_target_fills_and_cancels_the_stop_without_shorting() -> None:
    # entry at day 1's open 100 (the exits then watch day 1's range 99..104: nothing); day 2
    # reaches 111 >= 110: the target sells 10 at 110 and the stop is cancelled. Shorting is
    # off, and a stop + target pair on 10 shares is still admitted
    rows = [QUIET, (1, "X", 100, 104, 99, 102), (2, "X", 103, 111, 102, 109)]
    result, _ = run(rows, {(0, "X"): bracket})
    assert fills(result) == [
        (1, "buy", 10, 100.0, "strategy"),
        (2, "sell", 10, 110.0, "take_profit"),
    ]
    assert statuses(result) == ["filled", "cancelled", "filled"]
    assert "OCO: #3 filled" in result.orders["message"][1]
    assert result.final_positions == {}


def test_bracket_bar_touching_both_legs_takes_the_stop() -> None:
    # day 2 trades 94..111: both 95 and 110 are inside the range, and the bar cannot say
    # which came first -> the stop (the worse outcome), as the risk rules do; no -10 short
    rows = [QUIET, (1, "X", 100, 104, 99, 102), (2, "X", 100, 111, 94, 105)]
    result, _ = run(rows, {(0, "X"): bracket})
    assert fills(result)[1:] == [(2, "sell", 10, 95.0, "stop_loss")]
    assert statuses(result) == ["filled", "filled", "cancelled"]
    assert result.final_positions == {}


def test_bracket_exit_gapped_at_the_open_wins_over_a_stop_in_the_range() -> None:
    # day 2 opens 112, through the 110 target: the open trades first, so the target fills at
    # the open (112, better) even though the range later reaches the 95 stop
    rows = [QUIET, (1, "X", 100, 104, 99, 102), (2, "X", 112, 113, 94, 100)]
    result, _ = run(rows, {(0, "X"): bracket})
    assert fills(result)[1:] == [(2, "sell", 10, 112.0, "take_profit")]


def test_bracket_entry_at_the_open_exits_on_the_same_bar() -> None:
    # the entry fills at day 1's open 100; the rest of day 1's range (low 94) trades after
    # the open, so the 95 stop fills on day 1 too
    rows = [QUIET, (1, "X", 100, 101, 94, 96), (2, "X", 96, 97, 95.5, 96)]
    result, _ = run(rows, {(0, "X"): bracket})
    assert fills(result) == [(1, "buy", 10, 100.0, "strategy"), (1, "sell", 10, 95.0, "stop_loss")]


def test_bracket_entry_filled_inside_a_bar_exits_from_the_next_bar() -> None:
    # a buy limit 99 fills inside day 1 (low 96); the same range reaches the 97 stop, but the
    # bar does not say whether the low came before or after the entry -> not on day 1. Day 2
    # opens 96.5, through the stop -> the open
    rows = [QUIET, (1, "X", 100, 100.5, 96, 98), (2, "X", 96.5, 97, 96, 96.5)]
    script = {(0, "X"): lambda s, e: s.buy("X", 10, limit=99.0, stop_loss=97.0)}
    result, _ = run(rows, script)
    assert fills(result) == [(1, "buy", 10, 99.0, "strategy"), (2, "sell", 10, 96.5, "stop_loss")]


def test_bracket_levels_as_fractions_are_priced_from_the_fill() -> None:
    # entry at day 1's open 102: stop 5 % below = 96.9, target 10 % above = 112.2; day 2's
    # high 113 reaches the target
    rows = [QUIET, (1, "X", 102, 103, 101, 102), (2, "X", 103, 113, 102, 110)]
    script = {(0, "X"): lambda s, e: s.buy("X", 10, stop_loss_pct=0.05, take_profit_pct=0.10)}
    result, _ = run(rows, script)
    orders = result.orders
    assert orders["stop_price"][1] == pytest.approx(96.9)
    assert orders["limit_price"][2] == pytest.approx(112.2)
    assert fills(result)[1] == (2, "sell", 10, pytest.approx(112.2), "take_profit")


def test_bracket_of_a_short_puts_the_stop_above_and_the_target_below() -> None:
    # short 10 at day 1's open 100 (allow_short), stop 105, target 90; day 2 trades up to
    # 106: the stop buys 10 back at 105
    rows = [QUIET, (1, "X", 100, 101, 99, 100), (2, "X", 101, 106, 100, 104)]
    script = {(0, "X"): lambda s, e: s.sell("X", 10, stop_loss=105.0, take_profit=90.0)}
    result, _ = run(rows, script, allow_short=True)
    assert fills(result) == [(1, "sell", 10, 100.0, "strategy"), (2, "buy", 10, 105.0, "stop_loss")]


def test_bracket_children_wait_held_and_go_when_the_parent_is_cancelled() -> None:
    seen: list[list[str]] = []

    def place(s: Any, e: Any) -> Any:
        entry = s.buy("X", 10, limit=50.0, stop_loss=45.0, take_profit=60.0)
        seen.append([o.status.value for o in entry.group.orders])
        return entry

    rows = [QUIET, (1, "X", 100, 101, 99, 100), (2, "X", 100, 101, 99, 100)]
    script = {(0, "X"): place, (1, "X"): lambda s, e: s.cancel(s.returned[(0, "X")])}
    result, _ = run(rows, script)
    assert seen == [["accepted", "held", "held"]]
    assert statuses(result) == ["cancelled", "cancelled", "cancelled"]
    assert "parent #1 cancelled unfilled" in result.orders["message"][1]


def test_bracket_partial_entry_fills_resize_the_exits() -> None:
    # volume share 10 % of 100 = 10 a bar: the entry of 20 fills 10 on day 1 and 10 on day 2;
    # the exits follow (10, then 20); day 3 reaches the 110 target: 10 a bar again, so the
    # stop is resized to the 10 left, then day 4 fills the rest of the target
    rows = [
        (0, "X", 100, 101, 99, 100, 1_000),
        (1, "X", 100, 101, 99, 100, 100),
        (2, "X", 100, 101, 99, 100, 100),
        (3, "X", 105, 111, 104, 110, 100),
        (4, "X", 108, 111, 107, 110, 100),
    ]
    quantities: list[tuple[float, float]] = []

    def watch(s: Any, e: Any) -> None:
        stop, target = s.returned[(0, "X")].group.legs
        quantities.append((stop.qty, target.qty))

    script = {
        (0, "X"): lambda s, e: s.buy("X", 20, stop_loss=90.0, take_profit=110.0),
        **{(d, "X"): watch for d in (1, 2, 3)},
    }
    slip = VolumeShareSlippage(volume_limit=0.1, price_impact=0.0)
    result, _ = run(rows, script, slippage=slip)
    assert quantities == [(10, 10), (20, 20), (10, 20)]
    assert [f[:3] for f in fills(result)] == [
        (1, "buy", 10),
        (2, "buy", 10),
        (3, "sell", 10),
        (4, "sell", 10),
    ]
    assert statuses(result) == ["filled", "cancelled", "filled"]


def test_oco_exit_pair_on_a_held_position_is_admitted_without_shorting() -> None:
    # 10 held; a stop 95 and a limit 110, both selling 10: today's plain pair is refused (the
    # second sell is more than is held and not already being sold); as an OCO it is admitted,
    # and day 3's high 111 fills the limit and cancels the stop
    rows = [
        QUIET,
        (1, "X", 100, 101, 99, 100),
        (2, "X", 100, 101, 99, 100),
        (3, "X", 105, 111, 104, 110),
    ]

    def pair(s: Any, e: Any) -> Any:
        return s.oco(
            order_request("X", "sell", 10, stop=95.0), order_request("X", "sell", 10, limit=110.0)
        )

    script = {(0, "X"): lambda s, e: s.buy("X", 10), (1, "X"): pair}
    result, strategy = run(rows, script)
    assert strategy.returned[(1, "X")].kind == "oco"
    assert fills(result)[1:] == [(3, "sell", 10, 110.0, "strategy")]
    assert statuses(result) == ["filled", "cancelled", "filled"]


def test_plain_stop_and_target_pair_without_a_group_is_refused_without_shorting() -> None:
    rows = [QUIET, (1, "X", 100, 101, 99, 100), (2, "X", 100, 101, 99, 100)]

    def pair(s: Any, e: Any) -> None:
        s.sell("X", 10, stop=95.0)
        s.sell("X", 10, limit=110.0)

    result, _ = run(rows, {(0, "X"): lambda s, e: s.buy("X", 10), (1, "X"): pair})
    assert statuses(result) == ["filled", "accepted", "rejected"]


def test_oco_two_sided_entry_fills_one_side_only() -> None:
    # a breakout pair: buy stop 105 / sell stop 95 (allow_short); day 2 reaches 106 only -> a
    # buy at 105, and the sell stop is cancelled
    rows = [QUIET, (1, "X", 100, 101, 99, 100), (2, "X", 101, 106, 100, 105)]

    def pair(s: Any, e: Any) -> Any:
        return s.oco(
            order_request("X", "buy", 10, stop=105.0), order_request("X", "sell", 10, stop=95.0)
        )

    result, _ = run(rows, {(0, "X"): pair}, allow_short=True)
    assert fills(result) == [(2, "buy", 10, 105.0, "strategy")]
    assert statuses(result) == ["filled", "cancelled"]


def test_oto_child_goes_out_when_the_parent_fills() -> None:
    # parent buy limit 99 fills inside day 1; its child (sell limit 103) works from day 2
    # (high 104) -> sells 10 at 103
    rows = [QUIET, (1, "X", 100, 102, 98, 101), (2, "X", 101, 104, 100, 103)]

    def chain(s: Any, e: Any) -> Any:
        return s.oto(
            order_request("X", "buy", 10, limit=99.0), order_request("X", "sell", 10, limit=103.0)
        )

    result, _ = run(rows, {(0, "X"): chain})
    assert fills(result) == [(1, "buy", 10, 99.0, "strategy"), (2, "sell", 10, 103.0, "strategy")]


def test_oco_legs_of_different_quantities_raise_order_error() -> None:
    rows = [QUIET, (1, "X", 100, 101, 99, 100)]

    def pair(s: Any, e: Any) -> Any:
        return s.oco(
            order_request("X", "sell", 10, stop=95.0), order_request("X", "sell", 5, limit=110.0)
        )

    with pytest.raises(OrderError, match="share one quantity"):
        run(rows, {(0, "X"): lambda s, e: s.buy("X", 10), (1, "X"): pair})
