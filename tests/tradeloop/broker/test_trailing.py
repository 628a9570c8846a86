"""Trailing stops in the simulator, worked by hand: the stop ratchets at each bar's open
before matching, and at the bar's high (a sell) or low (a buy) after it.

Bars are (day, asset, o, h, l, c); the position is bought on day 0 and fills at day 1's open.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.conftest import Scripted, bars, day
from tradeloop import Engine, HistoricalFeed, OrderError
from tradeloop.broker.orders import Order, ratchet
from tradeloop.events import OrderType, Side, TimeInForce

BASE = [(0, "X", 100, 101, 99, 100), (1, "X", 100, 101, 99, 100)]
RISE = (2, "X", 102, 108, 101, 107)


def run(rows: list[tuple[Any, ...]], **trail: Any) -> Any:
    script = {
        (0, "X"): lambda s, e: s.buy("X", 10),
        (1, "X"): lambda s, e: s.sell("X", 10, **trail),
    }
    return Engine(feed=HistoricalFeed(bars(rows)), strategy=Scripted(script)).run()


def exit_fill(result: Any) -> tuple[int, float]:
    row = result.fills.row(1, named=True)
    return (row["timestamp"] - day(0)).days, row["price"]


def test_trailing_stop_by_amount_follows_the_high_then_fills_at_its_level() -> None:
    # placed at day 1's close 100: stop 95. Day 2: open 102 -> 97; low 101 misses it; high
    # 108 -> 103 for day 3. Day 3: open 106 (below the 108 high: no move); low 102 <= 103 ->
    # sells at 103
    result = run([*BASE, RISE, (3, "X", 106, 107, 102, 103)], trail_amount=5.0)
    assert exit_fill(result) == (3, 103.0)
    assert result.orders["order_type"][1] == "trailing_stop"


def test_trailing_stop_by_percent_follows_the_high() -> None:
    # 5 %: 100 -> 95; day 2 open 102 -> 96.9, high 108 -> 102.6; day 3 low 102 -> 102.6
    result = run([*BASE, RISE, (3, "X", 106, 107, 102, 103)], trail_percent=0.05)
    assert exit_fill(result) == (3, pytest.approx(102.6))


def test_trailing_stop_gapped_through_fills_at_the_open() -> None:
    # day 3 opens 100, below the 103 level set by day 2's high -> the open
    result = run([*BASE, RISE, (3, "X", 100, 101, 98, 99)], trail_amount=5.0)
    assert exit_fill(result) == (3, 100.0)


def test_trailing_stop_never_moves_back_down() -> None:
    # day 3 trades 104..106: the level stays 103 (from day 2's 108 high); day 4's low 102.5
    # reaches it
    rows = [*BASE, RISE, (3, "X", 105, 106, 104, 105), (4, "X", 104, 105, 102.5, 103)]
    result = run(rows, trail_amount=5.0)
    assert exit_fill(result) == (4, 103.0)


def test_buy_trailing_stop_follows_the_low() -> None:
    # a short of 10 at day 1's open; a buy trailing 5 placed at the 100 close: 105. Day 2:
    # open 98 -> 103, high 99 misses it, low 92 -> 97. Day 3: high 98 >= 97 -> buys at 97
    rows = [*BASE, (2, "X", 98, 99, 92, 93), (3, "X", 95, 98, 94, 97)]
    script = {
        (0, "X"): lambda s, e: s.sell("X", 10),
        (1, "X"): lambda s, e: s.buy("X", 10, trail_amount=5.0),
    }
    strategy = Scripted(script)
    result = Engine(feed=HistoricalFeed(bars(rows)), strategy=strategy, allow_short=True).run()
    assert exit_fill(result) == (3, 97.0)


def test_ratchet_moves_a_sell_stop_up_only() -> None:
    order = Order(1, "X", Side.SELL, 1, OrderType.TRAILING_STOP, None, 95.0, TimeInForce.GTC, 0, "")
    order.trail_amount, order.trail_ref = 5.0, 100.0
    ratchet(order, 104.0)
    assert (order.stop_price, order.trail_ref) == (99.0, 104.0)
    ratchet(order, 101.0)  # lower price: nothing moves
    assert (order.stop_price, order.trail_ref) == (99.0, 104.0)


@pytest.mark.parametrize(
    ("trail", "message"),
    [
        ({"trail_amount": 5.0, "trail_percent": 0.05}, "exactly one"),
        ({"trail_percent": 5.0}, "fraction"),
        ({"trail_amount": -1.0}, "positive"),
    ],
)
def test_trailing_stop_malformed_raises_order_error(trail: dict[str, float], message: str) -> None:
    with pytest.raises(OrderError, match=message):
        run([*BASE, RISE], **trail)
