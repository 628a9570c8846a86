"""Margin for shorts, worked by hand: initial margin at admission, buys that cannot spend a
short's proceeds, maintenance calls, liquidation and borrow fees; plus a hypothesis property:
equity covers the maintenance requirement at every timestamp, or a margin call fired there.

Bars are (day, asset, o, h, l, c); a short decided on day 0 fills at day 1's open of 100.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.conftest import Scripted, bars, day
from tradeloop import Engine, HistoricalFeed, Margin, MarketEvent, SimulationBroker, Strategy
from tradeloop.broker.margin import short_value

FLAT = [(0, "X", 100, 101, 99, 100), (1, "X", 100, 101, 99, 100)]


class Calls(Scripted):
    """A scripted strategy that records the margin calls it hears."""

    def __init__(self, script: Mapping[tuple[int, str], Any]) -> None:
        super().__init__(script)
        self.calls: list[Any] = []

    def on_margin_call(self, call: Any) -> None:
        self.calls.append(call)


def run(rows: list[tuple[Any, ...]], script: Any, **options: Any) -> tuple[Any, Calls]:
    strategy = Calls(script)
    broker = SimulationBroker(options.pop("initial_cash", 10_000.0), allow_short=True, **options)
    result = Engine(HistoricalFeed(bars(rows)), strategy, broker).run()
    return result, strategy


def test_short_beyond_initial_margin_is_rejected_with_the_numbers() -> None:
    # 10,000 of equity: shorting 500 at ~100 (50,000) needs 50 % = 25,000 > 10,000 free
    result, _ = run(FLAT, {(0, "X"): lambda s, e: s.sell("X", 500)})
    assert result.orders["status"].to_list() == ["rejected"]
    assert (
        "margin: shorting 500 at ~100.0000 needs 25,000.00 (50%), 10,000.00 free"
        in (result.orders["message"][0])
    )


def test_short_within_initial_margin_fills() -> None:
    # 200 at 100 needs 10,000 = the 10,000 free -> admitted, filled at day 1's open
    result, _ = run(FLAT, {(0, "X"): lambda s, e: s.sell("X", 200)})
    assert result.fills["qty"].to_list() == [200]


def test_unchecked_margin_lets_a_five_times_short_fill() -> None:
    result, _ = run(FLAT, {(0, "X"): lambda s, e: s.sell("X", 500)}, margin=False)
    assert result.fills["qty"].to_list() == [500]  # the old behaviour, now an explicit choice


def test_buys_cannot_spend_a_shorts_proceeds() -> None:
    rows = [
        (0, "X", 100, 101, 99, 100),
        (0, "Y", 100, 101, 99, 100),
        (1, "X", 100, 101, 99, 100),
        (1, "Y", 100, 101, 99, 100),
        (2, "X", 100, 101, 99, 100),
        (2, "Y", 100, 101, 99, 100),
    ]
    # short 100 X at 100: cash 20,000, but 1.5 × 10,000 is tied to the short -> 5,000 free.
    # Buying 60 Y (6,000) is refused; 50 (5,000) fits
    script = {
        (0, "X"): lambda s, e: s.sell("X", 100),
        (1, "Y"): lambda s, e: (s.buy("Y", 60), s.buy("Y", 50)),
    }
    result, _ = run(rows, script)
    assert result.orders["status"].to_list() == ["filled", "rejected", "filled"]
    assert "insufficient cash" in result.orders["message"][1]


RALLY = [
    *FLAT,
    (2, "X", 105, 111, 104, 110),
    (3, "X", 118, 126, 117, 125),
    (4, "X", 124, 126, 123, 124),
]


def test_maintenance_breach_is_a_margin_call_the_strategy_hears() -> None:
    # short 200 at 100: cash 30,000. Day 2 close 110: equity 30,000 − 22,000 = 8,000 >= 30 %
    # of 22,000 = 6,600: fine. Day 3 close 125: equity 5,000 < 7,500 -> a call on day 3
    _, strategy = run(RALLY, {(0, "X"): lambda s, e: s.sell("X", 200)})
    (call,) = [c for c in strategy.calls if c.timestamp == day(3)]
    assert (call.equity, call.requirement, call.shortfall) == pytest.approx((5_000, 7_500, 2_500))
    assert call.shorts == {"X": -200}
    assert {c.timestamp for c in strategy.calls} == {day(3), day(4)}  # day 4: 5,200 < 7,440


def test_margin_call_with_liquidate_buys_the_short_back_at_the_next_open() -> None:
    result, strategy = run(
        RALLY, {(0, "X"): lambda s, e: s.sell("X", 200)}, margin=Margin(liquidate=True)
    )
    fills = [
        (f["side"], f["qty"], f["price"], f["reason"]) for f in result.fills.iter_rows(named=True)
    ]
    assert fills == [("sell", 200, 100.0, "strategy"), ("buy", 200, 124.0, "margin_call")]
    assert [c.timestamp for c in strategy.calls] == [day(3)]
    assert result.config["margin_calls"] == 1


def test_borrow_fee_is_charged_per_day_on_the_shorts_value() -> None:
    # 36.5 % a year = 0.1 % a day, on the shorts held at each day's end: day 1 on
    # 100 × 100 = 10.00 (cash 20,000 -> 19,990); day 2 on 100 × 110 = 11.00; day 3 on 12,500
    # -> 12.50; day 4 on 12,400 -> 12.40
    result, _ = run(
        RALLY, {(0, "X"): lambda s, e: s.sell("X", 100)}, margin=Margin(borrow_rate=0.365)
    )
    assert result.config["borrow_fees"] == pytest.approx(10.0 + 11.0 + 12.5 + 12.4)
    assert result.equity_curve["cash"].to_list()[1:] == pytest.approx(
        [19_990.0, 19_979.0, 19_966.5, 19_954.1]
    )
    assert result["final_value"] == pytest.approx(19_954.1 - 12_400)


class RandomShorts(Strategy):
    """Random shorts and covers; records (ts, equity, shorts' value) at every bar."""

    def __init__(self, seed: int) -> None:
        super().__init__()
        self.rng = np.random.default_rng(seed)
        self.seen: list[tuple[int, float, float]] = []
        self.called: set[int] = set()

    def on_market_event(self, event: MarketEvent, context: Mapping[str, Any]) -> None:
        broker = self.broker
        assert broker is not None
        value = short_value(broker.positions(), {event.asset_id: event.close})
        self.seen.append((event.ts_ns, broker.equity(), value))
        if self.rng.uniform() < 0.3:
            self.sell(event.asset_id, float(self.rng.integers(1, 200)))
        elif self.rng.uniform() < 0.2 and self.get_position(event.asset_id) < 0:
            self.buy(event.asset_id, -self.get_position(event.asset_id))

    def on_margin_call(self, call: Any) -> None:
        self.called.add(call.ts_ns)


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 10_000), liquidate=st.booleans())
def test_equity_covers_maintenance_or_a_margin_call_fired(seed: int, liquidate: bool) -> None:
    rng = np.random.default_rng(seed)
    close = 100 * np.exp(np.cumsum(rng.normal(0.01, 0.06, 60)))
    rows = [(i, "X", c, c * 1.02, c * 0.98, c) for i, c in enumerate(close)]
    strategy = RandomShorts(seed)
    broker = SimulationBroker(10_000.0, allow_short=True, margin=Margin(liquidate=liquidate))
    Engine(HistoricalFeed(bars(rows)), strategy, broker).run()
    for ts_ns, equity, value in strategy.seen:
        assert equity >= 0.3 * value - 1e-6 or ts_ns in strategy.called
